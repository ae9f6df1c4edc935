"""Webhook signatures, checked over the raw body bytes before anything is parsed.

Two schemes: `X-Webhook-Signature: sha256=<hex HMAC-SHA256(body, WEBHOOK_SECRET)>` (the
prefix optional, as the guide's own client sends it either way), and Standard Webhooks
(`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`), whose timestamp
must be within the tolerance. Every malformed header is a SignatureError, never a crash.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from standardwebhooks.webhooks import Webhook

from autocheckin.errors import Invalid, Unauthorized

TOLERANCE = timedelta(minutes=5)
LEGACY_HEADER = "X-Webhook-Signature"
LEGACY_HEADER_KEY = LEGACY_HEADER.lower()


class SignatureError(Unauthorized):
    """The request cannot be shown to come from a holder of the secret."""


class UnreadableSignedBody(Invalid, SignatureError):
    """A Standard Webhooks body that is not text, so it cannot be signed as the spec says
    (a bad request, not a bad signature)."""


def _standard_key(secret: str) -> bytes:
    """A `whsec_` secret is base64 as the spec says; any other secret is used as its bytes."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_") + "==", validate=False)
        except (binascii.Error, ValueError):
            return secret.encode("utf-8")
    return secret.encode("utf-8")


def sign_legacy(body: bytes, secret: str) -> str:
    """The value a client puts in X-Webhook-Signature (without the `sha256=` prefix)."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def sign_standard(body: bytes, secret: str, *, msg_id: str, timestamp: int) -> str:
    """A Standard Webhooks `webhook-signature` value, `v1,<base64>`."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return Webhook(_standard_key(secret)).sign(msg_id, moment, body.decode("utf-8"))


def _verify_legacy(body: bytes, header: str, secret: str) -> None:
    provided = header.strip()
    if provided.lower().startswith("sha256="):
        provided = provided[len("sha256=") :]
    expected = sign_legacy(body, secret).encode("ascii")
    if not hmac.compare_digest(provided.lower().encode("utf-8"), expected):
        raise SignatureError("Invalid signature", code="invalid_signature")


def _verify_standard(body: bytes, headers: Mapping[str, str], secret: str, now: datetime) -> None:
    msg_id = headers.get("webhook-id", "")
    raw_timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not msg_id or not raw_timestamp:
        raise SignatureError(
            "webhook-id and webhook-timestamp headers are required with webhook-signature",
            code="invalid_signature",
        )
    try:
        timestamp = int(raw_timestamp.strip())
        moment = datetime.fromtimestamp(timestamp, tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise SignatureError("Invalid webhook-timestamp header", code="invalid_signature") from None
    if abs(now - moment) > TOLERANCE:
        raise SignatureError(
            "webhook-timestamp is outside the 5-minute tolerance", code="stale_signature"
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise UnreadableSignedBody("Body is not valid UTF-8", code="invalid_encoding") from None
    expected = Webhook(_standard_key(secret)).sign(msg_id, moment, text).split(",", 1)[1]
    expected_bytes = base64.b64decode(expected)
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version != "v1" or not value:
            continue
        try:
            provided = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(provided, expected_bytes):
            return
    raise SignatureError("Invalid signature", code="invalid_signature")


def verify(body: bytes, headers: Mapping[str, str], secret: str, *, now: datetime) -> None:
    """Raise SignatureError unless `body` carries a valid signature made with `secret`.

    `headers` has lower-case keys.
    """
    if headers.get("webhook-signature"):
        _verify_standard(body, headers, secret, now)
        return
    legacy = headers.get(LEGACY_HEADER_KEY)
    if not legacy:
        raise SignatureError(f"Missing {LEGACY_HEADER} header", code="missing_signature")
    _verify_legacy(body, legacy, secret)
