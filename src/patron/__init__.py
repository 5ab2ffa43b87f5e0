"""Patron: an open-source retention CRM for businesses that sell to consumers."""

__version__ = "0.1.0"
