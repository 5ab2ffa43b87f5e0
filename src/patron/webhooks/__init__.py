"""Outgoing webhooks: subscriptions, signed deliveries, the delivery log."""
