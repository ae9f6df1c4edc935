"""How a delivery is signed: the source document's scheme and Standard Webhooks, one secret.

- `X-SmartPresence-Signature`: hex HMAC-SHA256 of the exact body bytes, keyed with the
  secret's UTF-8 bytes — what the document's `verify_webhook(payload, signature, secret)`
  computes.
- `webhook-signature`: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` (Standard
  Webhooks), keyed with the secret's base64 part when it is `whsec_<base64>` (the form we
  generate, and what the `standardwebhooks` library expects), else with its UTF-8 bytes —
  the same rule the inbound webhooks apply.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

from autocheckin.version import __version__
from autocheckin.webhooks.signatures import sign_legacy, sign_standard

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
USER_AGENT = f"AutoCheckin-Webhooks/{__version__}"
SIGNATURE_HEADER = "X-SmartPresence-Signature"
EVENT_HEADER = "X-SmartPresence-Event"
TIMESTAMP_HEADER = "X-SmartPresence-Timestamp"
# Headers a subscription may not set: they are ours to compute on every attempt.
RESERVED_HEADERS = frozenset(
    name.lower()
    for name in (
        SIGNATURE_HEADER,
        EVENT_HEADER,
        TIMESTAMP_HEADER,
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
    )
)


def new_secret() -> str:
    """`whsec_` and 32 random bytes in base64, as Standard Webhooks and Svix issue them."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def secret_hint(secret: str) -> str:
    """Enough to tell two secrets apart in a listing, nothing to sign with."""
    digest = hashlib.sha256(secret.encode("utf-8")).hexdigest()
    return f"sha256:{digest[:8]}"


def signed_headers(
    *, body: bytes, secret: str, message_id: str, event_type: str, timestamp: int
) -> dict[str, str]:
    """Every header a delivery attempt carries besides the subscription's own."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: sign_legacy(body, secret),
        EVENT_HEADER: event_type,
        TIMESTAMP_HEADER: str(timestamp),
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_standard(body, secret, msg_id=message_id, timestamp=timestamp),
    }
