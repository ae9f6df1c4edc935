"""The one registry of inbound webhook endpoints: path, parser, default source, signature rule.

Routes, the status pages, the request log and the pipeline all read this table, so a new
endpoint is one entry here and cannot be half-registered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from autocheckin.attendance.errors import Invalid
from autocheckin.webhooks import payloads
from autocheckin.webhooks.commands import Command
from autocheckin.webhooks.schemas import (
    AttendanceAnswered,
    AttendanceBatchAnswered,
    AttendanceBatchPayload,
    LegacyAttendancePayload,
    OneTapAnswered,
    OneTapPayload,
    UnifiedPayload,
)

PREFIX = "/api/webhook"


@dataclass(frozen=True)
class WebhookEndpoint:
    """One way in. `is_always_signed` endpoints need a signature whatever the setting."""

    name: str
    path: str
    parse: Callable[[dict[str, Any], str], Command]
    default_source: str
    is_always_signed: bool
    family: str  # which status page counts it: onetap, unified or attendance
    summary: str
    body: type[BaseModel]
    response: type[BaseModel] | None = None
    status: int = 201
    also_answers: tuple[int, ...] = ()  # other success statuses with the same shape

    @property
    def url(self) -> str:
        return PREFIX + self.path


ENDPOINTS: dict[str, WebhookEndpoint] = {
    endpoint.name: endpoint
    for endpoint in (
        WebhookEndpoint(
            name="onetap",
            path="/onetap/",
            parse=payloads.parse_onetap,
            default_source="onetap_webhook",
            is_always_signed=False,
            family="onetap",
            summary="OneTap webhook: create_student, create_event, record_attendance",
            body=OneTapPayload,
            response=OneTapAnswered,
        ),
        WebhookEndpoint(
            name="unified",
            path="/unified/",
            parse=payloads.parse_unified,
            default_source="unified_webhook",
            is_always_signed=False,
            family="unified",
            summary="Unified webhook: type student / event / attendance × action create / update",
            body=UnifiedPayload,
            response=OneTapAnswered,
            also_answers=(200,),  # updates
        ),
        WebhookEndpoint(
            name="attendance",
            path="/attendance/",
            parse=payloads.parse_legacy,
            default_source="webhook",
            is_always_signed=False,
            family="attendance",
            summary="Legacy attendance webhook (flat payload)",
            body=LegacyAttendancePayload,
            response=AttendanceAnswered,
        ),
        WebhookEndpoint(
            name="attendance_secure",
            path="/attendance/secure/",
            parse=payloads.parse_legacy,
            default_source="webhook",
            is_always_signed=True,
            family="attendance",
            summary="Legacy attendance webhook, HMAC signature required",
            body=LegacyAttendancePayload,
            response=AttendanceAnswered,
        ),
        WebhookEndpoint(
            name="attendance_batch",
            path="/attendance/batch/",
            parse=payloads.parse_batch,
            default_source="webhook",
            is_always_signed=False,
            family="attendance",
            summary=(
                f"Batch check-ins for offline scanners: up to {payloads.MAX_BATCH_ITEMS} "
                "legacy items, a result per item"
            ),
            body=AttendanceBatchPayload,
            response=AttendanceBatchAnswered,
            status=200,
        ),
    )
}


def in_family(family: str | None) -> tuple[str, ...]:
    """Names of the endpoints a status page counts (all of them for None)."""
    return tuple(
        name for name, endpoint in ENDPOINTS.items() if family is None or endpoint.family == family
    )


def parse(name: str, payload: Any) -> Command:
    """The command a payload for endpoint `name` asks for; raises Invalid naming the problem."""
    if not isinstance(payload, dict):
        raise Invalid("Invalid JSON payload", code="invalid_json", details="expected a JSON object")
    endpoint = ENDPOINTS.get(name)
    if endpoint is None:
        raise Invalid(f"Unknown webhook endpoint: {name}", code="unknown_endpoint")
    return endpoint.parse(payload, endpoint.default_source)
