"""Webhook request and answer models for /openapi.json, built on the parsing models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator

from autocheckin.times import IsoTime
from autocheckin.webhooks.answers import (
    AttendanceAnswer,
    AttendanceBatchAnswer,
    EventAnswer,
    StudentAnswer,
)
from autocheckin.webhooks.payloads import MAX_BATCH_ITEMS, AttendanceData, EventData, StudentData


class OneTapPayload(BaseModel):
    action: Literal["create_student", "create_event", "record_attendance"]
    data: StudentData | EventData | AttendanceData
    source: str | None = None
    metadata: dict[str, Any] | None = None


class UnifiedPayload(BaseModel):
    type: Literal["student", "event", "attendance"]
    action: Literal["create", "update"] = "create"
    data: StudentData | EventData | AttendanceData
    source: str | None = None
    metadata: dict[str, Any] | None = None


class LegacyAttendancePayload(AttendanceData):
    source: str | None = None
    metadata: dict[str, Any] | None = None


class WebhookStatus(BaseModel):
    status: str
    message: str
    endpoints: dict[str, str]
    supported_actions: list[str] | None = None
    supported_types: list[str] | None = None
    signature_required: bool
    last_24h: dict[str, int]


class AttendanceBatchPayload(BaseModel):
    # Declared only: the adapter refuses an empty or oversized list in the guide's words.
    items: list[LegacyAttendancePayload] = Field(
        json_schema_extra={"minItems": 1, "maxItems": MAX_BATCH_ITEMS}
    )
    source: str | None = None


class WebhookRequestView(BaseModel):
    """An operator's view of one recorded webhook request (the body as text, truncated)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    endpoint: str
    received_at: IsoTime
    source: str | None
    outcome: Literal["processing", "succeeded", "failed", "unmatched", "resolved"]
    status_code: int | None
    error: str | None
    error_code: str | None
    duration_ms: float | None
    attempts: int
    is_replayable: bool
    idempotency_key: str | None
    headers: dict[str, Any]
    body: str
    body_size: int | None
    completed_at: IsoTime | None

    @field_validator("body", mode="before")
    @classmethod
    def _as_text(cls, body: bytes | str) -> str:
        text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
        return text[:4000]

    @classmethod
    def of(cls, record: Any) -> dict[str, Any]:
        return cls.model_validate(record).model_dump(mode="json")


class _Recorded(BaseModel):
    """The record's id, which every answer of a POST carries."""

    request_id: int


class StudentAnswered(StudentAnswer, _Recorded):
    """A student created or updated."""


class EventAnswered(EventAnswer, _Recorded):
    """An event created or updated."""


class AttendanceAnswered(AttendanceAnswer, _Recorded):
    """A check-in recorded."""


class AttendanceBatchAnswered(AttendanceBatchAnswer, _Recorded):
    """Every item's result, in order."""


class OneTapAnswered(RootModel[StudentAnswered | EventAnswered | AttendanceAnswered]):
    """What the action did: a student, an event, or a check-in."""
