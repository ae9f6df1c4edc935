"""Login tokens: HS256 JWTs (PyJWT) naming the user, with an expiry."""

from __future__ import annotations

from datetime import timedelta

import jwt

from autocheckin.attendance.errors import DomainError
from autocheckin.times import utcnow

ALGORITHM = "HS256"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


def issue_token(*, user_id: int, secret: str, lifetime: timedelta) -> str:
    now = utcnow()
    claims = {"sub": str(user_id), "iat": now, "exp": now + lifetime}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def user_id_from_token(token: str, *, secret: str) -> int:
    """The user id a valid token names; Unauthorized for expired, tampered or foreign ones."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
        )
        return int(claims["sub"])
    except jwt.ExpiredSignatureError:
        raise Unauthorized("Token has expired", code="token_expired") from None
    except (jwt.InvalidTokenError, ValueError):
        raise Unauthorized("Could not validate credentials", code="invalid_token") from None
