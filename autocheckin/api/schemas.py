"""Response models of the AutoCheckin API, used for /openapi.json."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, create_model


class ErrorBody(BaseModel):
    success: bool = False
    message: str
    error: str
    code: str


def envelope(name: str, data: type[BaseModel]) -> type[BaseModel]:
    """`{"success", "message", "data"}` around `data`, as the seed's API answers."""
    return create_model(name, success=(bool, True), message=(str, ...), data=(data, ...))


class AuthTestData(BaseModel):
    authenticated: bool


class StatusData(BaseModel):
    connected: bool
    upstream_configured: bool
    reason: str | None = None
    open_setups: dict[str, bool] = Field(
        description="documented opt-ins that let anonymous callers in, and whether each is on"
    )
    warnings: list[str] = Field(description="settings too weak for production")


class StoredData(BaseModel):
    last_users_fetch: str | None = None
    last_all_session_refresh: str | None = None
    last_individual_session_refresh: str | None = None
    autoCheckinUsers: list[dict[str, str]] = []  # noqa: N815 - the seed's key


class JobRunData(BaseModel):
    id: int
    status: str = Field(description="running, ok, partial, failed, abandoned or skipped")
    ok: bool | None
    trigger: str
    holder: str
    started_at: str | None
    finished_at: str | None
    counts: dict[str, Any]
    error: str | None = Field(description="why it failed, or why a tick was skipped")


class JobHealthData(BaseModel):
    last_run: JobRunData | None
    running: JobRunData | None = Field(description="the run in progress, if any")
    last_completed: JobRunData | None = Field(description="ok, partial, failed or abandoned")
    last_success: JobRunData | None
    last_skipped: JobRunData | None
    consecutive_failures: int = Field(
        description="failed or abandoned runs since the last ok or partial one"
    )
    next_run_time: str | None


class UsersPage(BaseModel):
    limit: int
    offset: int
    total: int = Field(description="users on the roster; autoCheckinUsers holds this page")


class StateData(BaseModel):
    connected: bool
    stored_data: StoredData
    users_page: UsersPage
    next_cycle_run_time: str | None = None
    upstream: dict[str, Any]
    leader: dict[str, Any] | None = None
    jobs: dict[str, JobHealthData]
    counts: dict[str, int]


class FetchUsersData(BaseModel):
    success: bool
    users: int
    created: int
    updated: int


class SessionEntry(BaseModel):
    event_id: int
    id: str
    name: str
    start_time: str
    end_time: str | None
    status: str
    checked_in_at: str | None


class CheckInSessionData(BaseModel):
    email: str
    student_identifier: str | None = None
    refreshed_at: str | None = None
    ok: bool
    error: str | None = None
    sessions: list[SessionEntry]


class RefreshData(BaseModel):
    sessions: list[CheckInSessionData]
    counts: dict[str, int]


class RefreshSessionData(BaseModel):
    session: CheckInSessionData


class ApiInfo(BaseModel):
    name: str
    version: str
    endpoints: dict[str, list[str]]


class Health(BaseModel):
    status: str
    database: str


AuthTestResponse = envelope("AuthTestResponse", AuthTestData)
StatusResponse = envelope("StatusResponse", StatusData)
StateResponse = envelope("StateResponse", StateData)
ApiInfoResponse = envelope("ApiInfoResponse", ApiInfo)
FetchUsersResponse = envelope("FetchUsersResponse", FetchUsersData)
RefreshResponse = envelope("RefreshResponse", RefreshData)
RefreshSessionResponse = envelope("RefreshSessionResponse", RefreshSessionData)
