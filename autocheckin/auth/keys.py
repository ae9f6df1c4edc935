"""The `x-checkout-key` check: constant-time, on bytes."""

from __future__ import annotations

import hmac


def key_matches(provided: str | None, configured: str | None) -> bool:
    """True when both are present and equal; compared as UTF-8 bytes in constant time.

    `hmac.compare_digest` raises on non-ASCII `str`, so both sides are encoded first.
    """
    if not provided or not configured:
        return False
    return hmac.compare_digest(provided.encode("utf-8"), configured.encode("utf-8"))
