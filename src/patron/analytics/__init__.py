"""Customer analytics: per-customer summaries, RFM, probabilistic CLV and churn models, equity and insights."""
