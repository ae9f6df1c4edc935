"""Outbound webhooks: subscriptions, the transactional outbox, and signed delivery."""
