"""Webhooks react to every event: a delivery task per matching active subscription.

Placeholder until the webhooks domain is built: no subscriptions yet, nothing to deliver.
"""
