"""Process-wide logging set-up, called by the entry points (never by create_app)."""

from __future__ import annotations

import logging
import re

from flask import g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

from autocheckin.config import open_setups, weak_settings

# The WSGI environ key where a view leaves the path to log in place of the real one, when
# the real one holds a secret (a calendar feed's URL is its credential). gunicorn's access
# log reads it too (`gunicorn.conf.py`).
LOGGED_PATH = "autocheckin.logged_path"
# Paths whose last part is a secret, for requests that never reached a view that said so.
SECRET_PATH = re.compile(r"(/calendar/feeds/)[^/?#\s]+\.ics")


def logged_path() -> str:
    """The path of this request as a log line may show it: never a feed's secret."""
    if not has_request_context():
        return "-"
    return request.environ.get(LOGGED_PATH) or SECRET_PATH.sub(r"\1<secret>.ics", request.path)


class OneLineFormatter(logging.Formatter):
    """A message is one line: CR and LF inside it (a client's `source`, say) are escaped,
    so nobody can forge a log line. Tracebacks, added after, keep their lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        line = super().formatMessage(record)
        return line.replace("\r", "\\r").replace("\n", "\\n")


class RequestIdFilter(logging.Filter):
    """Every line logged while a request is served carries its X-Request-ID."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


def json_formatter() -> logging.Formatter:
    """JSON lines (python-json-logger): time, level, logger, msg, request_id, and any
    `extra` fields; JSON escapes newlines itself."""
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger", "message": "msg"},
    )


def configure_logging(level: str, log_format: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(
        json_formatter()
        if log_format == "json"
        else OneLineFormatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
    )
    logging.basicConfig(level=level, handlers=[handler])
    # APScheduler logs every run at INFO; our run records and job lines say it better.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.getLevelName(level)))


def warn_open_setups(config: dict) -> None:
    """Say at start-up which documented open setups let anonymous callers in, and which
    settings are too weak for production."""
    log = logging.getLogger("autocheckin.security")
    for warning in weak_settings(config):
        log.warning("%s: set a long random key before this server is reachable", warning)
    for setting, is_on in open_setups(config).items():
        if is_on:
            log.warning(
                "%s: anyone who can reach this server may use that door (the guides' basic "
                "setup, for private networks); see SECURITY.md",
                setting,
            )
