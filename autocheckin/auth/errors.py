"""Who may not: no or bad credentials (Unauthorized), or not allowed (Forbidden).

Both are general kinds (`autocheckin/errors.py`); they are named here too for the code
that imports them from auth.
"""

from __future__ import annotations

from autocheckin.errors import Forbidden, Unauthorized

__all__ = ["Forbidden", "Unauthorized"]
