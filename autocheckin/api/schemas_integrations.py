"""Bodies and answers of the integrations family's `/api/webhooks` (also /openapi.json)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from autocheckin.outbound.models import DELIVERY_STATUSES, EVENT_TYPES

EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]
DeliveryStatus = Literal[DELIVERY_STATUSES]  # type: ignore[valid-type]


class _Body(BaseModel):
    """Strict: a string where a number belongs, or a misspelt field, is a 400 naming it."""

    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)


class WebhookCreate(_Body):
    name: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=1, max_length=2048)
    event_type: EventType
    secret: str | None = Field(None, min_length=16, max_length=255)
    headers: dict[str, str] = Field(default_factory=dict)
    is_active: bool = True
    retry_count: int = Field(3, ge=0, le=10)
    timeout_seconds: float = Field(10.0, ge=0.5, le=30)


class WebhookUpdate(_Body):
    """Only the fields sent change; `headers` replaces the whole set."""

    name: str | None = Field(None, min_length=1, max_length=200)
    url: str | None = Field(None, min_length=1, max_length=2048)
    event_type: EventType | None = None
    secret: str | None = Field(None, min_length=16, max_length=255)
    headers: dict[str, str] | None = None
    is_active: bool | None = None
    retry_count: int | None = Field(None, ge=0, le=10)
    timeout_seconds: float | None = Field(None, ge=0.5, le=30)


class DeliveryQuery(BaseModel):
    status: DeliveryStatus | None = None
    limit: int = Field(50, ge=1, le=500)


class WebhookOut(BaseModel):
    id: int
    name: str
    url: str
    event_type: str
    headers: dict[str, str]
    is_active: bool
    retry_count: int
    timeout_seconds: float
    consecutive_failures: int
    disabled_reason: str | None
    disabled_at: str | None
    secret_hint: str | None = Field(description="A fingerprint of the secret, to compare")
    created_at: str | None
    updated_at: str | None


class WebhookCreated(WebhookOut):
    secret: str = Field(description="Shown once, in this answer only")


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]
    count: int


class AttemptOut(BaseModel):
    attempt: int
    started_at: str | None
    duration_ms: float
    status_code: int | None
    error: str | None
    response_body: str | None


class DeliveryOut(BaseModel):
    id: int
    webhook_id: int
    message_id: str = Field(description="The webhook-id header: the same on every attempt")
    event_type: str
    status: str
    attempts: int
    max_attempts: int
    next_attempt_at: str | None
    last_status_code: int | None
    last_error: str | None
    created_at: str | None
    completed_at: str | None
    payload: dict
    history: list[AttemptOut]


class DeliveryList(BaseModel):
    deliveries: list[DeliveryOut]
    count: int
