"""Who may call the admin families of `/api/v1` (corrections, alerts, findings).

`x-checkout-key` (CHECKOUT_API_KEY or an integration key) or a web admin's bearer token;
a plain user's token is 403, nothing is 401. The caller becomes `g.actor`, the name every
decision records: `checkout_key`, `api_key:<name>` or `account:<id>`.
"""

from __future__ import annotations

from flask import current_app, g, request

from autocheckin.api.login import current_user
from autocheckin.api.security import key_accepted
from autocheckin.auth import api_keys
from autocheckin.auth.errors import Forbidden, Unauthorized
from autocheckin.errors import NotConfigured

KEY_HEADER = "x-checkout-key"
SECURITY = ("checkoutKey", "bearerAuth")


def admit_admin_or_key(refusal: str) -> str:
    """The caller's actor name, also set as `g.actor`; `refusal` is a plain user's 403."""
    if KEY_HEADER in request.headers:
        configured = current_app.config["CHECKOUT_API_KEY"]
        presented = request.headers.get(KEY_HEADER)
        if key_accepted(presented, configured):
            g.actor = _key_actor(presented, configured)
            return g.actor
        if not configured and not api_keys.any_live():
            raise NotConfigured("CHECKOUT_API_KEY is not configured on this server")
        raise Unauthorized("Invalid API key")
    if request.headers.get("Authorization", "").lower().startswith("bearer "):
        user = current_user()
        if not user.is_admin:
            raise Forbidden(refusal, code="admin_required")
        g.actor = f"account:{user.id}"
        return g.actor
    raise Unauthorized(f"Send {KEY_HEADER}, or an admin's Authorization: Bearer token")


def _key_actor(presented: str | None, configured: str | None) -> str:
    principal = api_keys.holder_of(presented, configured)
    if principal is None:  # revoked between the two looks
        raise Unauthorized("Invalid API key")
    if principal == api_keys.CHECKOUT_KEY:
        return principal
    record = api_keys.find_live(presented or "")
    return f"api_key:{record.name}" if record is not None else principal
