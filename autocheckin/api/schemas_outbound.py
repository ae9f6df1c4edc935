"""Bodies and answers of the outbound webhook subscriptions (`/api/webhooks`), also their
/openapi.json; answers are read from the ORM objects' attributes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic.json_schema import SkipJsonSchema

from autocheckin.api.representations import Representation, with_computed
from autocheckin.outbound import subscriptions
from autocheckin.outbound.models import DELIVERY_STATUSES, EVENT_TYPES, Delivery, DeliveryAttempt
from autocheckin.outbound.signing import secret_hint
from autocheckin.times import IsoTime

EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]
# The service's own rules (`subscriptions.check_headers`), declared so /openapi.json shows them.
HeaderName = Annotated[
    str,
    StringConstraints(strip_whitespace=False, pattern=f"^{subscriptions.HEADER_NAME.pattern}$"),
]
HeaderValue = Annotated[
    str,
    StringConstraints(
        strip_whitespace=False,
        pattern=f"^{subscriptions.HEADER_VALUE.pattern}$",
        max_length=subscriptions.MAX_HEADER_VALUE,
    ),
]
Headers = dict[HeaderName, HeaderValue]
# pydantic draws the names as patternProperties, which alone would let other names through.
HEADER_NAMES_ONLY = {
    "propertyNames": {"pattern": f"^{subscriptions.HEADER_NAME.pattern}$"},
    "additionalProperties": False,
}
DeliveryStatus = Literal[DELIVERY_STATUSES]  # type: ignore[valid-type]


class _Body(BaseModel):
    """Strict: a string where a number belongs, or a misspelt field, is a 400 naming it."""

    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)


# Only http and https receivers are accepted (and a host is needed).
# Declared only (`json_schema_extra`): the refusal itself stays `ssrf.parse_url`'s, in its words.
HTTP_URL = {"pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9.-]+(:[1-9][0-9]{0,3})?([/?#][^\s]*)?$"}

# A receiver's own headers: at most MAX_HEADERS, names and values as above.
HEADERS = Field(max_length=subscriptions.MAX_HEADERS, json_schema_extra=HEADER_NAMES_ONLY)


class WebhookCreate(_Body):
    name: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=1, max_length=2048, json_schema_extra=HTTP_URL)
    event_type: EventType
    secret: str | None = Field(None, min_length=16, max_length=255)
    headers: Headers = Field(
        default_factory=dict,
        max_length=subscriptions.MAX_HEADERS,
        json_schema_extra=HEADER_NAMES_ONLY,
    )
    is_active: bool = True
    retry_count: int = Field(
        subscriptions.DEFAULT_RETRY_COUNT,
        ge=0,
        le=10,
        description="Retries after the first attempt, waiting OUTBOUND_RETRY_SCHEDULE's steps "
        "in turn (by default 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; the last repeats)",
    )
    timeout_seconds: float = Field(10.0, ge=0.5, le=30)


class WebhookUpdate(_Body):
    """Only the fields sent change; `headers` replaces the whole set. A field sent as null
    is refused (400), so none is declared nullable."""

    name: Annotated[str, Field(min_length=1, max_length=200)] | SkipJsonSchema[None] = None
    url: (
        Annotated[str, Field(min_length=1, max_length=2048, json_schema_extra=HTTP_URL)]
        | SkipJsonSchema[None]
    ) = None
    event_type: EventType | SkipJsonSchema[None] = None
    secret: Annotated[str, Field(min_length=16, max_length=255)] | SkipJsonSchema[None] = None
    headers: Annotated[Headers, HEADERS] | SkipJsonSchema[None] = None
    is_active: bool | SkipJsonSchema[None] = None
    retry_count: Annotated[int, Field(ge=0, le=10)] | SkipJsonSchema[None] = None
    timeout_seconds: Annotated[float, Field(ge=0.5, le=30)] | SkipJsonSchema[None] = None


class DeliveryQuery(BaseModel):
    status: DeliveryStatus | None = None
    limit: int = Field(50, ge=1, le=500)


class WebhookOut(Representation):
    """A subscription: never its secret, credentials in its headers masked; to a caller
    that did not make it, the receiver as scheme and host only and every header value
    masked."""

    id: int
    name: str
    url: str = Field(
        description="The full URL for the caller that made the subscription, the "
        "CHECKOUT_API_KEY holder and web admins; scheme and host only for other callers"
    )
    event_type: str
    headers: dict[str, str]
    is_active: bool
    retry_count: int
    timeout_seconds: float
    consecutive_failures: int
    disabled_reason: str | None
    disabled_at: IsoTime | None
    secret_hint: str | None = Field(
        validation_alias="secret", description="A fingerprint of the secret, to compare"
    )
    created_at: IsoTime | None
    updated_at: IsoTime | None
    created_by: str | None = Field(
        description='"checkout_key", "api_key:<id>" or "account:<id>"; null when made '
        "before this was recorded"
    )
    is_yours: bool = Field(description="Whether the caller may change it and read its deliveries")

    @classmethod
    def of(cls, subscription: Any, caller: subscriptions.Caller) -> WebhookOut:
        return cls.model_validate(
            with_computed(
                subscription,
                url=subscriptions.receiver_shown_to(caller, subscription),
                headers=subscriptions.headers_shown_to(caller, subscription),
                is_yours=caller.owns(subscription),
            )
        )

    @field_validator("headers", mode="before")
    @classmethod
    def _masked(cls, headers: dict[str, str] | None) -> dict[str, str]:
        return subscriptions.masked_headers(headers or {})

    @field_validator("secret_hint", mode="before")
    @classmethod
    def _hint(cls, secret: str | None) -> str | None:
        return secret_hint(secret) if secret else None


class WebhookCreated(WebhookOut):
    secret: str = Field(description="Shown once, in this answer only")

    @classmethod
    def created(
        cls, subscription: Any, secret: str, caller: subscriptions.Caller
    ) -> WebhookCreated:
        shown = WebhookOut.of(subscription, caller).model_dump()
        return cls.model_validate({**shown, "secret_hint": secret_hint(secret), "secret": secret})


class WebhookList(Representation):
    webhooks: list[WebhookOut]
    count: int


class AttemptOut(Representation):
    attempt: int
    started_at: IsoTime | None
    duration_ms: float
    status_code: int | None
    error: str | None
    response_body: str | None


class DeliveryOut(Representation):
    id: int
    webhook_id: int = Field(validation_alias="subscription_id")
    message_id: str = Field(description="The webhook-id header: the same on every attempt")
    event_type: str
    status: str
    attempts: int
    max_attempts: int
    next_attempt_at: IsoTime | None = Field(description="while pending only")
    last_status_code: int | None
    last_error: str | None
    created_at: IsoTime | None
    completed_at: IsoTime | None
    payload: dict[str, Any]
    history: list[AttemptOut]

    @classmethod
    def of(cls, delivery: Delivery, attempts: list[DeliveryAttempt]) -> DeliveryOut:
        pending = delivery.status == "pending"
        return cls.model_validate(
            with_computed(
                delivery,
                next_attempt_at=delivery.next_attempt_at if pending else None,
                payload=subscriptions.payload_of(delivery),
                history=attempts,
            )
        )


class DeliveryList(Representation):
    deliveries: list[DeliveryOut]
    count: int
