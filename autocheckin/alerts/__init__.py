"""Absence alerts: rules over each person's expected events, evaluated by a leader-only job.

`init_app` builds the rules from the app's config once: `settings.current().alerts`.
"""

from __future__ import annotations

from typing import Any

from autocheckin import settings
from autocheckin.alerts.rules import AlertRules


def init_app(app: Any) -> None:
    settings.register(app, "alerts", AlertRules.from_config(app.config))
