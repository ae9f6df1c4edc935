"""What the webhook endpoints answer on success, as models: the commands render them and
`/openapi.json` describes them (the pipeline adds the record's `request_id`)."""

from __future__ import annotations

from datetime import date as date_type
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from autocheckin.times import IsoTime


class _FromAttributes(BaseModel):
    model_config = ConfigDict(from_attributes=True, validate_by_name=True)


class WebhookStudent(_FromAttributes):
    id: int
    identifier: str | None
    name: str
    email: str | None
    is_admin: bool


class WebhookEvent(_FromAttributes):
    id: int
    name: str
    date: IsoTime = Field(validation_alias="start_time")
    end_time: IsoTime | None
    event_type: str
    points: int
    description: str
    location: str


class StudentAnswer(BaseModel):
    success: Literal[True] = True
    message: str
    student: WebhookStudent
    source: str | None


class EventAnswer(BaseModel):
    success: Literal[True] = True
    message: str
    event: WebhookEvent
    source: str | None


class AttendanceStudent(BaseModel):
    id: int
    name: str
    email: str | None


class AttendanceEvent(BaseModel):
    id: int
    name: str
    # The guide's answer shows the event's day ("2024-01-15", in UTC); the full start beside.
    date: date_type = Field(description="the event's start day, in UTC (YYYY-MM-DD)")
    start_time: IsoTime


class AttendanceAnswer(BaseModel):
    success: Literal[True] = True
    message: str = "Attendance recorded successfully"
    attendance_id: int
    student: AttendanceStudent
    event: AttendanceEvent
    checked_in_at: IsoTime
    status: Literal["present", "late"]
    source: str | None


class BatchItemResult(BaseModel):
    index: int
    status: int
    result: Literal["recorded", "duplicate", "not_found", "rejected"]
    attendance_id: int | None = None
    student_id: int | None = None
    event_id: int | None = None
    checked_in_at: IsoTime | None = None
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
    success: Literal[True] = True
    message: str
    totals: BatchTotals
    results: list[BatchItemResult]
