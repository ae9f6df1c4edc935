"""AutoCheckin: an attendance check-in hub. `create_app` builds the Flask app."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from autocheckin import (
    alerts,
    attendance,
    demo,
    metrics,
    models,  # noqa: F401 - registers every table on db.metadata
    sync,
    webhooks,
)
from autocheckin.api import (
    accounts,
    discord,
    events,
    integrations,
    outbound_webhooks,
    root,
    v1,
)
from autocheckin.api import alerts as alerts_api
from autocheckin.api import corrections as corrections_api
from autocheckin.api import findings as findings_api
from autocheckin.api import series as series_api
from autocheckin.api import webhooks as webhooks_api
from autocheckin.api.errors import (
    DETAIL_PREFIXES,
    INTEGRATION_PREFIXES,
    register_error_handlers,
    register_error_renderer,
    render_detail_error,
    render_integration_error,
    render_page_error,
)
from autocheckin.api.security import init_security
from autocheckin.audit import cli as audit_cli
from autocheckin.auth import cli as users_cli
from autocheckin.config import ConfigError, load_config
from autocheckin.dashboard import views as dashboard_views
from autocheckin.database import configure_postgres, configure_sqlite, engine_options
from autocheckin.extensions import compress, db, migrate
from autocheckin.findings import init_app as init_findings
from autocheckin.jobs import cli as jobs_cli
from autocheckin.outbound import announcements  # noqa: F401 - listens to the core's signals
from autocheckin.version import __version__
from autocheckin.webhooks import cli as webhook_cli

__all__ = ["MIGRATIONS_DIR", "__version__", "create_app"]

MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. Reads os.environ, or only `config` when one is given (tests).

    The one place that knows every package: each lower package registers its own options,
    metrics and CLI here. No network, no migrations, no scheduler: `main.py` starts what
    runs in the background.
    """
    app = Flask(__name__, instance_relative_config=True, static_folder=None)
    try:
        loaded = load_config(config, instance_path=app.instance_path)
    except ConfigError as error:
        if config is not None:
            raise
        # A deployment's mistake, not a bug: one line naming the variable, no traceback.
        print(f"autocheckin: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    app.config.update(loaded)
    # The dashboard's session cookie: HttpOnly (Flask's default), SameSite=Lax, Secure when
    # SESSION_COOKIE_SECURE (the default on Railway, behind HTTPS); 12 hours at most.
    app.config.update(SESSION_COOKIE_SAMESITE="Lax", PERMANENT_SESSION_LIFETIME=12 * 3600)
    if config is not None:
        app.config.update({k: v for k, v in config.items() if k not in loaded})
    # The 500's log line must never print SQL parameters (password hashes, bodies).
    # PostgreSQL's timeouts (connect, statement, keepalives) come from engine_options; a
    # connection dropped while idle (a restart, a failover) is replaced on checkout by
    # configure_postgres's ping instead of failing a request.
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        **app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}),
        "hide_parameters": True,
        **engine_options(app.config),
    }

    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///"):
        os.makedirs(app.instance_path, exist_ok=True)
    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, render_as_batch=True)
    # Only the views that ask (`@compress.compressed()`) compress, when the client accepts it.
    app.config.setdefault("COMPRESS_REGISTER", False)
    app.config.setdefault("COMPRESS_MIMETYPES", ["application/json", "text/csv", "text/calendar"])
    compress.init_app(app)
    configure_sqlite(app)
    configure_postgres(app)

    attendance.init_app(app)
    sync.init_app(app)
    webhooks.init_app(app)  # after attendance: the webhook options carry its rules
    init_findings(app)
    alerts.init_app(app)
    init_security(app)
    metrics.init_app(app)
    register_error_handlers(app)
    register_error_renderer(app, webhooks_api.PREFIX, webhooks_api.render_webhook_error)
    for prefix in DETAIL_PREFIXES:
        register_error_renderer(app, prefix, render_detail_error)
    for prefix in INTEGRATION_PREFIXES:
        register_error_renderer(app, prefix, render_integration_error)
    register_error_renderer(app, "/dashboard", render_page_error)
    app.register_blueprint(root.bp)
    app.register_blueprint(v1.bp)
    app.register_blueprint(corrections_api.bp)
    app.register_blueprint(findings_api.bp)
    app.register_blueprint(alerts_api.bp)
    app.register_blueprint(webhooks_api.bp)
    app.register_blueprint(accounts.bp)
    app.register_blueprint(events.bp)
    app.register_blueprint(series_api.bp)
    app.register_blueprint(discord.bp)
    app.register_blueprint(integrations.bp)
    app.register_blueprint(outbound_webhooks.bp)
    app.register_blueprint(dashboard_views.bp)
    app.cli.add_command(webhook_cli.webhooks)
    app.cli.add_command(users_cli.users)
    app.cli.add_command(users_cli.people)
    app.cli.add_command(audit_cli.attendance)
    app.cli.add_command(audit_cli.audit)
    app.cli.add_command(users_cli.discord)
    app.cli.add_command(users_cli.keys)
    app.cli.add_command(users_cli.create_admin_command)
    app.cli.add_command(demo.demo_command)
    for command in jobs_cli.COMMANDS:
        app.cli.add_command(command)
    return app
