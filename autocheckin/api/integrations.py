"""The integration guide's endpoints (`/api/integrations/…`, `/api/auth/login`): an
iCalendar export and feed, Moodle CSV, HR summaries, and the planned syncs as 501.

Every endpoint but the login and the feed URL takes an admin's bearer token or
`x-checkout-key`; a plain user's token is 403. Callers are rate-limited per identity
(INTEGRATION_USER_RATE, INTEGRATION_ADMIN_RATE) and told so in `X-RateLimit-*` headers.
Errors use the guide's shape: {"detail", "status_code", "timestamp", "code"}.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

from flask import Blueprint, Response, current_app, g, request, url_for
from pydantic import AfterValidator, BaseModel, Field

from autocheckin import ratelimits
from autocheckin.api.login import current_user, jwt_secret, log_in
from autocheckin.api.openapi import answers, documented
from autocheckin.api.parsing import UTCDatetime, parse_body, parse_json, parse_query
from autocheckin.api.representations import Representation, Token, answer, csv_download
from autocheckin.api.schemas_web import LoginBody
from autocheckin.api.security import key_accepted
from autocheckin.attendance.errors import Invalid, NotFound
from autocheckin.auth.errors import Forbidden, Unauthorized
from autocheckin.errors import Unsupported
from autocheckin.integrations import calendar, exports
from autocheckin.logs import LOGGED_PATH
from autocheckin.times import IsoTime, utcnow

bp = Blueprint("integrations", __name__, url_prefix="/api")

HR_DEFAULT_PERIOD = timedelta(days=30)


class NotOffered(Unsupported):
    """A sync the integration guide lists as planned: answered 501, never faked."""

    code = "not_implemented"


class IntegrationError(BaseModel):
    """The guide's error shape, with our stable `code`."""

    detail: str
    status_code: int
    timestamp: str
    code: str


# --- who may call -----------------------------------------------------------------------------


def _admitted() -> None:
    """An admin's bearer token or the API key; counted against the caller's rate first."""
    config = current_app.config
    key = request.headers.get("x-checkout-key")
    if key is not None:
        if not key_accepted(key, config["CHECKOUT_API_KEY"]):
            raise Unauthorized("Invalid x-checkout-key", code="bad_key")
        fingerprint = hashlib.sha256(key.encode()).hexdigest()[:16]
        g.rate_limit_headers = ratelimits.metered(
            config["INTEGRATION_ADMIN_RATE"], "integrations", f"key:{fingerprint}"
        )
        return
    if not request.headers.get("Authorization"):
        raise Unauthorized(
            "Send an admin's bearer token (POST /api/auth/login) or x-checkout-key",
            code="not_authenticated",
        )
    user = current_user()
    rate = config["INTEGRATION_ADMIN_RATE" if user.is_admin else "INTEGRATION_USER_RATE"]
    g.rate_limit_headers = ratelimits.metered(rate, "integrations", f"user:{user.id}")
    if not user.is_admin:
        raise Forbidden("Integration endpoints are for admins and API keys", code="not_admin")


def admitted(view: Callable[..., Any]) -> Callable[..., Any]:
    @answers(401, 403, 429, 503)
    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _admitted()
        return view(*args, **kwargs)

    return guarded


bp.after_request(ratelimits.with_rate_limit_headers)


# --- the login ------------------------------------------------------------------------------


@bp.post("/auth/login")
@documented(
    "Log in (the integration guide's path): a bearer token, 24 h, for /api/integrations",
    body=LoginBody,
    response=Token,
    errors=(401, 422, 429, 503),
)
def login() -> Response:
    jwt_secret()  # 503 before reading credentials when tokens cannot be issued
    body = parse_body(LoginBody)
    response = answer(Token(access_token=log_in(body.email, body.password)))
    response.headers["Cache-Control"] = "no-store"
    return response


# --- periods --------------------------------------------------------------------------------


class PeriodQuery(BaseModel):
    start_date: UTCDatetime | None = Field(None, description="ISO 8601; naive times are UTC")
    end_date: UTCDatetime | None = Field(None, description="ISO 8601; naive times are UTC")

    def period(self) -> exports.Period:
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise Invalid("end_date must not be before start_date", code="invalid_period")
        return exports.Period(self.start_date, self.end_date)


class MoodleQuery(PeriodQuery):
    session_id: int | None = Field(None, ge=1, le=2**31 - 1, description="an event id")


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


# --- calendar -------------------------------------------------------------------------------


@bp.get("/integrations/calendar/ical")
@documented(
    "Events overlapping the period as an iCalendar (.ics) download",
    query=PeriodQuery,
    produces="text/calendar",
    security=("bearerAuth", "checkoutKey"),
    errors=(400, 401, 403, 429),
)
@admitted
def ical_export() -> Response:
    period = parse_query(PeriodQuery).period()
    body = calendar.ical(calendar.events_between(period.start, period.end))
    return Response(
        body,
        mimetype="text/calendar",
        content_type="text/calendar; charset=utf-8",
        headers=_attachment("autocheckin-events.ics"),
    )


CONTROL_OR_LINE_BREAK = re.compile(r"[\x00-\x1f\x7f]")


def _one_line(name: str) -> str:
    if CONTROL_OR_LINE_BREAK.search(name):
        raise ValueError("may not contain line breaks or other control characters")
    return name


class FeedCreate(BaseModel):
    # One line: the name goes into every poll's X-WR-CALNAME (the pattern documents it).
    name: Annotated[str, AfterValidator(_one_line)] = Field(
        min_length=1, max_length=100, json_schema_extra={"pattern": r"^[^\x00-\x1f\x7f]+$"}
    )


class FeedOut(Representation):
    id: int
    name: str
    created_at: IsoTime
    revoked_at: IsoTime | None
    last_used_at: IsoTime | None


class FeedCreated(FeedOut):
    url: str = Field(description="the feed's address; it holds the secret, shown only now")


class FeedList(Representation):
    feeds: list[FeedOut]


@bp.post("/integrations/calendar/feeds")
@documented(
    "Create a subscribable feed URL (its secret is shown once)",
    body=FeedCreate,
    response=FeedCreated,
    status=201,
    security=("bearerAuth", "checkoutKey"),
    errors=(400, 401, 403, 429),
)
@admitted
def create_feed() -> Response:
    body = parse_json(FeedCreate)
    feed, token = calendar.create_feed(body.name)
    url = url_for(".calendar_feed", token=token, _external=True)
    created = FeedCreated.model_validate({**FeedOut.model_validate(feed).model_dump(), "url": url})
    return answer(created, 201)


@bp.get("/integrations/calendar/feeds")
@documented(
    "Calendar feeds (never their secrets)",
    response=FeedList,
    security=("bearerAuth", "checkoutKey"),
    errors=(401, 403, 429),
)
@admitted
def list_feeds() -> Response:
    return answer(FeedList(feeds=[FeedOut.model_validate(f) for f in calendar.list_feeds()]))


@bp.delete("/integrations/calendar/feeds/<int:feed_id>")
@documented(
    "Revoke a feed: its URL stops working at once",
    response=FeedOut,
    security=("bearerAuth", "checkoutKey"),
    errors=(401, 403, 404, 429),
)
@admitted
def revoke_feed(feed_id: int) -> Response:
    return answer(FeedOut.model_validate(calendar.revoke_feed(feed_id)))


@bp.get("/integrations/calendar/feeds/<token>.ics")
@documented(
    "A feed for calendar apps: the secret in the URL is the credential",
    produces="text/calendar",
    errors=(404,),
)
def calendar_feed(token: str) -> Response:
    request.environ[LOGGED_PATH] = "/api/integrations/calendar/feeds/<secret>.ics"
    feed = calendar.feed_for(token)
    if feed is None:
        raise NotFound("No such calendar feed (unknown or revoked)", code="feed_not_found")
    # The access log names the feed by its id; its URL is its credential.
    request.environ[LOGGED_PATH] = f"/api/integrations/calendar/feeds/feed-{feed.id}.ics"
    now = utcnow()
    events = calendar.events_between(now - timedelta(days=90), now + timedelta(days=365))
    body = calendar.ical(events, calendar_name=f"{calendar.CALENDAR_NAME}: {feed.name}")
    return Response(body, content_type="text/calendar; charset=utf-8")


# --- LMS ------------------------------------------------------------------------------------


@bp.get("/integrations/lms/moodle/export")
@documented(
    "Attendance as Moodle CSV: present / late check-ins, and absent for enrolled students "
    "of ended events; streamed",
    query=MoodleQuery,
    produces="text/csv",
    security=("bearerAuth", "checkoutKey"),
    errors=(400, 401, 403, 429),
)
@admitted
def moodle_export() -> Response:
    query = parse_query(MoodleQuery)
    rows = exports.moodle_rows(period=query.period(), event_id=query.session_id, now=utcnow())
    return csv_download(exports.MOODLE_HEADER, rows, "attendance_moodle.csv")


# --- HR -------------------------------------------------------------------------------------


class HrSummaryOut(Representation):
    student_id: int
    student_email: str | None
    period_start: IsoTime
    period_end: IsoTime
    total_sessions: int = Field(
        description="events in the period enrolled in or marked at (voided check-ins are no mark)"
    )
    present: int
    absent: int = Field(description="an absent mark, or enrolled, ended and no live mark")
    late: int
    excused: int = Field(description="an excused mark (an approved excuse or a correction)")
    attendance_rate: float = Field(
        description="(present + late) / (total_sessions − excused) × 100, one decimal; 0 when "
        "nothing is left to count"
    )


def _hr_period() -> tuple[datetime, datetime]:
    period = parse_query(PeriodQuery).period()
    end = period.end or utcnow()
    start = period.start or end - HR_DEFAULT_PERIOD
    if end < start:
        raise Invalid("end_date must not be before start_date", code="invalid_period")
    return start, end


@bp.get("/integrations/hr/attendance-summary/<student_ref>")
@documented(
    "A student's attendance summary for a period (default: the last 30 days); the "
    "student by id, identifier or email",
    query=PeriodQuery,
    response=HrSummaryOut,
    security=("bearerAuth", "checkoutKey"),
    errors=(400, 401, 403, 404, 429),
)
@admitted
def hr_summary(student_ref: str) -> Response:
    start, end = _hr_period()
    student = exports.find_student(student_ref)
    if student is None:
        raise NotFound(f"Student {student_ref} not found", code="student_not_found")
    summary = exports.summary_of(student, start=start, end=end, now=utcnow())
    return answer(HrSummaryOut.model_validate(summary))


@bp.get("/integrations/hr/attendance-summary.csv")
@documented(
    "Every student's summary for a period as CSV, streamed",
    query=PeriodQuery,
    produces="text/csv",
    security=("bearerAuth", "checkoutKey"),
    errors=(400, 401, 403, 429),
)
@admitted
def hr_summaries_csv() -> Response:
    start, end = _hr_period()
    rows = exports.summary_rows(start=start, end=end, now=utcnow())
    return csv_download(exports.HR_HEADER, rows, "attendance_summary.csv")


# --- the planned syncs: 501, as the guide says ------------------------------------------------


PLANNED = {
    "/integrations/calendar/google/sync": "Google Calendar sync",
    "/integrations/calendar/outlook/sync": "Microsoft Outlook/365 sync",
    "/integrations/lms/canvas/sync": "Canvas LMS sync",
    "/integrations/lms/blackboard/sync": "Blackboard sync",
    "/integrations/hr/workday/sync": "Workday sync",
    "/integrations/hr/bamboohr/sync": "BambooHR sync",
}


def _planned(name: str) -> Callable[[], Response]:
    def not_offered() -> Response:
        raise NotOffered(f"{name} is not implemented in this version", code="not_implemented")

    not_offered.__name__ = "planned_" + name.split()[0].lower().replace("/", "_")
    return not_offered


for _path, _name in PLANNED.items():
    _view = documented(
        f"{_name}: planned, not implemented (501)",
        response=IntegrationError,
        security=("bearerAuth", "checkoutKey"),
        status=501,
        errors=(401, 403, 429),
    )(admitted(_planned(_name)))
    bp.add_url_rule(_path, endpoint=_view.__name__, view_func=_view, methods=["POST"])
