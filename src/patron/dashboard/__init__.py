"""The home dashboard: headline KPIs and charts over the last twelve months."""
