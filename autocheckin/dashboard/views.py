"""`/dashboard`: sign-in for admins (a session cookie, CSRF-protected forms), and the
overview page. The numbers come from `overview.state_report` and the core's queries, the
same services the API answers from."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    get_flashed_messages,
    redirect,
    render_template,
    session,
    url_for,
)
from flask_wtf import FlaskForm
from pydantic import BaseModel
from sqlalchemy import func, select
from werkzeug.exceptions import NotFound, ServiceUnavailable, TooManyRequests
from werkzeug.wrappers import Response
from wtforms import EmailField, IntegerField, PasswordField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from autocheckin import overview, settings
from autocheckin.alerts import acknowledgement as alerts
from autocheckin.api.login import authenticated
from autocheckin.api.openapi import answers, documented
from autocheckin.api.representations import answer, csv_download
from autocheckin.attendance import corrections, excuses, history, queries, series, windows
from autocheckin.attendance.models import (
    EXCUSE_PENDING,
    STATUSES,
    Attendance,
    Enrolment,
    Event,
    Student,
)
from autocheckin.auth import accounts, api_keys
from autocheckin.auth.errors import Unauthorized
from autocheckin.auth.models import Account
from autocheckin.errors import ServiceError
from autocheckin.extensions import db
from autocheckin.findings import review
from autocheckin.integrations import calendar, exports
from autocheckin.outbound import subscriptions
from autocheckin.times import IsoTime, parse_iso, to_utc, utcnow
from autocheckin.validation import CONTROL_CHARACTER
from autocheckin.webhooks import receive, request_log

bp = Blueprint(
    "dashboard",
    __name__,
    url_prefix="/dashboard",
    template_folder="templates",
    static_folder="static",
)
RECENT = 20


class SignInForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])


class SignOutForm(FlaskForm):
    """Only a token: signing out is a POST, so another site cannot sign anyone out."""


class ActionForm(FlaskForm):
    """Only a token: every button that changes something posts one."""


class NewKeyForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=100)])


class CorrectionForm(FlaskForm):
    """A correction's reason (required: the history keeps it) and, where it sets one, the
    status."""

    status = StringField("Status", validators=[Optional(), Length(max=16)])  # the core checks it
    reason = StringField("Reason", validators=[DataRequired(), Length(max=2000)])


class NewSeriesForm(FlaskForm):
    """A series as POST /events/series takes it; the start is wall time in the zone."""

    title = StringField("Title", validators=[DataRequired(), Length(max=200)])
    start = StringField("First start (local, 2027-03-02T10:00)", validators=[DataRequired()])
    duration = IntegerField("Minutes", validators=[DataRequired(), NumberRange(1, 1440)])
    timezone = StringField("Time zone", validators=[Length(max=64)])
    rrule = StringField("Rule (RRULE)", validators=[DataRequired(), Length(max=300)])
    location = StringField("Location", validators=[Length(max=200)])


@bp.context_processor
def _sign_out_form() -> dict[str, Any]:
    """Every signed-in page's header carries the sign-out form."""
    return {"sign_out": SignOutForm}


@bp.app_template_filter("utc_minute")
def _utc_minute(moment: datetime | str | None) -> str:
    """A time as the page shows it: `2026-12-02 09:15`, in UTC (the headings say so)."""
    if not moment:
        return ""
    if isinstance(moment, str):
        try:
            moment = parse_iso(moment)
        except ValueError:
            return moment  # a stored time we cannot read: shown as it is, not a broken page
    return to_utc(moment).strftime("%Y-%m-%d %H:%M")


@bp.app_template_filter("receiver")
def _receiver(url: str) -> str:
    """Only where a webhook goes: a receiver's path or query can be a secret (Slack's are)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


@bp.before_request
@answers(503)
def _needs_a_secret_key() -> None:
    if not current_app.config["SECRET_KEY"]:
        raise ServiceUnavailable("Set SECRET_KEY (32+ bytes) to use the dashboard")


def _admin() -> Account | None:
    """The signed-in admin; None when nobody is, or the session was ended since (signed out,
    expired, the account demoted, deactivated or its password changed)."""
    user = accounts.session_account(session.get("sid"))
    if user is None or not user.is_admin:
        return None
    return user


@bp.route("/login", methods=["GET", "POST"])
@documented("The dashboard's sign-in page (admins)", produces="text/html", errors=(400, 503))
def login() -> str | Response:
    form = SignInForm()
    problem = None
    if form.validate_on_submit():
        try:
            user = authenticated(form.email.data or "", form.password.data or "")
        except Unauthorized:
            problem = "Incorrect email or password."
        except TooManyRequests as refusal:
            problem = refusal.description
        else:
            if user.is_admin:
                session.clear()
                session.permanent = True
                session["sid"] = accounts.open_session(
                    account_id=user.id, lifetime=current_app.permanent_session_lifetime
                )
                return redirect(url_for(".index"))
            problem = "Only admins may use the dashboard."
    elif form.is_submitted():
        problem = "The form expired or was incomplete; please try again."
    status = 400 if problem else 200
    return render_template("dashboard/login.html", form=form, problem=problem), status


@bp.post("/logout")
@documented("Sign out (a form with the page's CSRF token)", status=302)
def logout() -> Response:
    if SignOutForm().validate_on_submit():
        accounts.close_session(session.get("sid"))
        session.clear()
    return redirect(url_for(".login"))


def _act(
    action: Any,
    *,
    back: str | Callable[[], str] | None = None,
    form: type[FlaskForm] = ActionForm,
) -> Response:
    """Run a button's action for a signed-in admin with the page's token; say how it went.

    `action` is called with the signed-in admin and the validated form; `back` (where to
    go next) may be a function, asked only once an admin is signed in."""
    admin = _admin()
    if admin is None:
        return redirect(url_for(".login"))
    back = (back() if callable(back) else back) or url_for(".index")
    submitted = form()
    if not submitted.validate_on_submit():
        if isinstance(submitted, CorrectionForm) and not submitted.reason.data:
            flash("A correction needs a reason; nothing was changed.")
        else:
            flash("The page expired; nothing was done. Please try again.")
        return redirect(back)
    if any(
        isinstance(value, str) and CONTROL_CHARACTER.search(value)
        for value in submitted.data.values()
    ):
        flash("Control characters are not allowed in a form; nothing was changed.")
        return redirect(back)
    try:
        flash(action(admin, submitted))
    except ServiceError as error:
        flash(error.message)
    return redirect(back)


@bp.post("/webhooks/<int:request_id>/replay")
@documented("Replay a failed or unmatched webhook request (the page's form)", status=302)
def replay(request_id: int) -> Response:
    def run(*_: Any) -> str:
        record = receive.replay(request_id, settings.current().webhooks)
        return f"Request {request_id} replayed: {record.outcome}"

    return _act(run)


@bp.post("/webhooks/resolve")
@documented("Replay every unmatched check-in (the page's form)", status=302)
def resolve() -> Response:
    def run(*_: Any) -> str:
        tally = receive.resolve_unmatched(settings.current().webhooks)
        return f"{tally['resolved']} of {tally['checked']} unmatched check-ins resolved"

    return _act(run)


@bp.post("/keys")
@documented("Create an integration key (shown once on the page)", status=302)
def create_key() -> Response | tuple[str, int]:
    if _admin() is None:
        return redirect(url_for(".login"))
    form = NewKeyForm()
    if not form.validate_on_submit():
        flash("A key needs a name (and the page's token); nothing was made.")
        return redirect(url_for(".index"))
    try:
        record, key = api_keys.create_key(form.name.data or "")
    except ServiceError as error:
        flash(error.message)
        return redirect(url_for(".index"))
    # Shown in this answer only: never in a redirect's flash, which would travel in the cookie.
    return _overview(created=(record.name, key)), 201


@bp.post("/series")
@documented("Create a recurring series (the page's form; a signed-in admin)", status=302)
def create_series() -> Response:
    admin = _admin()
    if admin is None:
        return redirect(url_for(".login"))
    form = NewSeriesForm()
    if not form.validate_on_submit():
        flash("A series needs a title, a start, minutes and a rule (and the page's token).")
        return redirect(url_for(".index"))
    rules = settings.current().series
    try:
        tz_name = (form.timezone.data or "").strip() or rules.default_timezone
        local = datetime.fromisoformat((form.start.data or "").strip())
        start = local if local.tzinfo else local.replace(tzinfo=series.zone(tz_name))
        created = series.create_series(
            name=form.title.data or "",
            start_time=to_utc(start),
            duration=timedelta(minutes=form.duration.data or 0),
            rule=form.rrule.data or "",
            timezone=tz_name,
            rules=rules,
            now=utcnow(),
            location=form.location.data or "",
            source="dashboard",
            created_by_id=admin.id,
        )
    except ValueError:
        flash("The first start must be a date and time like 2027-03-02T10:00; nothing was made.")
        return redirect(url_for(".index"))
    except ServiceError as error:
        flash(error.message)
        return redirect(url_for(".index"))
    flash(created.notice or f"Series {created.series.name} created")
    return redirect(url_for(".series_page", series_id=created.series.id))


@bp.get("/series/<int:series_id>")
@documented(
    "A series: its occurrences in local time with attendance per occurrence",
    produces="text/html",
)
def series_page(series_id: int) -> str | Response:
    if _admin() is None:
        return redirect(url_for(".login"))
    found = series.get_series(series_id)
    occurrences = series.occurrences_of(series_id)
    ids = [event.id for event in occurrences]
    checked = _count_by_event(Attendance.event_id, ids, queries.COUNTED)
    marked = _count_by_event(Attendance.event_id, ids, Attendance.voided_at.is_(None))
    marked_absent = _count_by_event(
        Attendance.event_id, ids, Attendance.voided_at.is_(None), Attendance.status == "absent"
    )
    expected = _count_by_event(Enrolment.event_id, ids)
    now, tz = utcnow(), series.zone(found.timezone)
    rows = [
        {
            "event": event,
            "local": event.start_time.astimezone(tz).strftime("%a %Y-%m-%d %H:%M"),
            "state": "cancelled"
            if event.is_cancelled
            else windows.event_status(event, now, settings.current().rules).status,
            "checked_in": checked.get(event.id, 0),
            "expected": expected.get(event.id, 0),
            "is_edited": not event.is_cancelled
            and (event.start_time, event.name, event.location)
            != (
                series.pattern_of(found, event.occurrence_key).start_time,
                found.name,
                found.location,
            ),
        }
        for event in occurrences
    ]
    for row in rows:
        ended = row["state"] == windows.ENDED
        # Absent: marked absent, or expected and no live mark (excused is never absent).
        event_id = row["event"].id
        unmarked = max(0, row["expected"] - marked.get(event_id, 0))
        row["absent"] = marked_absent.get(event_id, 0) + unmarked if ended else 0
    return render_template(
        "dashboard/series.html",
        admin=_admin(),
        series=found,
        rows=rows,
        notes=get_flashed_messages(),
    )


@bp.post("/keys/<name>/revoke")
@documented("Revoke an integration key (the page's form)", status=302)
def revoke_key(name: str) -> Response:
    return _act(lambda *_: f"Key {api_keys.revoke_key(name).name} revoked")


@bp.post("/outbound/<int:subscription_id>/enable")
@documented("Turn a disabled outbound webhook back on (the page's form)", status=302)
def enable_subscription(subscription_id: int) -> Response:
    def run(*_: Any) -> str:
        was_on = subscriptions.get_subscription(subscription_id).is_active
        subscription = subscriptions.update_subscription(
            subscription_id,
            changes={"is_active": True},
            allow_private=current_app.config["OUTBOUND_WEBHOOKS_ALLOW_PRIVATE"],
        )
        if was_on:
            return f"Outbound webhook {subscription.name} was on already"
        return f"Outbound webhook {subscription.name} turned back on"

    return _act(run)


@bp.post("/feeds/<int:feed_id>/revoke")
@documented("Revoke a calendar feed URL (the page's form)", status=302)
def revoke_feed(feed_id: int) -> Response:
    return _act(lambda *_: f"Calendar feed {calendar.revoke_feed(feed_id).name} revoked")


@bp.get("/")
@documented("The dashboard (a signed-in admin; else a redirect to sign in)", produces="text/html")
def index() -> str | Response:
    if _admin() is None:
        return redirect(url_for(".login"))
    return _overview()


def _overview(created: tuple[str, str] | None = None) -> str:
    config = current_app.config
    report = overview.state_report(
        upstream_configured=bool(config["CHECKOUT_API_URL"]),
        counts_max_age=config["STATE_COUNTS_MAX_AGE"],
        users_limit=0,
        users_offset=0,
    )
    return render_template(
        "dashboard/index.html",
        admin=_admin(),
        created=created,
        report=report,
        events=_events_of_today(),
        recent=_recent_check_ins(),
        failed=request_log.list_requests(outcome="failed", limit=10),
        keys=api_keys.list_keys(),
        subscriptions=subscriptions.list_subscriptions(),
        deliveries=subscriptions.delivery_tally(since=utcnow() - timedelta(hours=24)),
        feeds=calendar.list_feeds(),
        excuses=excuses.list_excuses(excuses.ExcuseFilter(state=EXCUSE_PENDING, limit=20))[0],
        findings=review.list_findings(review.FindingFilter(limit=20))[0],
        describe_finding=review.describe,
        all_series=series.list_series(limit=50),
        action=ActionForm(),
        new_key=NewKeyForm(),
        new_series=NewSeriesForm(),
        notes=get_flashed_messages(),
    )


def _events_of_today() -> list[dict[str, Any]]:
    """Events running now or starting today, with check-ins against the expected."""
    now = utcnow()
    start_of_day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    found = db.session.scalars(
        select(Event)
        .where(Event.is_active.is_(True))
        .where(Event.start_time < start_of_day + timedelta(days=1))
        .where((Event.end_time > now) | (Event.start_time >= start_of_day))
        .order_by(Event.start_time)
        .limit(20)
    ).all()
    ids = [event.id for event in found]
    checked = _count_by_event(Attendance.event_id, ids, queries.COUNTED)
    expected = _count_by_event(Enrolment.event_id, ids)
    return [
        {
            "event": event,
            "checked_in": checked.get(event.id, 0),
            "expected": expected.get(event.id, 0),
        }
        for event in found
    ]


def _count_by_event(column: Any, ids: list[int], *where: Any) -> dict[int, int]:
    if not ids:
        return {}
    rows = db.session.execute(
        select(column, func.count()).where(column.in_(ids), *where).group_by(column)
    )
    return dict(rows.all())


class RecentCheckIn(BaseModel):
    checked_in_at: IsoTime
    student: str
    event: str
    status: str
    source: str | None


class RecentCheckIns(BaseModel):
    checkins: list[RecentCheckIn]


@bp.get("/recent.json")
@documented(
    "The latest check-ins, for the page's live table (a signed-in admin)",
    response=RecentCheckIns,
    errors=(401, 503),
)
def recent_json() -> Response:
    if _admin() is None:
        raise Unauthorized("Sign in to the dashboard first")
    rows = [
        RecentCheckIn(
            checked_in_at=attendance.checked_in_at,
            student=attendance.student.name,
            event=attendance.event.name,
            status=attendance.status,
            source=attendance.source,
        )
        for attendance in _recent_check_ins()
    ]
    response = answer(RecentCheckIns(checkins=rows))
    response.headers["Cache-Control"] = "no-store"
    return response


def _recent_check_ins() -> list[Attendance]:
    return list(
        db.session.scalars(
            select(Attendance)
            .where(queries.COUNTED)
            .order_by(Attendance.checked_in_at.desc())
            .limit(RECENT)
        )
    )


# --- an event's page ------------------------------------------------------------------------

CHART_BARS = 24
STATUS_ORDER = ("present", "late", "excused", "absent", "pending")


def _marks_of(event_id: int) -> dict[int, Attendance]:
    """Every mark at the event, voided ones too, by person."""
    return {
        mark.student_id: mark
        for mark in db.session.scalars(select(Attendance).where(Attendance.event_id == event_id))
    }


@bp.get("/events/<int:event_id>")
@documented(
    "An event: each person's mark with its corrections, the history, excuses, and "
    "check-ins over time",
    produces="text/html",
)
def event_page(event_id: int) -> str | Response:
    if _admin() is None:
        return redirect(url_for(".login"))
    event = queries.get_event(event_id)
    now = utcnow()
    marks = _marks_of(event_id)
    expected = set(
        db.session.scalars(select(Enrolment.student_id).where(Enrolment.event_id == event_id))
    )
    people = {
        student.id: student
        for student in db.session.scalars(
            select(Student).where(Student.id.in_(expected | set(marks)))
        )
    }
    status = windows.event_status(event, now, settings.current().rules)
    ended = status.status == windows.ENDED
    unmarked = "absent" if ended else "pending"

    def row(student_id: int) -> dict[str, Any]:
        mark = marks.get(student_id)
        live = mark is not None and mark.voided_at is None
        return {
            "student": people[student_id],
            "attendance": mark,
            "status": mark.status if live else unmarked,
            "voided": mark is not None and not live,
        }

    rows = sorted(
        (row(student_id) for student_id in people),
        key=lambda r: (STATUS_ORDER.index(r["status"]), r["student"].name),
    )
    tally = {name: sum(1 for r in rows if r["status"] == name) for name in STATUS_ORDER}
    tally["voided"] = sum(1 for r in rows if r["voided"])
    counted = [m.checked_in_at for m in marks.values() if m.counts and m.checked_in_at]
    entries = history.entries_for_event(db.session.connection(), event_id)
    names = {
        student.id: student.name
        for student in db.session.scalars(
            select(Student).where(Student.id.in_({e.after["student_id"] for e in entries}))
        )
    }
    found, _ = excuses.list_excuses(excuses.ExcuseFilter(event_id=event_id, limit=200))
    return render_template(
        "dashboard/event.html",
        admin=_admin(),
        event=event,
        status=status.status,
        rows=rows,
        tally=tally,
        chart=_chart(counted, event),
        entries=entries,
        names=names,
        excuses=found,
        form=CorrectionForm(),
        statuses=STATUSES,
        pending=EXCUSE_PENDING,
        notes=get_flashed_messages(),
    )


def _actor(admin: Account) -> str:
    return f"account:{admin.id}"


def _correction(admin: Account, form: CorrectionForm) -> corrections.Correction:
    return corrections.Correction(actor=_actor(admin), reason=form.reason.data)


def _back_to(event_id: int) -> str:
    return url_for(".event_page", event_id=event_id)


@bp.post("/events/<int:event_id>/people/<int:person_id>/status")
@documented("Set a person's status at the event, with a reason (the page's form)", status=302)
def set_status(event_id: int, person_id: int) -> Response:
    def run(admin: Account, form: CorrectionForm) -> str:
        change = corrections.set_status(
            event_id=event_id,
            person_id=person_id,
            status=form.status.data or "",
            correction=_correction(admin, form),
            rules=settings.current().rules,
        )
        return f"Marked {change.after['status']} (attendance {change.attendance_id})"

    return _act(run, back=_back_to(event_id), form=CorrectionForm)


@bp.post("/events/<int:event_id>/mark-unmarked")
@documented("Mark everyone still unmarked absent or excused (the page's form)", status=302)
def mark_unmarked(event_id: int) -> Response:
    def run(admin: Account, form: CorrectionForm) -> str:
        changes = corrections.mark_unmarked(
            event_id=event_id,
            status=form.status.data or "",
            correction=_correction(admin, form),
            rules=settings.current().rules,
        )
        return f"{len(changes)} marked {form.status.data}"

    return _act(run, back=_back_to(event_id), form=CorrectionForm)


def _attendance_event(attendance_id: int) -> int:
    mark = db.session.get(Attendance, attendance_id)
    if mark is None:
        raise NotFound(f"Attendance {attendance_id} not found")
    return mark.event_id


@bp.post("/attendances/<int:attendance_id>/void")
@documented("Void a check-in, with a reason (the page's form)", status=302)
def void(attendance_id: int) -> Response:
    def run(admin: Account, form: CorrectionForm) -> str:
        corrections.void(attendance_id=attendance_id, correction=_correction(admin, form))
        return f"Attendance {attendance_id} voided"

    return _act(run, back=lambda: _back_to(_attendance_event(attendance_id)), form=CorrectionForm)


@bp.post("/attendances/<int:attendance_id>/restore")
@documented("Restore a voided check-in, with a reason (the page's form)", status=302)
def restore(attendance_id: int) -> Response:
    def run(admin: Account, form: CorrectionForm) -> str:
        corrections.restore(attendance_id=attendance_id, correction=_correction(admin, form))
        return f"Attendance {attendance_id} restored"

    return _act(run, back=lambda: _back_to(_attendance_event(attendance_id)), form=CorrectionForm)


@bp.post("/excuses/<int:excuse_id>/approve")
@documented("Approve an excuse: the person is marked excused (the page's form)", status=302)
def approve_excuse(excuse_id: int) -> Response:
    def run(admin: Account, _form: FlaskForm) -> str:
        excuse, change = excuses.approve(
            excuse_id=excuse_id, actor=_actor(admin), note=None, rules=settings.current().rules
        )
        return f"Excuse {excuse.id} approved: marked excused (attendance {change.attendance_id})"

    return _act(run, back=lambda: _back_to(excuses.get_excuse(excuse_id).event_id))


@bp.post("/excuses/<int:excuse_id>/decline")
@documented("Decline an excuse, with a reason (the page's form)", status=302)
def decline_excuse(excuse_id: int) -> Response:
    def run(admin: Account, form: CorrectionForm) -> str:
        excuses.decline(excuse_id=excuse_id, actor=_actor(admin), reason=form.reason.data)
        return f"Excuse {excuse_id} declined"

    return _act(
        run, back=lambda: _back_to(excuses.get_excuse(excuse_id).event_id), form=CorrectionForm
    )


def _chart(moments: list, event: Event) -> dict[str, Any]:
    """Check-ins per time slot from the window's opening to the event's end (or the last
    check-in), as bars for an SVG the template draws: no chart library, no script."""
    rules = settings.current().rules
    start = event.start_time - rules.opens_before
    end = max([event.end_time or event.start_time + timedelta(hours=1), *moments])
    slot = max((end - start) / CHART_BARS, timedelta(minutes=1))
    counts = [0] * CHART_BARS
    for moment in moments:
        counts[min(CHART_BARS - 1, max(0, int((moment - start) / slot)))] += 1
    tallest = max(counts) or 1
    return {
        "bars": [
            {
                "x": i * 25,
                "height": round(count / tallest * 100),
                "count": count,
                "at": (start + i * slot).strftime("%H:%M"),
            }
            for i, count in enumerate(counts)
        ],
        "from": start.strftime("%H:%M"),
        "to": end.strftime("%H:%M"),
        "tallest": tallest,
    }


@bp.get("/events/<int:event_id>.csv")
@documented(
    "An event's attendance as Moodle CSV (a signed-in admin; else 302 to the sign-in)",
    produces="text/csv",
    errors=(302,),
)
def event_csv(event_id: int) -> Response:
    if _admin() is None:
        return redirect(url_for(".login"))
    queries.get_event(event_id)
    rows = exports.moodle_rows(period=exports.Period(), event_id=event_id, now=utcnow())
    return csv_download(exports.MOODLE_HEADER, rows, f"event-{event_id}.csv")


# --- findings -------------------------------------------------------------------------------


@bp.post("/findings/<int:finding_id>/confirm")
@documented("Confirm a finding: its check-ins are voided (the page's form)", status=302)
def confirm_finding(finding_id: int) -> Response:
    def run(admin: Account, form: CorrectionForm) -> str:
        finding = review.confirm(
            finding_id=finding_id, actor=_actor(admin), reason=form.reason.data
        )
        return f"Finding {finding_id} confirmed: {len(finding.voided_ids or [])} check-ins voided"

    return _act(run, back=lambda: url_for(".index") + "#findings", form=CorrectionForm)


@bp.post("/findings/<int:finding_id>/dismiss")
@documented("Dismiss a finding, with a reason (the page's form)", status=302)
def dismiss_finding(finding_id: int) -> Response:
    def run(admin: Account, form: CorrectionForm) -> str:
        review.dismiss(finding_id=finding_id, actor=_actor(admin), reason=form.reason.data)
        return f"Finding {finding_id} dismissed"

    return _act(run, back=lambda: url_for(".index") + "#findings", form=CorrectionForm)


# --- alerts ---

ALERTS_SHOWN = 20


class AcknowledgeForm(FlaskForm):
    """An acknowledgement's optional note (the page's token comes with it)."""

    note = StringField("Note", validators=[Optional(), Length(max=2000)])


@bp.context_processor
def _open_alerts() -> dict[str, Any]:
    """`open_alerts()` for the overview's panel: (newest open alerts, how many are open),
    queried only by a page that shows them."""
    return {"open_alerts": lambda: alerts.list_alerts(alerts.AlertFilter(limit=ALERTS_SHOWN))}


@bp.post("/alerts/<int:alert_id>/acknowledge")
@documented("Acknowledge an absence alert, with an optional note (the page's form)", status=302)
def acknowledge_alert(alert_id: int) -> Response:
    def run(admin: Account, form: AcknowledgeForm) -> str:
        alerts.acknowledge(alert_id=alert_id, actor=_actor(admin), note=form.note.data)
        return f"Alert {alert_id} acknowledged"

    return _act(run, back=lambda: url_for(".index") + "#alerts", form=AcknowledgeForm)
