"""Login tokens: HS256 JWTs (PyJWT) naming the user, with an expiry."""

from __future__ import annotations

from datetime import timedelta

import jwt

from autocheckin.auth.errors import Unauthorized
from autocheckin.times import utcnow

ALGORITHM = "HS256"


def issue_token(*, user_id: int, token_key: str, secret: str, lifetime: timedelta) -> str:
    """`key` is the account's current token key: a new password, or a new account on a
    reused id, has another one, and the token stops working."""
    now = utcnow()
    claims = {"sub": str(user_id), "key": token_key, "iat": now, "exp": now + lifetime}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def claims_from_token(token: str, *, secret: str) -> tuple[int, str]:
    """(user id, token key) of a valid token; Unauthorized for expired, tampered or foreign
    ones."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "key"]}
        )
        return int(claims["sub"]), str(claims["key"])
    except jwt.ExpiredSignatureError:
        raise Unauthorized("Token has expired", code="token_expired") from None
    except (jwt.InvalidTokenError, ValueError):
        raise Unauthorized("Could not validate credentials", code="invalid_token") from None
