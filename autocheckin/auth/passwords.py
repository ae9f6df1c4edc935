"""Password rules: long enough, and not among the passwords every attacker tries first.

The list is zxcvbn's (Dropbox's estimator, kept up by the zxcvbn-python project): its
"passwords" list is ranked by how often each appeared in leaked password dumps.
"""

from __future__ import annotations

from functools import cache

from zxcvbn.frequency_lists import FREQUENCY_LISTS

MIN_LENGTH = 8
COMMONEST = 1000


@cache
def _commonest() -> frozenset[str]:
    return frozenset(FREQUENCY_LISTS["passwords"][:COMMONEST])


def weakness(password: str) -> str | None:
    """Why `password` is refused, or None when it may be used."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if password.lower() in _commonest():
        return f"is one of the {COMMONEST:,} most common passwords; choose another"
    return None
