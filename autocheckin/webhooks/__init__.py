"""Inbound webhooks: formats, signatures, the request log, idempotency and replay."""
