"""Segments: rules over customers, static lists, clusters, reports and snapshots."""
