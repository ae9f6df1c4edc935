"""Suspicious-check-in findings in the AutoCheckin API (`/api/v1/findings…`).

Who may call: `x-checkout-key` (CHECKOUT_API_KEY or an integration key) or a web admin's
bearer token (`api/admission.py`); the caller is who decided. A finding holds addresses and
browsers: no plain user reads it. Errors have the v1 shape.
"""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, Response, g, jsonify
from pydantic import BaseModel, Field

from autocheckin.api.admission import SECURITY, admit_admin_or_key
from autocheckin.api.openapi import answers, documented
from autocheckin.api.parsing import parse_body, parse_query
from autocheckin.findings import review
from autocheckin.findings.models import STATES, Finding
from autocheckin.findings.rules import RULES
from autocheckin.times import IsoTime

bp = Blueprint("findings", __name__, url_prefix="/api/v1")


@bp.before_request
@answers(401, 403, 429, 503)
def require_admin_or_key() -> None:
    admit_admin_or_key("Only admins may read and decide findings")


class FindingView(BaseModel):
    id: int
    rule: str
    subject: str
    state: str
    first_seen_at: IsoTime
    last_seen_at: IsoTime
    evidence: dict[str, Any]
    attendance_ids: list[int]
    created_at: IsoTime
    decided_by: str | None
    decided_at: IsoTime | None
    decision_reason: str | None
    voided_ids: list[int] | None

    @classmethod
    def of(cls, finding: Finding) -> FindingView:
        return cls.model_validate(finding, from_attributes=True)


class FindingPage(BaseModel):
    total: int
    findings: list[FindingView]


class FindingListAnswer(BaseModel):
    success: Literal[True] = True
    message: str
    data: FindingPage


class FindingAnswer(BaseModel):
    success: Literal[True] = True
    message: str
    data: FindingView


class FindingQuery(BaseModel):
    state: Literal[(*STATES, "all")] = "open"  # type: ignore[valid-type]
    rule: Literal[RULES] | None = None  # type: ignore[valid-type]
    skip: int = Field(0, ge=0, le=1_000_000)
    limit: int = Field(50, ge=1, le=500)


class Decision(BaseModel):
    model_config = {"extra": "forbid"}

    reason: str = Field(
        min_length=1, max_length=2000, pattern=r"\S", description="why (kept with the finding)"
    )


class Confirmation(Decision):
    attendance_ids: list[int] | None = Field(
        None,
        min_length=1,
        max_length=500,
        description="the check-ins to void, among those the finding names; all when absent",
    )


def _success(model: BaseModel) -> Response:
    return jsonify(model.model_dump(mode="json"))


@bp.get("/findings")
@documented(
    "Findings, newest first (state open, confirmed, dismissed or all; rule; skip, limit)",
    query=FindingQuery,
    response=FindingListAnswer,
    security=SECURITY,
    errors=(400,),
)
def list_findings() -> Response:
    query = parse_query(FindingQuery)
    found, total = review.list_findings(
        review.FindingFilter(
            state=None if query.state == "all" else query.state,
            rule=query.rule,
            skip=query.skip,
            limit=query.limit,
        )
    )
    page = FindingPage(total=total, findings=[FindingView.of(f) for f in found])
    return _success(FindingListAnswer(message="Findings", data=page))


@bp.get("/findings/<int:finding_id>")
@documented(
    "One finding with its evidence", response=FindingAnswer, security=SECURITY, errors=(404,)
)
def get_finding(finding_id: int) -> Response:
    finding = review.get_finding(finding_id)
    return _success(FindingAnswer(message="Finding", data=FindingView.of(finding)))


@bp.post("/findings/<int:finding_id>/confirm")
@documented(
    "Confirm an open finding: the check-ins it names are voided through corrections",
    body=Confirmation,
    response=FindingAnswer,
    security=SECURITY,
    errors=(404, 409, 422),
)
def confirm_finding(finding_id: int) -> Response:
    body = parse_body(Confirmation)
    finding = review.confirm(
        finding_id=finding_id,
        actor=g.actor,
        reason=body.reason,
        attendance_ids=body.attendance_ids,
    )
    return _success(FindingAnswer(message="Finding confirmed", data=FindingView.of(finding)))


@bp.post("/findings/<int:finding_id>/dismiss")
@documented(
    "Dismiss an open finding; a reason is required",
    body=Decision,
    response=FindingAnswer,
    security=SECURITY,
    errors=(404, 409, 422),
)
def dismiss_finding(finding_id: int) -> Response:
    body = parse_body(Decision)
    finding = review.dismiss(finding_id=finding_id, actor=g.actor, reason=body.reason)
    return _success(FindingAnswer(message="Finding dismissed", data=FindingView.of(finding)))
