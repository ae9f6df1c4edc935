"""Response models of the AutoCheckin API, used for /openapi.json.

A job's records are drawn by `jobs/schemas.py` (the state report reads them below the API);
they are named here too, with the rest of the API's models.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from autocheckin.jobs.schemas import JobHealthData
from autocheckin.jobs.schemas import JobRunData as JobRunData
from autocheckin.times import IsoTime
from autocheckin.webhooks.schemas import WebhookRequestView


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


class UsersPage(BaseModel):
    limit: int | None = Field(description="the page size asked for; null: the whole roster")
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
    """An event the user is enrolled in (an upstream session), with their status there."""

    model_config = ConfigDict(from_attributes=True, validate_by_name=True)

    event_id: int
    id: str | None = Field(validation_alias="external_id", description="the upstream session id")
    name: str
    start_time: IsoTime
    end_time: IsoTime | None
    status: Literal["present", "late", "pending", "absent"]
    checked_in_at: IsoTime | None


class CheckInSessionData(BaseModel):
    """A user's check-in session: the last refresh's bookkeeping and their sessions."""

    model_config = ConfigDict(from_attributes=True)

    email: str
    student_identifier: str | None = None
    refreshed_at: IsoTime | None = None
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
    docs: str = Field(description="interactive documentation of /openapi.json")
    endpoints: dict[str, list[str]]


class Health(BaseModel):
    status: str
    database: str


class DeliveriesData(BaseModel):
    deliveries: list[WebhookRequestView]
    count: int


class DeliveryData(BaseModel):
    delivery: WebhookRequestView


class ReplayData(BaseModel):
    delivery: WebhookRequestView
    response: dict[str, Any] | None = Field(description="the answer the replay gave")


class ResolveData(BaseModel):
    checked: int
    resolved: int
    unmatched: int
    failed: int


DeliveriesResponse = envelope("DeliveriesResponse", DeliveriesData)
DeliveryResponse = envelope("DeliveryResponse", DeliveryData)
ReplayResponse = envelope("ReplayResponse", ReplayData)
ResolveResponse = envelope("ResolveResponse", ResolveData)
AuthTestResponse = envelope("AuthTestResponse", AuthTestData)
StatusResponse = envelope("StatusResponse", StatusData)
StateResponse = envelope("StateResponse", StateData)
ApiInfoResponse = envelope("ApiInfoResponse", ApiInfo)


class RunStillGoingData(BaseModel):
    """A trigger that met its job running and waited TRIGGER_WAIT_SECONDS for it."""

    run_id: int | None
    status: str
    started_at: IsoTime | None


FetchUsersResponse = envelope("FetchUsersResponse", FetchUsersData)
RunStillGoingResponse = envelope("RunStillGoingResponse", RunStillGoingData)
RefreshResponse = envelope("RefreshResponse", RefreshData)
RefreshSessionResponse = envelope("RefreshSessionResponse", RefreshSessionData)
