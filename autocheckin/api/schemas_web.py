"""Request models of the events, accounts and Discord APIs (also their /openapi.json)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from autocheckin.api.parsing import UTCDatetime
from autocheckin.auth.passwords import weakness

EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def _strong(password: str) -> str:
    problem = weakness(password)
    if problem:
        raise ValueError(f"password {problem}")
    return password


NewPassword = Annotated[str, Field(min_length=8, max_length=256), AfterValidator(_strong)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class RegisterBody(_Body):
    email: str = Field(pattern=EMAIL, max_length=254)
    name: str = Field(min_length=1, max_length=200)
    password: NewPassword


class LoginBody(_Body):
    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=256)


class ProfileUpdate(_Body):
    email: str | None = Field(None, pattern=EMAIL, max_length=254)
    name: str | None = Field(None, min_length=1, max_length=200)
    password: NewPassword | None = None
    discord_username: str | None = Field(None, max_length=100)
    # Needed to change the email or the password: a stolen token alone cannot.
    current_password: str | None = Field(None, max_length=1024)


class EventCreate(_Body):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=10_000)
    start_time: UTCDatetime
    end_time: UTCDatetime
    location: str = Field("", max_length=200)
    discord_channel_id: str | None = Field(None, max_length=32)

    @model_validator(mode="after")
    def _end_after_start(self) -> EventCreate:
        if self.end_time <= self.start_time:
            raise ValueError("end_time must be after start_time")
        return self

    def event_fields(self) -> dict[str, Any]:
        """The core's names for these fields (a title is an event's name)."""
        return {
            "name": self.title,
            "description": self.description,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "location": self.location,
            "discord_channel_id": self.discord_channel_id,
        }


class EventUpdate(_Body):
    title: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=10_000)
    start_time: UTCDatetime | None = None
    end_time: UTCDatetime | None = None
    location: str | None = Field(None, max_length=200)
    discord_channel_id: str | None = Field(None, max_length=32)
    is_active: bool | None = None

    def event_changes(self) -> dict[str, Any]:
        """The fields sent, in the core's names (a title is an event's name)."""
        sent = self.model_dump(exclude_unset=True, exclude_none=True)
        return {("name" if key == "title" else key): value for key, value in sent.items()}


class EventQuery(_Body):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    starts_from: UTCDatetime | None = Field(None, alias="from")
    to: UTCDatetime | None = None
    status: Literal["upcoming", "active", "ended"] | None = None
    channel: str | None = Field(None, max_length=32)
    skip: int = Field(0, ge=0, le=1_000_000_000)
    limit: int = Field(100, ge=1, le=500)


class DiscordRegister(_Body):
    name: str = Field(min_length=1, max_length=200)
    discord_user_id: str = Field(pattern=r"^\d{1,32}$")
    discord_username: str | None = Field(None, max_length=100)


class DiscordAttendQuery(_Body):
    discord_user_id: str = Field(pattern=r"^\d{1,32}$")


class ExcuseBody(_Body):
    event_id: int = Field(ge=1, le=2_147_483_647)
    reason: str = Field(min_length=1, max_length=2000, description="why you miss (or missed) it")


class DiscordExcuseBody(_Body):
    reason: str = Field(min_length=1, max_length=2000)


class PageQuery(_Body):
    skip: int = Field(0, ge=0, le=1_000_000)
    limit: int = Field(100, ge=1, le=500)


class DiscordAdminQuery(_Body):
    admin_discord_user_id: str = Field(pattern=r"^\d{1,32}$")


class DiscordUsersQuery(_Body):
    discord_user_id: str = Field(pattern=r"^\d{1,32}$")
    skip: int = Field(0, ge=0, le=1_000_000)
    limit: int = Field(100, ge=1, le=500)


class DiscordMakeAdmin(_Body):
    discord_user_id: str = Field(pattern=r"^\d{1,32}$")
    password: str = Field(min_length=1, max_length=256)


class DiscordAttendFor(_Body):
    target_name: str = Field(min_length=1, max_length=200)
    event_id: int | None = Field(None, ge=1, le=2**31 - 1)


class DiscordEventAttend(_Body):
    discord_user_id: str = Field(pattern=r"^\d{1,32}$")
    event_id: int = Field(ge=1, le=2**31 - 1)
