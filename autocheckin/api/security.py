"""What every answer and every JSON body get, whatever the family: security headers, a
bound on JSON nesting, the proxy hops to trust, and the rate-limit storage."""

from __future__ import annotations

import re
import uuid
from typing import Any

from flask import Flask, Response, g, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadRequest, NotFound
from werkzeug.middleware.proxy_fix import ProxyFix

from autocheckin import ratelimits
from autocheckin.attendance.origins import Origin
from autocheckin.auth import api_keys
from autocheckin.validation import CONTROL_CHARACTER, MAX_JSON_DEPTH, is_too_deep

REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# For HTML (the dashboard): nothing from elsewhere, no inline script, never in a frame.
HTML_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class BoundedJSONProvider(DefaultJSONProvider):
    """`request.get_json()` for every family: deep nesting is a 400, not a RecursionError."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            value = super().loads(s, **kwargs)
        except RecursionError:
            value = None
            too_deep = True
        else:
            too_deep = is_too_deep(value)
        if too_deep:
            raise BadRequest(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        return value


def request_origin(door: str, *, discord_user_id: str | None = None) -> Origin:
    """Who sent this check-in: the Discord account that asked when the bot relays it (all
    of the bot's requests share one address), else the caller's address."""
    client = f"discord:{discord_user_id}" if discord_user_id else ratelimits.client_address()
    return Origin(door=door, client=client, user_agent=request.user_agent.string or "")


def _take_request_id() -> None:
    """The caller's X-Request-ID when it is a plain token, else a new one: it ties this
    request's log lines together, and the caller's to ours."""
    offered = request.headers.get("X-Request-ID", "")
    g.request_id = offered if REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex


def _security_headers(response: Response) -> Response:
    if "request_id" in g:
        response.headers["X-Request-ID"] = g.request_id
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", HTML_POLICY)
    return response


def _refuse_control_characters_in_path() -> None:
    """No route has a NUL or a newline in it; PostgreSQL would refuse such an id (500)."""
    if CONTROL_CHARACTER.search(request.path):
        raise NotFound()


def key_accepted(provided: str | None, configured: str | None) -> bool:
    """Whether `provided` is a live `x-checkout-key`; every key door asks here.

    A client address past KEY_FAILURES wrong keys gets 429 (with Retry-After) before its key
    is even looked at, on every door together and in every worker, so no door (not even
    `/api/v1/auth/test`, which answers true or false) is a guessing oracle.
    """
    client = ratelimits.client_address()
    ratelimits.ensure_allowed(ratelimits.KEY_FAILURES, "key", client)
    if api_keys.is_valid(provided, configured):
        return True
    if provided:
        ratelimits.count_quietly(ratelimits.KEY_FAILURES, "key", client)
    return False


def init_security(app: Flask) -> None:
    hops = app.config["TRUSTED_PROXY_HOPS"]
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    app.json = BoundedJSONProvider(app)
    app.json.sort_keys = False
    app.before_request(_take_request_id)
    app.before_request(_refuse_control_characters_in_path)
    app.after_request(_security_headers)
    ratelimits.init_app(app)
