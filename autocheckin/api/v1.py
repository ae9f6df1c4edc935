"""The AutoCheckin API (`/api/v1`), as the seed documents it; `x-checkout-key` required."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Literal

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from pydantic import BaseModel, Field

from autocheckin import jobs, overview, settings, state
from autocheckin.api import schemas
from autocheckin.api.errors import error_response
from autocheckin.api.openapi import ANONYMOUS, answers, documented
from autocheckin.api.parsing import parse_query
from autocheckin.api.security import key_accepted
from autocheckin.auth import api_keys
from autocheckin.config import open_setups, weak_settings
from autocheckin.errors import NotFound
from autocheckin.extensions import compress
from autocheckin.jobs import lease
from autocheckin.jobs.models import ABANDONED, FAILED
from autocheckin.jobs.runner import JobBusy, Joined, join_run, run_recorded
from autocheckin.sync import connection, sessions
from autocheckin.webhooks import receive, request_log
from autocheckin.webhooks.schemas import WebhookRequestView

bp = Blueprint("v1", __name__, url_prefix="/api/v1")

KEY_HEADER = "x-checkout-key"
OPEN_ENDPOINTS = {"v1.auth_test"}


def success(message: str, data: dict, status: int = 200) -> Response:
    response = jsonify({"success": True, "message": message, "data": data})
    response.status_code = status
    return response


@bp.before_request
@answers(401, 429, 503, skips=OPEN_ENDPOINTS)
def require_checkout_key() -> Response | None:
    """Every /api/v1 route but auth/test needs the key; with none configured, none is open."""
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    configured = current_app.config["CHECKOUT_API_KEY"]
    provided = request.headers.get(KEY_HEADER)
    if provided and key_accepted(provided, configured):
        return None
    if not configured and not api_keys.any_live():
        return error_response(503, "CHECKOUT_API_KEY is not configured on this server")
    if not provided:
        return error_response(401, f"Missing {KEY_HEADER} header")
    return error_response(401, "Invalid API key")


@bp.route("/auth/test", methods=["GET", "POST"])
@documented(
    "Test an API key", response=schemas.AuthTestResponse, security=("checkoutKey", ANONYMOUS)
)
def auth_test() -> Response:
    authenticated = key_accepted(
        request.headers.get(KEY_HEADER), current_app.config["CHECKOUT_API_KEY"]
    )
    return success("Authentication Test Result", {"authenticated": authenticated})


@bp.get("/status")
@documented(
    "Upstream connection status",
    response=schemas.StatusResponse,
    security=("checkoutKey",),
    errors=(401, 503),
)
def status() -> Response:
    upstream_configured = bool(current_app.config["CHECKOUT_API_URL"])
    link = state.connection()
    return success(
        "API Status",
        {
            "connected": bool(link["connected"]) and upstream_configured,
            "upstream_configured": upstream_configured,
            "reason": link["reason"] if upstream_configured else overview.NOT_CONFIGURED_REASON,
            "open_setups": open_setups(current_app.config),
            "warnings": weak_settings(current_app.config),
        },
    )


class StateQuery(BaseModel):
    users_limit: int | None = Field(
        None, ge=0, description="roster entries in autoCheckinUsers (default: the whole roster)"
    )
    users_offset: int = Field(0, ge=0, le=2**31 - 1)


@bp.get("/state")
@documented(
    "Global state: connection, stored data, the roster, jobs, counts (ETag: If-None-Match "
    "answers 304 when nothing changed)",
    query=StateQuery,
    response=schemas.StateResponse,
    security=("checkoutKey",),
    errors=(304, 400, 401, 503),
)
@compress.compressed()
def global_state() -> Response:
    query = parse_query(StateQuery)
    config = current_app.config
    view = {
        "upstream_configured": bool(config["CHECKOUT_API_URL"]),
        "counts_max_age": config["STATE_COUNTS_MAX_AGE"],
        "users_limit": query.users_limit,
        "users_offset": query.users_offset,
    }
    etag = overview.state_etag(**view)
    if _matches(etag):
        unchanged = Response(status=304)
        unchanged.set_etag(etag)
        return unchanged
    body = _STATE_BODIES.get(etag)
    if body is None:
        report = overview.state_report(**view)
        envelope = {"success": True, "message": "Global State", "data": report}
        body = current_app.json.dumps(envelope, separators=(",", ":"))
        _STATE_BODIES.put(etag, body)
    response = Response(body, mimetype="application/json")
    response.set_etag(etag)
    return response


class _Bodies:
    """The last few state answers of this process, by ETag: an ETag names one body, so a
    poll that sends none gets the serialized answer again instead of a new build (5,000
    roster users are 440 KB and about 30 ms of CPU to build)."""

    def __init__(self, size: int = 4):
        self._size = size
        self._bodies: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, etag: str) -> str | None:
        with self._lock:
            body = self._bodies.get(etag)
            if body is not None:
                self._bodies.move_to_end(etag)
            return body

    def put(self, etag: str, body: str) -> None:
        with self._lock:
            self._bodies[etag] = body
            while len(self._bodies) > self._size:
                self._bodies.popitem(last=False)


_STATE_BODIES = _Bodies()


def _matches(etag: str) -> bool:
    """`If-None-Match` names this ETag, also as flask-compress sent it for a compressed
    answer (`"tag:gzip"`), whichever encoding the poll accepts now."""
    offered = {tag.rpartition(":")[0] or tag for tag in request.if_none_match.as_set()}
    return etag in offered or etag in request.if_none_match


def _app() -> Flask:
    return current_app._get_current_object()  # type: ignore[attr-defined]


def _still_going(message: str, joined: Joined) -> Response:
    """202: the run this trigger joined had not ended within TRIGGER_WAIT_SECONDS."""
    data = schemas.RunStillGoingData(
        run_id=joined.run_id, status=joined.status, started_at=joined.started_at
    )
    return success(message, data.model_dump(mode="json"), status=202)


def _joined_outcome(joined: Joined) -> None:
    """A joined run that failed fails this trigger the same way (502 with its reason)."""
    if joined.status in (FAILED, ABANDONED):
        raise connection.UpstreamFailed(joined.error or f"the run ended {joined.status}")


RUNNING_ANSWER = ((202, schemas.RunStillGoingResponse),)


@bp.get("/fetch-users")
@documented(
    "Fetch users from CheckOut now (the fetch_users job); joins a fetch in progress",
    response=schemas.FetchUsersResponse,
    security=("checkoutKey",),
    errors=(401, 502, 503),
    other_answers=RUNNING_ANSWER,
)
def fetch_users() -> Response:
    outcome = jobs.trigger_or_join(_app(), "fetch_users")
    if isinstance(outcome, Joined):
        if not outcome.is_finished:
            return _still_going("User fetch still running", outcome)
        _joined_outcome(outcome)
        outcome = outcome.counts
    return success("User fetch completed", {"success": True, **outcome})


@bp.get("/refresh")
@documented(
    "Refresh every user's check-in sessions now (the refresh_sessions job); joins a "
    "refresh in progress",
    response=schemas.RefreshResponse,
    security=("checkoutKey",),
    errors=(401, 502, 503),
    other_answers=RUNNING_ANSWER,
)
def refresh() -> Response:
    outcome = jobs.trigger_or_join(_app(), "refresh_sessions")
    if isinstance(outcome, Joined):
        if not outcome.is_finished:
            return _still_going("Checkin session refresh still running", outcome)
        _joined_outcome(outcome)
        described, counts = sessions.stored_sessions(), outcome.counts
    elif outcome.outcome == sessions.FAILED:
        raise connection.UpstreamFailed(outcome.error)
    else:
        described, counts = outcome.sessions, outcome.counts
    return success(
        "Checkin sessions refreshed successfully",
        schemas.RefreshData(
            sessions=[schemas.CheckInSessionData.model_validate(s) for s in described],
            counts=counts,
        ).model_dump(mode="json"),
    )


@bp.get("/refresh-session/<path:email>")
@documented(
    "Refresh one user's check-in session now; joins a refresh of that user in progress, "
    "and waits for a user fetch in progress that may bring the user",
    response=schemas.RefreshSessionResponse,
    security=("checkoutKey",),
    errors=(401, 404, 502, 503),
    other_answers=RUNNING_ANSWER,
)
def refresh_session(email: str) -> Response:
    app, wait = _app(), current_app.config["TRIGGER_WAIT_SECONDS"]
    lock_name = f"refresh_session:{email.strip().lower()}"
    try:
        session = _refresh_one(app, email, lock_name)
    except NotFound:
        # The user fetch running now may be about to store this user: wait for it, once.
        if not lease.current("job:fetch_users"):
            raise
        joined = join_run("fetch_users", timeout=wait)
        if not joined.is_finished:
            return _still_going("User fetch still running", joined)
        session = _refresh_one(app, email, lock_name)
    except JobBusy:
        joined = join_run("refresh_session", timeout=wait, lock_name=lock_name)
        if not joined.is_finished:
            return _still_going("Checkin session refresh still running", joined)
        (session,) = sessions.stored_sessions(email)
    return success(
        "Checkin session refreshed successfully",
        {"session": schemas.CheckInSessionData.model_validate(session).model_dump(mode="json")},
    )


def _refresh_one(app: Flask, email: str, lock_name: str):
    return run_recorded(
        "refresh_session",
        lambda: sessions.refresh_one(connection.client_for(app), email),
        trigger="manual",
        holder="api",
        lock_name=lock_name,
    )


class DeliveryQuery(BaseModel):
    status: Literal["processing", "succeeded", "failed", "unmatched", "resolved"] | None = None
    limit: int = Field(50, ge=1, le=500)


def _webhook_options() -> receive.WebhookOptions:
    return settings.current().webhooks


@bp.get("/webhooks/deliveries")
@documented(
    "Recorded webhook requests, newest first (status=failed includes unmatched)",
    query=DeliveryQuery,
    response=schemas.DeliveriesResponse,
    security=("checkoutKey",),
    errors=(400, 401),
)
def webhook_deliveries() -> Response:
    query = parse_query(DeliveryQuery)
    records = request_log.list_requests(outcome=query.status, limit=query.limit)
    return success(
        "Webhook requests",
        {"deliveries": [WebhookRequestView.of(r) for r in records], "count": len(records)},
    )


@bp.get("/webhooks/deliveries/<int:request_id>")
@documented(
    "One recorded webhook request",
    response=schemas.DeliveryResponse,
    security=("checkoutKey",),
    errors=(401, 404),
)
def webhook_delivery(request_id: int) -> Response:
    record = request_log.get_request(request_id)
    return success("Webhook request", {"delivery": WebhookRequestView.of(record)})


@bp.post("/webhooks/deliveries/<int:request_id>/replay")
@documented(
    "Process a recorded webhook request again",
    response=schemas.ReplayResponse,
    security=("checkoutKey",),
    errors=(401, 404, 409),
)
def replay_webhook_delivery(request_id: int) -> Response:
    record = receive.replay(request_id, _webhook_options())
    return success(
        "Webhook request replayed",
        {"delivery": WebhookRequestView.of(record), "response": record.response_body},
    )


@bp.post("/webhooks/unmatched/resolve")
@documented(
    "Replay unmatched check-ins whose student and event now exist",
    response=schemas.ResolveResponse,
    security=("checkoutKey",),
    errors=(401,),
)
def resolve_unmatched_webhooks() -> Response:
    return success("Unmatched check-ins processed", receive.resolve_unmatched(_webhook_options()))
