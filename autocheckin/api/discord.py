"""The Discord bot's endpoints (`/discord/…`): `X-Discord-Key` must match DISCORD_API_KEY.

The events guide's keyless bot is the opt-in DISCORD_ALLOW_KEYLESS=true (a bot on a
private network); with neither set, these endpoints answer 503 naming both.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from autocheckin import ratelimits, settings
from autocheckin.api.openapi import answers, documented
from autocheckin.api.parsing import parse_args, parse_body
from autocheckin.api.representations import (
    AdminCheck,
    AttendedFor,
    AttendeeOut,
    AttendForAnswer,
    AutoAttendAnswer,
    AutoAttended,
    BotAttended,
    BotAttendee,
    DiscordAttendAnswer,
    DiscordHistory,
    DiscordRegistered,
    DiscordUserBrief,
    DiscordUserOut,
    DiscordUserPage,
    DiscordUserRow,
    EventAttendees,
    EventBrief,
    EventEnding,
    EventList,
    EventOut,
    EventStatusOut,
    ExcuseAnswer,
    ExcuseOut,
    ExcuseSubmitted,
    HistoryEntry,
    MadeAdmin,
    Refused,
    RefusedAmong,
    RefusedInWindow,
    UpcomingEvent,
    UpcomingEventList,
    answer,
)
from autocheckin.api.schemas_series import DiscordEventCreate, DiscordEventCreated
from autocheckin.api.schemas_web import (
    DiscordAdminQuery,
    DiscordAttendFor,
    DiscordAttendQuery,
    DiscordExcuseBody,
    DiscordMakeAdmin,
    DiscordRegister,
    DiscordUsersQuery,
)
from autocheckin.api.security import request_origin
from autocheckin.attendance import queries as event_queries
from autocheckin.attendance import series, service
from autocheckin.attendance.errors import AlreadyCheckedIn, Conflict, NotFound, OutsideWindow
from autocheckin.attendance.windows import ACTIVE, UPCOMING, event_status
from autocheckin.auth import accounts
from autocheckin.auth.errors import Forbidden, Unauthorized
from autocheckin.auth.keys import key_matches
from autocheckin.auth.models import ROLE_ADMIN, Account
from autocheckin.errors import NotConfigured
from autocheckin.times import utcnow

bp = Blueprint("discord", __name__, url_prefix="/discord")

NOT_REGISTERED = "Discord user not registered. Please register first."


@bp.before_request
@answers(401, 503)
def require_discord_key() -> None:
    """The one guard of this family, run before every route in it."""
    configured = current_app.config["DISCORD_API_KEY"]
    if configured:
        if not key_matches(request.headers.get("X-Discord-Key"), configured):
            raise Unauthorized("Invalid or missing X-Discord-Key header", code="bad_discord_key")
        return
    if not current_app.config["DISCORD_ALLOW_KEYLESS"]:
        raise NotConfigured(
            "Discord endpoints are closed: set DISCORD_API_KEY (the bot sends it as "
            "X-Discord-Key), or DISCORD_ALLOW_KEYLESS=true for a bot on a private network",
            code="discord_not_configured",
        )


def registered_discord_user(discord_user_id: str) -> Account:
    user = accounts.find_discord_account(discord_user_id)
    if user is None:
        raise NotFound(NOT_REGISTERED, code="discord_user_not_registered")
    return user


def _admin(discord_user_id: str) -> Account:
    """The registered Discord user, who must be an admin of the bot's commands."""
    user = registered_discord_user(discord_user_id)
    if not user.is_admin:
        raise Forbidden("Only admins may do this", code="not_admin")
    return user


def _events(found: list, now) -> Response:
    rules = settings.current().rules
    return answer(EventList([EventOut.of(event, now=now, rules=rules) for event in found]))


@bp.post("/users/register")
@documented(
    "Register a Discord user; a known id is updated (200 either way, as the bots expect)",
    body=DiscordRegister,
    response=DiscordRegistered,
    errors=(422,),
)
def register() -> Response:
    body = parse_body(DiscordRegister)
    user, is_new = accounts.register_discord_account(
        discord_user_id=body.discord_user_id,
        name=body.name,
        discord_username=body.discord_username,
    )
    message = "Registered successfully" if is_new else "Already registered; details updated"
    return answer(DiscordRegistered.of(user, message))


@bp.get("/users/<discord_user_id>")
@documented("A Discord user", response=DiscordUserOut, errors=(404,))
def get_user(discord_user_id: str) -> Response:
    return answer(DiscordUserOut.model_validate(registered_discord_user(discord_user_id)))


@bp.get("/events/active")
@documented(
    "Events whose check-in window is open now (events with no end are not listed)",
    response=EventList,
)
def active_events() -> Response:
    # The bots parse every event's end_time: an endless (webhook-style) event would crash them.
    now = utcnow()
    return _events(_open_windows(now), now)


@bp.get("/events/channel/<channel_id>")
@documented("A Discord channel's events", response=EventList)
def channel_events(channel_id: str) -> Response:
    now = utcnow()
    found = event_queries.list_events(
        event_queries.EventFilter(channel=channel_id), now=now, rules=settings.current().rules
    )
    return _events(found, now)


@bp.post("/attend/<int:event_id>")
@documented(
    "Attend an event as a Discord user (?discord_user_id=); refusals are 200 success false",
    query=DiscordAttendQuery,
    response=DiscordAttendAnswer,
    errors=(404, 422),
)
def attend(event_id: int) -> Response:
    query = parse_args(DiscordAttendQuery)
    user = registered_discord_user(query.discord_user_id)
    event = event_queries.get_event(event_id)
    now, rules = utcnow(), settings.current().rules
    try:
        accounts.check_in(
            account_id=user.id,
            event_id=event.id,
            at=now,
            rules=rules,
            source="discord",
            actor=f"discord:{user.discord_user_id}",
            origin=request_origin("discord", discord_user_id=user.discord_user_id),
        )
    except (OutsideWindow, AlreadyCheckedIn) as refusal:
        window = EventStatusOut.of(event, event_status(event, now, rules))
        return answer(RefusedInWindow(message=refusal.message, event_status=window))
    return answer(
        BotAttended(
            message=f"Successfully attended '{event.name}'!",
            event=EventEnding.model_validate(event),
            user=BotAttendee.model_validate(user),
        )
    )


@bp.get("/attendance/<discord_user_id>")
@documented(
    "A Discord user's attendance history, oldest first", response=DiscordHistory, errors=(404,)
)
def attendance_history(discord_user_id: str) -> Response:
    user = registered_discord_user(discord_user_id)
    attended = [HistoryEntry.of(a) for a in reversed(event_queries.history(user.person_id))]
    return answer(
        DiscordHistory(
            user=DiscordUserBrief.model_validate(user),
            attended_events=attended,
            total_attended=len(attended),
        )
    )


@bp.get("/event/<int:event_id>/status")
@documented("An event's status for the bot", response=EventStatusOut, errors=(404,))
def event_status_for_bot(event_id: int) -> Response:
    event = event_queries.get_event(event_id)
    return answer(EventStatusOut.of(event, event_status(event, utcnow(), settings.current().rules)))


@bp.get("/event/<int:event_id>/attendees")
@documented("Who attended an event", response=EventAttendees, errors=(404,))
def event_attendees(event_id: int) -> Response:
    event = event_queries.get_event(event_id)
    attendances = event_queries.attendees(event_id)
    names = accounts.discord_usernames_of({attendance.student_id for attendance in attendances})
    found = [AttendeeOut.of(a, discord_username=names.get(a.student_id)) for a in attendances]
    return answer(
        EventAttendees(event_id=event.id, title=event.name, attendees=found, total=len(found))
    )


# --- the reference bot's newer commands (slash-command cog) --------------------------------


def _open_windows(now) -> list:
    """Events whose check-in window is open now; events with no end are not "running"."""
    found = event_queries.list_events(
        event_queries.EventFilter(status=ACTIVE), now=now, rules=settings.current().rules
    )
    return [event for event in found if event.end_time is not None]


def _attend_now(
    user: Account, event, now, *, source: str, by: Account, metadata: dict | None = None
):
    """Check `user`'s person in to `event` (`by` asked); None on success, else the refusal."""
    try:
        accounts.check_in(
            account_id=user.id,
            event_id=event.id,
            at=now,
            rules=settings.current().rules,
            source=source,
            metadata=metadata,
            actor=f"discord:{by.discord_user_id}",
            origin=request_origin(source, discord_user_id=by.discord_user_id),
        )
    except (OutsideWindow, AlreadyCheckedIn) as refusal:
        return refusal.message
    return None


@bp.post("/attend/auto")
@documented(
    "Check in to the one event running now (?discord_user_id=); refusals are 200 success false",
    query=DiscordAttendQuery,
    response=AutoAttendAnswer,
    errors=(422,),
)
def attend_auto() -> Response:
    query = parse_args(DiscordAttendQuery)
    user = accounts.find_discord_account(query.discord_user_id)
    if user is None:
        return answer(Refused(message=NOT_REGISTERED))
    now = utcnow()
    running = _open_windows(now)
    if not running:
        return answer(Refused(message="No event is running right now"))
    if len(running) > 1:
        names = ", ".join(f"{event.name} (#{event.id})" for event in running)
        return answer(
            RefusedAmong(
                message=f"Several events are running; attend one by id: {names}",
                events=[EventBrief.model_validate(event) for event in running],
            )
        )
    event = running[0]
    refusal = _attend_now(user, event, now, source="discord", by=user)
    if refusal is not None:
        return answer(Refused(message=refusal))
    return answer(
        AutoAttended(
            message=f"Successfully attended '{event.name}'!",
            event=EventBrief.model_validate(event),
        )
    )


@bp.post("/admin/make-admin")
@documented(
    "Make a Discord user an admin with DISCORD_ADMIN_PASSWORD",
    body=DiscordMakeAdmin,
    response=MadeAdmin,
    errors=(403, 404, 422, 429, 503),
)
def make_admin() -> Response:
    configured = current_app.config["DISCORD_ADMIN_PASSWORD"]
    if not configured:
        raise NotConfigured(
            "Discord admin sign-up is closed: set DISCORD_ADMIN_PASSWORD, or use "
            "`flask discord admin grant DISCORD_USER_ID`",
            code="discord_admin_not_configured",
        )
    body = parse_body(DiscordMakeAdmin)
    # Per Discord id, per client address and overall: ids are free to register, so the
    # per-id count alone would cap nothing.
    limits = (
        (ratelimits.DISCORD_ADMIN_FAILURES, body.discord_user_id),
        (ratelimits.DISCORD_ADMIN_FAILURES_PER_ADDRESS, ratelimits.client_address()),
        (ratelimits.DISCORD_ADMIN_FAILURES_OVERALL, "everyone"),
    )
    for limit, who in limits:
        ratelimits.ensure_allowed(limit, "make-admin", who)
    registered_discord_user(body.discord_user_id)
    if not key_matches(body.password, configured):
        for limit, who in limits:
            ratelimits.count_quietly(limit, "make-admin", who)
        raise Forbidden("Wrong admin password", code="bad_admin_password")
    user = accounts.set_discord_role(discord_user_id=body.discord_user_id, role=ROLE_ADMIN)
    return answer(
        MadeAdmin(message=f"{user.name} is now an admin", user=DiscordUserOut.model_validate(user))
    )


@bp.post("/admin/check-admin")
@documented(
    "Whether a Discord user is an admin (?discord_user_id=)",
    query=DiscordAttendQuery,
    response=AdminCheck,
    errors=(404, 422),
)
def check_admin() -> Response:
    user = registered_discord_user(parse_args(DiscordAttendQuery).discord_user_id)
    return answer(
        AdminCheck(
            is_admin=user.is_admin, user_name=user.name, discord_username=user.discord_username
        )
    )


@bp.get("/events/upcoming")
@documented("Events that have not opened yet, soonest first", response=UpcomingEventList)
def upcoming_events() -> Response:
    found = event_queries.list_events(
        event_queries.EventFilter(status=UPCOMING), now=utcnow(), rules=settings.current().rules
    )
    return answer(UpcomingEventList([UpcomingEvent.model_validate(event) for event in found]))


@bp.get("/users/list")
@documented(
    "Everyone who can act here, paged (an admin's ?discord_user_id=)",
    query=DiscordUsersQuery,
    response=DiscordUserPage,
    errors=(403, 404, 422),
)
def list_users() -> Response:
    query = parse_args(DiscordUsersQuery)
    _admin(query.discord_user_id)
    users, total = accounts.list_accounts(skip=query.skip, limit=query.limit)
    rows = [DiscordUserRow.model_validate(user) for user in users]
    return answer(DiscordUserPage(users=rows, total=total))


@bp.post("/events/create")
@documented(
    "Create an event as a Discord admin (?discord_user_id=); with `repeat` (an RRULE) a "
    "series, answered as its first occurrence with the series' facts",
    query=DiscordAttendQuery,
    body=DiscordEventCreate,
    response=DiscordEventCreated,
    errors=(403, 404, 422),
)
def create_event() -> Response:
    admin = _admin(parse_args(DiscordAttendQuery).discord_user_id)
    body = parse_body(DiscordEventCreate)
    now, rules = utcnow(), settings.current().rules
    if body.repeat is None:
        event = service.create_event(
            **body.event_fields(), created_by_id=admin.id, source="discord"
        )
        return answer(EventOut.of(event, now=now, rules=rules))
    fields = body.event_fields()
    created = series.create_series(
        name=fields["name"],
        description=fields["description"],
        location=fields["location"],
        discord_channel_id=fields["discord_channel_id"],
        start_time=body.start_time,
        duration=body.end_time - body.start_time,
        rule=body.repeat,
        timezone=body.timezone,
        rules=settings.current().series,
        now=now,
        source="discord",
        created_by_id=admin.id,
    )
    first = created.occurrences[0]
    return answer(
        DiscordEventCreated.model_validate(
            {
                **EventOut.of(first, now=now, rules=rules).model_dump(),
                "occurrence_count": len(created.occurrences),
                "rrule": created.series.rule,
                "timezone": created.series.timezone,
                "notice": created.notice,
            }
        )
    )


@bp.post("/admin/attend-for-user")
@documented(
    "An admin checks someone in by name or Discord username (?admin_discord_user_id=)",
    query=DiscordAdminQuery,
    body=DiscordAttendFor,
    response=AttendForAnswer,
    errors=(403, 404, 422),
)
def attend_for_user() -> Response:
    admin = _admin(parse_args(DiscordAdminQuery).admin_discord_user_id)
    body = parse_body(DiscordAttendFor)
    candidates = accounts.find_discord_accounts_by_name(body.target_name)
    if not candidates:
        return answer(Refused(message=f"Nobody is registered as {body.target_name}"))
    if len(candidates) > 1:
        names = ", ".join(
            f"{user.name} ({user.discord_username or user.discord_user_id})" for user in candidates
        )
        return answer(Refused(message=f"Several people match: {names}"))
    target = candidates[0]
    now = utcnow()
    if body.event_id is not None:
        event = event_queries.find_event(body.event_id)
        if event is None:  # a 404 reads as "you are not registered" to the bot
            return answer(Refused(message=f"Event with ID {body.event_id} not found."))
    else:
        running = _open_windows(now)
        if len(running) != 1:
            message = (
                "No event is running right now"
                if not running
                else "Several events are running; give the event id"
            )
            return answer(Refused(message=message))
        event = running[0]
    metadata = {"checked_in_by": {"discord_user_id": admin.discord_user_id, "name": admin.name}}
    refusal = _attend_now(target, event, now, source="discord_admin", by=admin, metadata=metadata)
    if refusal is not None:
        return answer(Refused(message=refusal))
    return answer(
        AttendedFor(
            message=f"{target.name} attended '{event.name}', checked in by {admin.name}",
            admin_user={"name": admin.name},
            target_user=BotAttendee.model_validate(target),
            event=EventBrief.model_validate(event),
        )
    )


@bp.post("/excuse/<int:event_id>")
@documented(
    "A Discord user's excuse for an event (?discord_user_id=, body {reason}); an admin "
    "decides; a second one for the event is 200 success false",
    query=DiscordAttendQuery,
    body=DiscordExcuseBody,
    response=ExcuseAnswer,
    errors=(404, 422),
)
def submit_excuse(event_id: int) -> Response:
    query = parse_args(DiscordAttendQuery)
    user = registered_discord_user(query.discord_user_id)
    body = parse_body(DiscordExcuseBody)
    event_queries.get_event(event_id)
    try:
        excuse = accounts.submit_excuse(
            account_id=user.id,
            event_id=event_id,
            reason=body.reason,
            actor=f"discord:{user.discord_user_id}",
        )
    except Conflict as refusal:
        return answer(Refused(message=refusal.message))
    return answer(
        ExcuseSubmitted(
            message="Excuse submitted; an admin will decide",
            excuse=ExcuseOut.model_validate(excuse),
        )
    )
