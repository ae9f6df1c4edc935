"""Absence alerts in the AutoCheckin API (`/api/v1/alerts…`): read them, acknowledge them.

Who may call: `x-checkout-key` (CHECKOUT_API_KEY or an integration key) or a web admin's
bearer token; a plain user's token is 403, nothing is 401. The caller is the actor an
acknowledgement records. Errors have the v1 shape (`{"success": false, "message", "error",
"code"}`); a query that does not fit is 422.
"""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, Response, g, jsonify, request
from pydantic import BaseModel, Field

from autocheckin.alerts import acknowledgement
from autocheckin.alerts.models import RULES, Alert
from autocheckin.api.admission import SECURITY, admit_admin_or_key
from autocheckin.api.openapi import answers, documented
from autocheckin.api.parsing import parse_args, parse_body
from autocheckin.times import IsoTime

bp = Blueprint("alerts", __name__, url_prefix="/api/v1")


@bp.before_request
@answers(401, 403, 429, 503)
def require_admin_or_key() -> None:
    """`x-checkout-key` or a web admin's bearer token; the caller becomes the actor."""
    admit_admin_or_key("Only admins may read and acknowledge alerts")


class AlertView(BaseModel):
    id: int
    rule: Literal[RULES]  # type: ignore[valid-type]
    person_id: int
    person_identifier: str | None
    person_email: str | None
    person_name: str
    figures: dict[str, Any] = Field(description="the numbers behind the alert, per rule")
    event_ids: list[int] = Field(description="the missed events the figures count")
    created_at: IsoTime
    acknowledged: bool
    acknowledged_by: str | None
    acknowledged_at: IsoTime | None
    acknowledgement_note: str | None

    @classmethod
    def of(cls, alert: Alert) -> AlertView:
        return cls(
            id=alert.id,
            rule=alert.rule,
            person_id=alert.student_id,
            person_identifier=alert.student.identifier,
            person_email=alert.student.email,
            person_name=alert.student.name,
            figures=alert.figures,
            event_ids=alert.event_ids,
            created_at=alert.created_at,
            acknowledged=alert.acknowledged_at is not None,
            acknowledged_by=alert.acknowledged_by,
            acknowledged_at=alert.acknowledged_at,
            acknowledgement_note=alert.acknowledgement_note,
        )


class AlertPage(BaseModel):
    total: int
    limit: int
    offset: int
    alerts: list[AlertView]


class AlertListAnswer(BaseModel):
    success: Literal[True] = True
    message: str
    data: AlertPage


class AlertAnswer(BaseModel):
    success: Literal[True] = True
    message: str
    data: AlertView


class AlertQuery(BaseModel):
    state: Literal[acknowledgement.STATES] = "open"  # type: ignore[valid-type]
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=1_000_000)


class AcknowledgeBody(BaseModel):
    model_config = {"extra": "forbid"}

    note: str | None = Field(None, max_length=2000)


def _success(model: BaseModel) -> Response:
    return jsonify(model.model_dump(mode="json"))


@bp.get("/alerts")
@documented(
    "Absence alerts, newest first (state open, acknowledged or all; limit, offset)",
    query=AlertQuery,
    response=AlertListAnswer,
    security=SECURITY,
    errors=(422,),
)
def list_alerts() -> Response:
    query = parse_args(AlertQuery)
    found, total = acknowledgement.list_alerts(
        acknowledgement.AlertFilter(state=query.state, limit=query.limit, offset=query.offset)
    )
    page = AlertPage(
        total=total,
        limit=query.limit,
        offset=query.offset,
        alerts=[AlertView.of(alert) for alert in found],
    )
    return _success(AlertListAnswer(message="Alerts", data=page))


@bp.post("/alerts/<int:alert_id>/acknowledge")
@documented(
    "Acknowledge an alert, with an optional note; a second acknowledgement is 409 and "
    "names the first",
    body=AcknowledgeBody,
    response=AlertAnswer,
    security=SECURITY,
    errors=(404, 409, 422),
)
def acknowledge_alert(alert_id: int) -> Response:
    body = parse_body(AcknowledgeBody) if request.content_length else AcknowledgeBody()
    alert = acknowledgement.acknowledge(alert_id=alert_id, actor=g.actor, note=body.note)
    return _success(AlertAnswer(message="Alert acknowledged", data=AlertView.of(alert)))
