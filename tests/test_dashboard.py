"""The dashboard: admins sign in with a CSRF-protected form and a session cookie; the
page's numbers are the API's numbers. (The real-browser test is issue 13's next step.)"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from autocheckin.attendance.checkins import CheckIn, record_check_in
from autocheckin.attendance.windows import CheckInRules
from autocheckin.auth import accounts, api_keys
from autocheckin.times import utcnow
from tests.conftest import API_KEY
from tests.helpers import make_event, make_student

RULES = CheckInRules()

PASSWORD = "correct horse battery staple 42"
SECRET = "dashboard-session-secret-0123456789abcdef"


@pytest.fixture
def site(make_app):
    app = make_app(SECRET_KEY=SECRET)
    with app.app_context():
        accounts.register_user(email="boss@example.com", name="Boss", password=PASSWORD)
        accounts.set_web_role(email="boss@example.com", role="admin")
        accounts.register_user(email="ann@example.com", name="Ann", password=PASSWORD)
    return app


def _token(page: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def _sign_in(client, email: str, *, with_token: bool = True):
    form = {"email": email, "password": PASSWORD}
    if with_token:
        form["csrf_token"] = _token(client.get("/dashboard/login").get_data(as_text=True))
    return client.post("/dashboard/login", data=form)


def test_an_admin_signs_in_and_sees_the_apis_numbers(site):
    client = site.test_client()
    assert client.get("/dashboard/").headers["Location"].endswith("/dashboard/login")
    answer = _sign_in(client, "boss@example.com")
    assert answer.status_code == 302
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get("/dashboard/").get_data(as_text=True)
    counts = client.get("/api/v1/state", headers={"x-checkout-key": API_KEY}).get_json()
    for name, value in counts["data"]["counts"].items():
        assert f'data-count="{name}">{value}<' in page
    assert "fetch_users" in page and "Integration keys" in page
    assert API_KEY not in page


def test_a_plain_user_or_a_form_without_its_token_gets_nowhere(site):
    client = site.test_client()
    refused = _sign_in(client, "ann@example.com")
    assert refused.status_code == 400
    assert "Only admins may use the dashboard." in refused.get_data(as_text=True)
    assert client.get("/dashboard/").status_code == 302
    forged = _sign_in(site.test_client(), "boss@example.com", with_token=False)
    assert forged.status_code == 400
    assert "expired" in forged.get_data(as_text=True)


def test_signing_out_needs_the_pages_token(site):
    client = site.test_client()
    _sign_in(client, "boss@example.com")
    client.post("/dashboard/logout", data={})  # a cross-site POST carries no token
    page = client.get("/dashboard/").get_data(as_text=True)
    assert "Integration keys" in page
    client.post("/dashboard/logout", data={"csrf_token": _token(page)})
    assert client.get("/dashboard/").status_code == 302


def _session_cookie(client) -> str:
    return client.get_cookie("session").value


def _replayed(site, cookie: str):
    """A new browser that sends a copied session cookie, as an attacker would."""
    thief = site.test_client()
    thief.set_cookie("session", cookie)
    return thief


def test_a_session_cookie_replayed_after_sign_out_opens_nothing(site):
    client = site.test_client()
    _sign_in(client, "boss@example.com")
    stolen = _session_cookie(client)
    page = client.get("/dashboard/").get_data(as_text=True)
    token = _token(page)
    assert "Integration keys" in _replayed(site, stolen).get("/dashboard/").get_data(as_text=True)
    client.post("/dashboard/logout", data={"csrf_token": token})
    thief = _replayed(site, stolen)
    assert thief.get("/dashboard/").status_code == 302
    made = thief.post("/dashboard/keys", data={"name": "stolen", "csrf_token": token})
    assert made.status_code == 302 and made.headers["Location"].endswith("/dashboard/login")
    with site.app_context():
        assert [key.name for key in api_keys.list_keys()] == []


@pytest.mark.parametrize(
    "ending",
    [
        ["users", "demote", "boss@example.com"],
        ["users", "deactivate", "boss@example.com"],
    ],
)
def test_a_lost_role_or_deactivation_ends_every_session_for_good(site, ending):
    client = site.test_client()
    _sign_in(client, "boss@example.com")
    stolen = _session_cookie(client)
    runner = site.test_cli_runner()
    assert runner.invoke(args=ending).exit_code == 0
    assert _replayed(site, stolen).get("/dashboard/").status_code == 302
    # Given back, the role (or the account) revives no session from before.
    assert runner.invoke(args=["users", "activate", "boss@example.com"]).exit_code == 0
    assert runner.invoke(args=["users", "promote", "boss@example.com"]).exit_code == 0
    assert _replayed(site, stolen).get("/dashboard/").status_code == 302
    assert client.get("/dashboard/").status_code == 302


def test_a_session_ends_at_its_expiry_however_often_it_is_used(site):
    with site.app_context():
        boss = accounts.authenticate(email="boss@example.com", password=PASSWORD)
        live = accounts.open_session(account_id=boss.id, lifetime=timedelta(hours=12))
        over = accounts.open_session(account_id=boss.id, lifetime=timedelta(seconds=-1))
        assert accounts.session_account(live).id == boss.id
        assert accounts.session_account(over) is None
        assert accounts.session_account("not a session") is None


def test_a_password_change_ends_the_session(site):
    client = site.test_client()
    _sign_in(client, "boss@example.com")
    with site.app_context():
        boss = next(
            u for u in accounts.list_accounts(skip=0, limit=10)[0] if u.email == "boss@example.com"
        )
        accounts.update_profile(
            account_id=boss.id, changes={"password": PASSWORD + "!"}, current_password=PASSWORD
        )
    assert client.get("/dashboard/").status_code == 302


def test_wrong_passwords_are_limited_like_every_login(site):
    client = site.test_client()
    token = _token(client.get("/dashboard/login").get_data(as_text=True))
    form = {"email": "boss@example.com", "password": "wrong", "csrf_token": token}
    answers = [client.post("/dashboard/login", data=form) for _ in range(11)]
    assert "Incorrect email or password." in answers[0].get_data(as_text=True)
    assert "Too many attempts" in answers[-1].get_data(as_text=True)


def test_without_a_secret_key_the_dashboard_says_so(make_app):
    answer = make_app(SECRET_KEY=None).test_client().get("/dashboard/login")
    assert answer.status_code == 503
    assert answer.content_type.startswith("text/html")
    assert "SECRET_KEY" in answer.get_data(as_text=True)


def _page(client) -> str:
    return client.get("/dashboard/").get_data(as_text=True)


def test_replay_and_resolve_buttons(site):
    client = site.test_client()
    _sign_in(client, "boss@example.com")
    body = {"student_identifier": "later", "event_identifier": "Later event"}
    assert client.post("/api/webhook/attendance/", json=body).status_code == 404
    page = _page(client)
    request_id = int(re.search(r"/dashboard/webhooks/(\d+)/replay", page).group(1))
    forged = client.post(f"/dashboard/webhooks/{request_id}/replay", data={})
    assert "expired" in _page(client)  # nothing done without the page's token
    assert forged.status_code == 302
    client.post(f"/dashboard/webhooks/{request_id}/replay", data={"csrf_token": _token(page)})
    assert f"Request {request_id} replayed: unmatched" in _page(client)
    with site.app_context():
        from tests.helpers import make_event, make_student

        make_student(identifier="later", email="later@example.com")
        make_event(name="Later event")
    client.post("/dashboard/webhooks/resolve", data={"csrf_token": _token(_page(client))})
    assert "1 of 1 unmatched check-ins resolved" in _page(client)


def test_keys_are_made_and_revoked_from_the_page(site):
    client = site.test_client()
    _sign_in(client, "boss@example.com")
    made = client.post("/dashboard/keys", data={"name": "lms", "csrf_token": _token(_page(client))})
    assert made.status_code == 201
    key = re.search(r"<code>(ack_[^<]+)</code>", made.get_data(as_text=True)).group(1)
    assert "Set-Cookie" not in made.headers or key not in made.headers["Set-Cookie"]
    assert client.get("/api/v1/status", headers={"x-checkout-key": key}).status_code == 200
    assert key not in _page(client)  # shown once
    client.post("/dashboard/keys/lms/revoke", data={"csrf_token": _token(_page(client))})
    assert "Key lms revoked" in _page(client)
    assert client.get("/api/v1/status", headers={"x-checkout-key": key}).status_code == 401


def test_the_buttons_need_a_signed_in_admin(site):
    client = site.test_client()
    for path in (
        "/dashboard/webhooks/1/replay",
        "/dashboard/webhooks/resolve",
        "/dashboard/keys",
        "/dashboard/keys/lms/revoke",
        "/dashboard/outbound/1/enable",
        "/dashboard/feeds/1/revoke",
    ):
        answer = client.post(path, data={})
        assert answer.status_code == 302 and answer.headers["Location"].endswith("/login")


def test_the_live_table_reads_the_latest_check_ins(site):
    client = site.test_client()
    assert client.get("/dashboard/recent.json").status_code == 401
    _sign_in(client, "boss@example.com")
    with site.app_context():
        from tests.helpers import make_event, make_student

        make_student(identifier="a1", email="a1@example.com", first_name="Ann", last_name="Lee")
        make_event(name="Lab")
    body = {"student_identifier": "a1", "event_identifier": "Lab", "source": "scanner"}
    assert client.post("/api/webhook/attendance/", json=body).status_code == 201
    live = client.get("/dashboard/recent.json")
    assert live.headers["Cache-Control"] == "no-store"
    (row,) = live.get_json()["checkins"]
    assert (row["student"], row["event"], row["source"]) == ("Ann Lee", "Lab", "scanner")
    page = _page(client)
    assert 'src="/dashboard/static/dashboard.js"' in page
    script = client.get("/dashboard/static/dashboard.js")
    assert script.status_code == 200
    script.close()
    assert "script-src 'self'" in client.get("/dashboard/").headers["Content-Security-Policy"]


def test_an_events_page_lists_attendees_with_a_chart_and_a_csv(site):
    from datetime import timedelta

    from autocheckin.attendance.models import Attendance
    from autocheckin.extensions import db
    from autocheckin.sync.models import Enrolment
    from autocheckin.times import utcnow
    from tests.helpers import make_event, make_student

    now = utcnow()
    with site.app_context():
        ann = make_student(
            identifier="a1", email="a1@example.com", first_name="Ann", last_name="Lee"
        )
        bob = make_student(
            identifier="b2", email="b2@example.com", first_name="Bob", last_name="Ray"
        )
        cy = make_student(identifier="c3", email="c3@example.com", first_name="Cy", last_name="Ng")
        lab = make_event(
            name="Lab", start_time=now - timedelta(hours=2), end_time=now - timedelta(hours=1)
        )
        db.session.add_all(
            [
                Attendance(
                    student_id=ann.id,
                    event_id=lab.id,
                    checked_in_at=lab.start_time,
                    status="present",
                ),
                Attendance(
                    student_id=bob.id,
                    event_id=lab.id,
                    checked_in_at=lab.start_time + timedelta(minutes=20),
                    status="late",
                ),
                *(
                    Enrolment(student_id=s.id, event_id=lab.id, source="checkout")
                    for s in (ann, bob, cy)
                ),
            ]
        )
        db.session.commit()
        lab_id = lab.id
    client = site.test_client()
    assert client.get(f"/dashboard/events/{lab_id}").status_code == 302
    _sign_in(client, "boss@example.com")
    page = client.get(f"/dashboard/events/{lab_id}").get_data(as_text=True)
    assert "1 present, 1 late, 0 excused, 1 absent, 0 pending" in page
    assert page.count("<rect ") == 24 and "Cy Ng" in page
    csv_answer = client.get(f"/dashboard/events/{lab_id}.csv")
    rows = csv_answer.get_data(as_text=True).splitlines()
    assert rows[0] == "Student ID,Student Email,Session ID,Status,Timestamp,Method"
    assert sorted(row.split(",")[3] for row in rows[1:]) == ["absent", "late", "present"]
    assert client.get("/dashboard/events/999999").status_code == 404


def test_outbound_webhooks_and_calendar_feeds_have_their_panels(site):
    from datetime import timedelta

    from autocheckin.extensions import db
    from autocheckin.integrations import calendar
    from autocheckin.outbound import subscriptions
    from autocheckin.outbound.models import Delivery
    from autocheckin.times import utcnow

    now = utcnow()
    with site.app_context():
        hook, _ = subscriptions.create_subscription(
            fields={
                "name": "Slack alerts",
                "url": "http://127.0.0.1:9/services/T0/B0/secret-path?token=xyz",
                "event_type": "attendance.marked",
            },
            allow_private=True,
        )
        db.session.add_all(
            [
                *(
                    Delivery(
                        subscription_id=hook.id,
                        message_id=f"msg_{n}",
                        event_type="attendance.marked",
                        body="{}",
                        status=status,
                        completed_at=done,
                    )
                    for n, (status, done) in enumerate(
                        [
                            ("succeeded", now - timedelta(minutes=5)),
                            ("succeeded", now - timedelta(hours=1)),
                            ("pending", None),
                            ("failed", now - timedelta(hours=2)),
                            ("failed", now - timedelta(days=3)),  # older than a day: not counted
                        ]
                    )
                )
            ]
        )
        db.session.commit()
        feed, token = calendar.create_feed("Staff calendar")
        hook_id, feed_id = hook.id, feed.id
    client = site.test_client()
    _sign_in(client, "boss@example.com")
    page = _page(client)
    row = re.search(r"<tr><td>Slack alerts</td>.*?</tr>", page, re.S).group(0)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    assert cells[2] == "http://127.0.0.1:9"  # the path and query can be secrets
    assert cells[3:6] == ["2", "1", "1"]  # delivered, waiting, failed in the last 24 h
    assert "secret-path" not in page and "xyz" not in page and token not in page
    with site.app_context():
        subscriptions.update_subscription(
            hook_id, changes={"is_active": False}, allow_private=False
        )
    page = _page(client)
    assert "off</strong>: turned off by PATCH" in page
    client.post(f"/dashboard/outbound/{hook_id}/enable", data={})  # no token: nothing done
    client.post(f"/dashboard/feeds/{feed_id}/revoke", data={})
    page = _page(client)
    assert "The page expired; nothing was done." in page
    assert "off</strong>: turned off by PATCH" in page and "revoked" not in page
    for path in ("/dashboard/outbound/999/enable", "/dashboard/feeds/999/revoke"):
        assert client.post(path, data={"csrf_token": _token(page)}).status_code == 302
    page = _page(client)
    assert "Webhook 999 not found" in page and "Calendar feed 999 not found" in page
    client.post(f"/dashboard/outbound/{hook_id}/enable", data={"csrf_token": _token(page)})
    page = _page(client)
    assert "Outbound webhook Slack alerts turned back on" in page
    assert 'aria-label="Turn Slack alerts back on"' not in page
    client.post(f"/dashboard/feeds/{feed_id}/revoke", data={"csrf_token": _token(page)})
    assert "Calendar feed Staff calendar revoked" in _page(client)
    answer = client.get(f"/api/integrations/calendar/feeds/{token}.ics")
    assert answer.status_code == 404


def test_each_job_shows_its_last_run_outcome_duration_and_last_success(site):
    from datetime import UTC, datetime, timedelta

    from autocheckin.extensions import db
    from autocheckin.jobs.models import JobRun

    began = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    with site.app_context():
        db.session.add_all(
            [
                JobRun(
                    job="refresh_sessions",
                    trigger="schedule",
                    holder="me",
                    status="ok",
                    started_at=began - timedelta(hours=1),
                    finished_at=began - timedelta(minutes=59),
                ),
                JobRun(
                    job="refresh_sessions",
                    trigger="schedule",
                    holder="me",
                    status="failed",
                    error="upstream unreachable",
                    started_at=began,
                    finished_at=began + timedelta(seconds=12.5),
                ),
            ]
        )
        db.session.commit()
    client = site.test_client()
    _sign_in(client, "boss@example.com")
    row = re.search(r'<th scope="row">refresh_sessions</th>.*?</tr>', _page(client), re.S)[0]
    cells = [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
    assert cells == [
        "2026-12-02 09:00",
        "failed: upstream unreachable",
        "12.5 s",
        "2026-12-02 08:01",
        "1",
        "",
    ]


def test_an_outbound_webhooks_last_success_shows_however_old_it_is(site):
    from datetime import timedelta

    from autocheckin.extensions import db
    from autocheckin.outbound import subscriptions
    from autocheckin.outbound.models import Delivery
    from autocheckin.times import utcnow

    long_ago = utcnow() - timedelta(days=2)
    with site.app_context():
        quiet, _ = subscriptions.create_subscription(
            fields={"name": "Quiet CRM", "url": "http://127.0.0.1:9/", "event_type": "x.y"},
            allow_private=True,
        )
        db.session.add(
            Delivery(
                subscription_id=quiet.id,
                message_id="msg_old",
                event_type="x.y",
                body="{}",
                status="succeeded",
                completed_at=long_ago,
            )
        )
        db.session.commit()
        tally = subscriptions.delivery_tally(since=utcnow() - timedelta(hours=24))
    assert tally[quiet.id] == {"last_success": long_ago}  # nothing in the last day
    client = site.test_client()
    _sign_in(client, "boss@example.com")
    row = re.search(r"<tr><td>Quiet CRM</td>.*?</tr>", _page(client), re.S)[0]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    assert cells[3:7] == ["0", "0", "0", long_ago.strftime("%Y-%m-%d %H:%M")]


def test_a_time_the_page_cannot_read_is_shown_as_it_is(site):
    from datetime import UTC, datetime, timedelta, timezone

    shown = site.jinja_env.filters["utc_minute"]
    assert shown("2026-12-02T09:15:42.5Z") == "2026-12-02 09:15"
    assert shown(datetime(2026, 12, 2, 3, 15, tzinfo=timezone(timedelta(hours=-6)))) == (
        "2026-12-02 09:15"
    )
    assert shown(datetime(2026, 12, 2, 9, 15, tzinfo=UTC)) == "2026-12-02 09:15"
    assert shown(None) == "" and shown("") == ""
    assert shown("last Tuesday") == "last Tuesday"


def test_todays_events_leave_out_inactive_ones(site):
    from datetime import timedelta

    from autocheckin.extensions import db
    from autocheckin.times import utcnow
    from tests.helpers import make_event

    now = utcnow()
    with site.app_context():
        make_event(name="Live lab", start_time=now, end_time=now + timedelta(hours=1))
        cancelled = make_event(
            name="Cancelled lab", start_time=now, end_time=now + timedelta(hours=1)
        )
        cancelled.is_active = False
        db.session.commit()
    client = site.test_client()
    _sign_in(client, "boss@example.com")
    today = re.search(r'<section aria-labelledby="today">.*?</section>', _page(client), re.S)[0]
    assert "Live lab" in today and "0 checked in · no roster for this event" in today
    assert "Cancelled lab" not in today


def test_an_event_nobody_is_enrolled_in_shows_its_check_ins_without_a_meter(site):
    """ "1 of 0 checked in" with a full meter said nothing true."""
    now = utcnow()
    with site.app_context():
        event = make_event(name="Drop-in", start_time=now, end_time=now + timedelta(hours=1))
        for _ in range(12):
            student = make_student()
            record_check_in(
                CheckIn(person_id=student.id, event_id=event.id),
                arrived_at=now,
                rules=RULES,
                actor="test",
            )
    client = site.test_client()
    _sign_in(client, "boss@example.com")
    today = re.search(r'<section aria-labelledby="today">.*?</section>', _page(client), re.S)[0]
    assert "12 checked in · no roster for this event" in today
    assert "<meter" not in today and " of 0 " not in today
