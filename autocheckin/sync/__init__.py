"""Keeping the roster and each user's check-in sessions in sync with CheckOut.

`init_app` reads the upstream's settings once: `settings.current().checkout`, None when
CHECKOUT_API_URL is unset (a pure webhook hub).
"""

from __future__ import annotations

from flask import Flask

from autocheckin import settings
from autocheckin.sync.client import CheckOutSettings


def init_app(app: Flask) -> None:
    settings.register(app, "checkout", CheckOutSettings.from_config(app.config))
