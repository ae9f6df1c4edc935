"""Reading alerts and acknowledging them: an admin says they have seen one, once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import joinedload

from autocheckin.alerts.models import Alert
from autocheckin.database import write_transaction
from autocheckin.errors import Conflict, NotFound
from autocheckin.extensions import db
from autocheckin.times import iso, utcnow

OPEN, ACKNOWLEDGED, ALL = "open", "acknowledged", "all"
STATES = (OPEN, ACKNOWLEDGED, ALL)


@dataclass(frozen=True)
class AlertFilter:
    state: str = OPEN
    limit: int = 50
    offset: int = 0


def _where(state: str) -> list:
    if state == OPEN:
        return [Alert.acknowledged_at.is_(None)]
    if state == ACKNOWLEDGED:
        return [Alert.acknowledged_at.is_not(None)]
    return []


def list_alerts(filters: AlertFilter) -> tuple[list[Alert], int]:
    """A page of alerts in that state, newest first, each with its person; and the total."""
    where = _where(filters.state)
    total = db.session.scalar(select(func.count()).select_from(Alert).where(*where)) or 0
    page = db.session.scalars(
        select(Alert)
        .where(*where)
        .options(joinedload(Alert.student))
        .order_by(Alert.created_at.desc(), Alert.id.desc())
        .offset(filters.offset)
        .limit(filters.limit)
    )
    return list(page), total


def get_alert(alert_id: int) -> Alert:
    alert = db.session.get(Alert, alert_id, populate_existing=True)
    if alert is None:
        raise NotFound(f"Alert {alert_id} not found", code="alert_not_found")
    return alert


def acknowledge(
    *, alert_id: int, actor: str, note: str | None, now: datetime | None = None
) -> Alert:
    """Mark the alert seen by `actor`; a second acknowledgement is a Conflict naming the
    first (one conditional UPDATE: of two at once, one wins, the other changes nothing)."""
    note = (note or "").strip() or None
    with write_transaction() as session:
        acknowledged = session.execute(
            update(Alert)
            .where(Alert.id == alert_id, Alert.acknowledged_at.is_(None))
            .values(
                acknowledged_by=actor,
                acknowledged_at=now or utcnow(),
                acknowledgement_note=note,
            )
            .execution_options(synchronize_session=False)
        )
    alert = get_alert(alert_id)
    if not acknowledged.rowcount:
        raise Conflict(
            f"Alert {alert_id} was already acknowledged by {alert.acknowledged_by} "
            f"at {iso(alert.acknowledged_at)}",
            code="alert_acknowledged",
            details=alert.acknowledged_by,
        )
    return alert
