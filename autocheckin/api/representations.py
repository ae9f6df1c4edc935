"""What the events, accounts and Discord families answer: pydantic models read from the
ORM objects' attributes (`from_attributes`), so one definition renders the answer and
describes it in `/openapi.json` (and a test checks every answer against that schema)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

from flask import Response, jsonify, stream_with_context
from pydantic import BaseModel, ConfigDict, Field, RootModel

from autocheckin.attendance.models import Attendance, Event, Student
from autocheckin.attendance.windows import CheckInRules, EventStatus, event_status
from autocheckin.auth.models import Account
from autocheckin.integrations.exports import csv_lines
from autocheckin.times import IsoTime


class Representation(BaseModel):
    model_config = ConfigDict(from_attributes=True, validate_by_name=True)


def answer(model: BaseModel, status: int = 200) -> Response:
    """The model as the JSON answer (times rendered by `IsoTime`)."""
    response = jsonify(model.model_dump(mode="json"))
    response.status_code = status
    return response


class _Computed:
    """An ORM object seen with a few computed attributes more, for `from_attributes`."""

    def __init__(self, obj: Any, **computed: Any):
        self._obj, self._computed = obj, computed

    def __getattr__(self, name: str) -> Any:
        return self._computed[name] if name in self._computed else getattr(self._obj, name)


def csv_download(header: tuple[str, ...], rows: Iterator[tuple], filename: str) -> Response:
    """Rows streamed as a CSV attachment, chunk by chunk as the database yields them."""
    return Response(
        stream_with_context(csv_lines(header, rows)),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def with_computed(obj: Any, **computed: Any) -> Any:
    """`obj` as `from_attributes` reads it, with these attributes added or replaced."""
    return _Computed(obj, **computed)


# --- users -----------------------------------------------------------------------------------


class UserOut(Representation):
    """A user as the accounts and events APIs show one; never the password hash."""

    id: int
    email: str | None
    name: str
    discord_user_id: str | None
    discord_username: str | None
    is_active: bool
    is_admin: bool
    created_at: IsoTime


class ProfileUpdated(UserOut):
    """The changed account; after a password change, a new token (every older one ended)."""

    access_token: str | None = None


class UserPage(Representation):
    users: list[UserOut]
    total: int


class Token(Representation):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - OAuth2's token type, no secret


class DiscordUserOut(Representation):
    id: int
    name: str
    discord_user_id: str | None
    discord_username: str | None
    is_active: bool
    is_admin: bool
    created_at: IsoTime


class DiscordRegistered(DiscordUserOut):
    message: str

    @classmethod
    def of(cls, user: Account, message: str) -> DiscordRegistered:
        return cls.model_validate(_Computed(user, message=message))


class DiscordUserBrief(Representation):
    name: str
    discord_user_id: str | None
    discord_username: str | None


class DiscordUserRow(Representation):
    id: int
    name: str
    is_admin: bool
    discord_username: str | None
    discord_user_id: str | None


class DiscordUserPage(Representation):
    users: list[DiscordUserRow]
    total: int


class AdminCheck(Representation):
    is_admin: bool
    user_name: str
    discord_username: str | None


class MadeAdmin(Representation):
    success: Literal[True] = True
    message: str
    user: DiscordUserOut


# --- events ----------------------------------------------------------------------------------


class EventOut(Representation):
    id: int
    title: str = Field(validation_alias="name")
    description: str
    start_time: IsoTime
    end_time: IsoTime | None
    location: str
    discord_channel_id: str | None
    is_active: bool
    created_by: int | None = Field(validation_alias="created_by_id")
    created_at: IsoTime
    status: Literal["upcoming", "active", "ended"]
    can_attend: bool
    series_id: int | None = Field(None, description="the series it is an occurrence of")

    @classmethod
    def of(cls, event: Event, *, now: datetime, rules: CheckInRules) -> EventOut:
        window = event_status(event, now, rules)
        return cls.model_validate(
            _Computed(event, status=window.status, can_attend=window.can_attend)
        )


class EventList(RootModel[list[EventOut]]):
    """Events, as a JSON array."""


class AttendedEventOut(EventOut):
    attended_at: IsoTime
    attendance_status: str

    @classmethod
    def of_attendance(
        cls, attendance: Attendance, *, now: datetime, rules: CheckInRules
    ) -> AttendedEventOut:
        event = attendance.event
        window = event_status(event, now, rules)
        return cls.model_validate(
            _Computed(
                event,
                status=window.status,
                can_attend=window.can_attend,
                attended_at=attendance.checked_in_at,
                attendance_status=attendance.status,
            )
        )


class AttendedEventList(RootModel[list[AttendedEventOut]]):
    """The user's attended events, as a JSON array."""


class EventStatusOut(Representation):
    id: int
    title: str
    status: Literal["upcoming", "active", "ended"]
    start_time: IsoTime
    end_time: IsoTime | None
    can_attend: bool
    time_until_start: int
    time_until_end: int | None

    @classmethod
    def of(cls, event: Event, window: EventStatus) -> EventStatusOut:
        return cls(
            id=event.id,
            title=event.name,
            status=window.status,
            start_time=event.start_time,
            end_time=event.end_time,
            can_attend=window.can_attend,
            time_until_start=window.seconds_until_start,
            time_until_end=window.seconds_until_end,
        )


class UpcomingEvent(Representation):
    id: int
    title: str = Field(validation_alias="name")
    description: str
    start_time: IsoTime
    end_time: IsoTime | None


class UpcomingEventList(RootModel[list[UpcomingEvent]]):
    """Events not open yet, soonest first."""


class EventBrief(Representation):
    id: int
    title: str = Field(validation_alias="name")


class EventEnding(EventBrief):
    end_time: IsoTime | None


# --- attendance ------------------------------------------------------------------------------


class AttendeeOut(Representation):
    """An attendee on a public list: no email address."""

    id: int
    name: str
    discord_username: str | None
    attended_at: IsoTime
    status: str

    @classmethod
    def of(cls, attendance: Attendance, *, discord_username: str | None = None) -> AttendeeOut:
        """`discord_username`: of the account linked to the attendee, if any."""
        student: Student = attendance.student
        return cls.model_validate(
            _Computed(
                student,
                attended_at=attendance.checked_in_at,
                status=attendance.status,
                discord_username=discord_username,
            )
        )


class AttendeeList(RootModel[list[AttendeeOut]]):
    """An event's attendees, as a JSON array."""


class EventAttendees(Representation):
    event_id: int
    title: str
    attendees: list[AttendeeOut]
    total: int


class Attended(Representation):
    success: Literal[True] = True
    message: str
    event: EventOut
    attended_at: IsoTime
    status: str


class AttendanceCheck(Representation):
    event_id: int
    user_id: int
    attended: bool
    attended_at: IsoTime | None
    status: str | None


class DiscordAttendanceCheck(Representation):
    event_id: int
    discord_user_id: str
    attended: bool
    attended_at: IsoTime | None
    status: str | None


class Refused(Representation):
    """The Discord bots' refusal: 200 with success false, and why."""

    success: Literal[False] = False
    message: str


class RefusedInWindow(Refused):
    event_status: EventStatusOut


class RefusedAmong(Refused):
    events: list[EventBrief]


class ExcuseOut(Representation):
    """A person's excuse for an event, and what became of it."""

    id: int
    event_id: int
    reason: str
    state: Literal["pending", "approved", "declined"]
    submitted_at: IsoTime
    decided_at: IsoTime | None
    decision_reason: str | None


class ExcuseList(RootModel[list[ExcuseOut]]):
    """The user's excuses, newest first."""


class ExcuseSubmitted(Representation):
    """The bot's answer to an excuse: 200 with success true (a refusal is `Refused`)."""

    success: Literal[True] = True
    message: str
    excuse: ExcuseOut


class ExcuseAnswer(RootModel[ExcuseSubmitted | Refused]):
    """Submitted, or refused (one excuse per event), 200 either way as the bots expect."""


class BotAttendee(Representation):
    name: str
    discord_username: str | None


class BotAttended(Representation):
    success: Literal[True] = True
    message: str
    event: EventEnding
    user: BotAttendee


class AutoAttended(Representation):
    success: Literal[True] = True
    message: str
    event: EventBrief


class AttendedFor(Representation):
    success: Literal[True] = True
    message: str
    admin_user: dict[Literal["name"], str]
    target_user: BotAttendee
    event: EventBrief


class HistoryEntry(Representation):
    id: int
    event_id: int
    title: str
    start_time: IsoTime
    end_time: IsoTime | None
    attended_at: IsoTime
    status: str

    @classmethod
    def of(cls, attendance: Attendance) -> HistoryEntry:
        event = attendance.event
        return cls(
            id=event.id,
            event_id=event.id,
            title=event.name,
            start_time=event.start_time,
            end_time=event.end_time,
            attended_at=attendance.checked_in_at,
            status=attendance.status,
        )


class DiscordHistory(Representation):
    user: DiscordUserBrief
    attended_events: list[HistoryEntry]
    total_attended: int


class DiscordAttendAnswer(RootModel[BotAttended | RefusedInWindow]):
    """Attended, or refused with the window (200 either way, as the bots expect)."""


class WebDiscordAttendAnswer(RootModel[Attended | RefusedInWindow]):
    """Attended, or refused with the window (200 either way)."""


class AutoAttendAnswer(RootModel[AutoAttended | RefusedAmong | Refused]):
    """Attended the one running event, or refused (with the candidates when several run)."""


class AttendForAnswer(RootModel[AttendedFor | Refused]):
    """Checked in by an admin, or refused."""
