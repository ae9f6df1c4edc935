"""Where a check-in through a personal door came from, kept beside it for the findings.

A personal door (web, Discord) checks in the caller's own person, so the one thing that
tells a phone signing in as many people apart from many phones is the client that sent
each check-in. It is written in the check-in's transaction (one small insert, on these
doors only, never on a check-in app's) and read only after commit, by `findings`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from autocheckin.attendance.models import Attendance, CheckInOrigin
from autocheckin.database import write_transaction
from autocheckin.times import utcnow

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


def prune(*, retention: timedelta, now: datetime | None = None) -> int:
    """Forget the clients of check-ins older than `retention` (addresses are personal data;
    the rules that read them look minutes back); returns how many went."""
    cutoff = (now or utcnow()) - retention
    with write_transaction() as session:
        result = session.execute(delete(CheckInOrigin).where(CheckInOrigin.recorded_at < cutoff))
    return result.rowcount or 0


def forget_person(session: Session, person_id: int) -> None:
    """A removed person's check-ins keep no client: where they checked in from is theirs."""
    theirs = select(Attendance.id).where(Attendance.student_id == person_id)
    session.execute(delete(CheckInOrigin).where(CheckInOrigin.attendance_id.in_(theirs)))
