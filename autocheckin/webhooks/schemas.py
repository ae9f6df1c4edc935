"""Webhook request and answer models for /openapi.json, built on the parsing models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from autocheckin.webhooks.payloads import AttendanceData, EventData, StudentData


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


class AttendanceAnswer(BaseModel):
    success: bool
    message: str
    attendance_id: int
    student: dict[str, Any]
    event: dict[str, Any]
    checked_in_at: str
    status: Literal["present", "late"]
    source: str
    request_id: int


class WebhookStatus(BaseModel):
    status: str
    message: str
    endpoints: dict[str, str]
    supported_actions: list[str] | None = None
    supported_types: list[str] | None = None
    signature_required: bool
    last_24h: dict[str, int]


class AttendanceBatchPayload(BaseModel):
    items: list[LegacyAttendancePayload]
    source: str | None = None


class BatchItemResult(BaseModel):
    index: int
    status: int
    result: Literal["recorded", "duplicate", "not_found", "rejected"]
    attendance_id: int | None = None
    student_id: int | None = None
    event_id: int | None = None
    checked_in_at: str | None = None
    attendance_status: Literal["present", "late"] | None = None
    error: str | None = None
    code: str | None = None
    details: str | None = None


class BatchTotals(BaseModel):
    items: int
    recorded: int
    duplicate: int
    not_found: int
    rejected: int


class AttendanceBatchAnswer(BaseModel):
    success: bool
    message: str
    totals: BatchTotals
    results: list[BatchItemResult]
    request_id: int
