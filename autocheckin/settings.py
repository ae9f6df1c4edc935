"""The typed settings the code reads while it serves, built once per app by create_app.

`app.config` holds the raw values `config.py` validated; the check-in rules, the webhook
options and the upstream's settings are built from them here, once, instead of on every
request or item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app

from autocheckin.attendance.windows import CheckInRules
from autocheckin.sync.client import CheckOutSettings
from autocheckin.webhooks.receive import WebhookOptions


@dataclass(frozen=True)
class Settings:
    rules: CheckInRules
    webhooks: WebhookOptions
    checkout: CheckOutSettings | None  # None: no CHECKOUT_API_URL, a pure webhook hub


def build(config: Any) -> Settings:
    rules = CheckInRules.from_config(config)
    return Settings(
        rules=rules,
        webhooks=WebhookOptions.from_config(config, rules=rules),
        checkout=CheckOutSettings.from_config(config),
    )


def init_app(app: Flask) -> None:
    app.extensions["settings"] = build(app.config)


def of(app: Flask) -> Settings:
    return app.extensions["settings"]


def current() -> Settings:
    """The settings of the app serving this request (or CLI command, or job)."""
    return current_app.extensions["settings"]
