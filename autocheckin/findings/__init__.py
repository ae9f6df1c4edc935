"""Suspicious check-ins: explainable rules run after commit, and the admin's review."""

from __future__ import annotations

from flask import Flask

from autocheckin import settings
from autocheckin.findings.rules import FindingRules


def init_app(app: Flask) -> None:
    settings.register(app, "findings", FindingRules.from_config(app.config))
