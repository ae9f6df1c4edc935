"""Where a check-in through a personal door came from, kept beside it for the findings.

A personal door (web, Discord) checks in the caller's own person, so the one thing that
tells a phone signing in as many people apart from many phones is the client that sent
each check-in. It is written in the check-in's transaction (one small insert, on these
doors only, never on a check-in app's) and read only after commit, by `findings`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.orm import Session

from autocheckin.attendance.models import CheckInOrigin

ORIGINS = CheckInOrigin.__table__
MAX_USER_AGENT = 200


@dataclass(frozen=True)
class Origin:
    """`door`: web, discord, discord_admin …; `client`: the address for the web, the asking
    Discord account (`discord:<id>`) for the bot; `user_agent` as sent, cut short."""

    door: str
    client: str
    user_agent: str = ""


def record(
    session: Session,
    *,
    attendance_id: int,
    origin: Origin,
    account_id: int | None,
    recorded_at: datetime,
) -> None:
    session.connection().execute(
        insert(ORIGINS),
        {
            "attendance_id": attendance_id,
            "door": origin.door[:20],
            "client": origin.client[:100],
            "user_agent": origin.user_agent[:MAX_USER_AGENT],
            "account_id": account_id,
            "recorded_at": recorded_at,
        },
    )
