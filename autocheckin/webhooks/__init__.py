"""Inbound webhooks: formats, signatures, the request log, idempotency and replay.

`init_app` builds the webhook options once (`settings.current().webhooks`; after
`attendance.init_app`, whose rules they carry) and gives /metrics the unmatched backlog.
"""

from __future__ import annotations

from flask import Flask

from autocheckin import metrics, settings
from autocheckin.webhooks.receive import WebhookOptions
from autocheckin.webhooks.request_log import UnmatchedBacklog


def init_app(app: Flask) -> None:
    rules = settings.of(app).rules
    settings.register(app, "webhooks", WebhookOptions.from_config(app.config, rules=rules))
    metrics.add_collector(app, UnmatchedBacklog())
