"""The AutoCheckin API as the seed documents it, and its key check."""

from __future__ import annotations

import gzip
import json

import pytest
from sqlalchemy import event

from autocheckin import jobs, state
from autocheckin.attendance import service
from autocheckin.extensions import db
from tests.conftest import API_KEY
from tests.helpers import make_student


def test_index_lists_api_info_and_endpoints(client):
    response = client.get("/")
    assert response.status_code == 200
    body = response.get_json()
    assert body["success"] is True
    assert body["message"] == "Welcome to AutoCheckin API"
    assert body["data"]["name"] == "AutoCheckin"
    assert "GET" in body["data"]["endpoints"]["/api/v1/state"]
    assert set(body["data"]["endpoints"]["/api/v1/auth/test"]) == {"GET", "POST"}


def test_health_reports_database(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "healthy", "database": "ok"}


def test_auth_test_with_the_right_key(client):
    for method in (client.get, client.post):
        response = method("/api/v1/auth/test", headers={"x-checkout-key": API_KEY})
        assert response.status_code == 200
        assert response.get_json() == {
            "success": True,
            "message": "Authentication Test Result",
            "data": {"authenticated": True},
        }


def test_auth_test_with_a_wrong_or_missing_key_answers_false(client):
    for headers in ({"x-checkout-key": "nope"}, {}, {"x-checkout-key": "ключ"}):
        response = client.get("/api/v1/auth/test", headers=headers)
        assert response.status_code == 200
        assert response.get_json()["data"] == {"authenticated": False}


def test_auth_test_without_a_configured_key_is_never_true(make_app):
    client = make_app(CHECKOUT_API_KEY=None).test_client()
    response = client.get("/api/v1/auth/test", headers={"x-checkout-key": ""})
    assert response.get_json()["data"] == {"authenticated": False}


def test_protected_endpoints_need_the_key(client):
    for path in ("/api/v1/status", "/api/v1/state"):
        missing = client.get(path)
        assert missing.status_code == 401
        assert missing.get_json() == {
            "success": False,
            "message": "API Error",
            "error": "Missing x-checkout-key header",
            "code": "unauthorized",
        }
        wrong = client.get(path, headers={"x-checkout-key": API_KEY + "x"})
        assert wrong.status_code == 401
        assert wrong.get_json()["error"] == "Invalid API key"
        non_ascii = client.get(path, headers={"x-checkout-key": "clé"})
        assert non_ascii.status_code == 401


def test_protected_endpoints_answer_503_when_no_key_is_configured(make_app):
    client = make_app(CHECKOUT_API_KEY="").test_client()
    response = client.get("/api/v1/state", headers={"x-checkout-key": "anything"})
    assert response.status_code == 503
    assert response.get_json()["error"] == "CHECKOUT_API_KEY is not configured on this server"


def test_status_without_upstream_says_why(client, auth_headers):
    response = client.get("/api/v1/status", headers=auth_headers)
    assert response.status_code == 200
    body = response.get_json()
    assert body["message"] == "API Status"
    assert body["data"]["connected"] is False
    assert body["data"]["upstream_configured"] is False
    assert "CHECKOUT_API_URL" in body["data"]["reason"]


def test_status_reflects_the_stored_connection(make_app, auth_headers):
    app = make_app(CHECKOUT_API_URL="http://127.0.0.1:9/api")
    with app.app_context():
        state.set_connection(connected=True)
    body = app.test_client().get("/api/v1/status", headers=auth_headers).get_json()
    assert body["data"]["connected"] is True


def _on_roster(*students) -> None:
    from autocheckin.sync.models import RosterEntry

    for student in students:
        db.session.add(RosterEntry(student_id=student.id, position=student.id))
    db.session.commit()


def test_state_has_the_whole_roster_and_pages_it_on_request(app, auth_headers):
    """autoCheckinUsers is the whole roster, as the document shows; clients that page ask."""
    with app.app_context():
        _on_roster(*(make_student(email=f"u{n}@example.com", identifier=f"u{n}") for n in range(5)))
    client = app.test_client()
    page = client.get("/api/v1/state?users_limit=2&users_offset=1", headers=auth_headers)
    data = page.get_json()["data"]
    assert [user["email"] for user in data["stored_data"]["autoCheckinUsers"]] == [
        "u1@example.com",
        "u2@example.com",
    ]
    assert data["stored_data"]["autoCheckinUsers"][0]["student_identifier"] == "u1"
    assert data["users_page"] == {"limit": 2, "offset": 1, "total": 5}
    everyone = client.get("/api/v1/state", headers=auth_headers).get_json()["data"]
    assert len(everyone["stored_data"]["autoCheckinUsers"]) == 5
    none = client.get("/api/v1/state?users_limit=0", headers=auth_headers).get_json()["data"]
    assert none["stored_data"]["autoCheckinUsers"] == []
    assert none["users_page"]["total"] == 5


@pytest.mark.parametrize(
    "query", ["users_limit=-1", "users_limit=1.5", "users_offset=-3", "users_limit=ten"]
)
def test_state_refuses_a_bad_page(client, auth_headers, query):
    response = client.get(f"/api/v1/state?{query}", headers=auth_headers)
    assert response.status_code == 400
    body = response.get_json()
    assert body["success"] is False
    assert body["message"] == "API Error"
    assert "users_" in body["error"]


def test_state_has_the_seed_keys_and_no_secret(make_app, auth_headers):
    app = make_app(WEBHOOK_SECRET="webhook-secret-value")
    with app.app_context():
        state.set("last_users_fetch", "2024-03-21T10:30:00Z")
        _on_roster(
            make_student(email="a@example.com", identifier=None, first_name="", last_name="")
        )
    response = app.test_client().get("/api/v1/state", headers=auth_headers)
    assert response.status_code == 200
    body = response.get_json()
    assert body["message"] == "Global State"
    data = body["data"]
    assert data["connected"] is False
    assert data["stored_data"] == {
        "last_users_fetch": "2024-03-21T10:30:00Z",
        "last_all_session_refresh": None,
        "last_individual_session_refresh": None,
        "autoCheckinUsers": [{"email": "a@example.com"}],
    }
    assert data["users_page"] == {"limit": None, "offset": 0, "total": 1}
    assert "next_cycle_run_time" in data
    assert data["counts"] == {"students": 1, "events": 0, "attendances": 0}
    assert set(data["jobs"]) == {
        "fetch_users",
        "refresh_sessions",
        "connection_check",
        "prune",
        "generate_series",
        "detect_findings",
        "evaluate_alerts",
    }
    assert data["jobs"]["fetch_users"] == {
        "last_run": None,
        "running": None,
        "last_completed": None,
        "last_success": None,
        "last_skipped": None,
        "consecutive_failures": 0,
        "next_run_time": None,
    }
    assert data["leader"] is None
    text = response.get_data(as_text=True)
    assert API_KEY not in text
    assert "webhook-secret-value" not in text


def _statements(app, call):
    """How many SQL statements `call()` runs (a fact, not a timing)."""
    seen = []
    with app.app_context():
        engine = db.engine

    def count(*_args):
        seen.append(1)

    event.listen(engine, "before_cursor_execute", count)
    try:
        answer = call()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return answer, len(seen)


def test_state_answers_304_for_its_etag_without_building_the_report(app, auth_headers):
    with app.app_context():
        _on_roster(*(make_student(email=f"u{n}@example.com") for n in range(50)))
    client = app.test_client()
    full, built = _statements(app, lambda: client.get("/api/v1/state", headers=auth_headers))
    etag = full.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")  # strong
    again, checked = _statements(
        app, lambda: client.get("/api/v1/state", headers={**auth_headers, "If-None-Match": etag})
    )
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag
    assert checked < built  # the version, not the report (nor the roster)
    with app.app_context():
        make_student(email="new@example.com")  # the counts change
    changed = client.get("/api/v1/state", headers={**auth_headers, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    other_page = client.get(
        "/api/v1/state?users_limit=5", headers={**auth_headers, "If-None-Match": etag}
    )
    assert other_page.status_code == 200  # another view, another tag


def test_state_changes_its_etag_when_a_roster_name_or_a_job_changes(app, auth_headers):
    with app.app_context():
        student = make_student(email="ann@example.com", first_name="Ann")
        _on_roster(student)
    client = app.test_client()
    first = client.get("/api/v1/state", headers=auth_headers).headers["ETag"]
    with app.app_context():
        service.update_student(ref="ann@example.com", changes={"first_name": "Anna"})
    renamed = client.get("/api/v1/state", headers={**auth_headers, "If-None-Match": first})
    assert renamed.status_code == 200
    assert renamed.get_json()["data"]["stored_data"]["autoCheckinUsers"][0]["first_name"] == "Anna"
    with app.app_context():
        jobs.trigger(app, "prune")
    ran = client.get(
        "/api/v1/state", headers={**auth_headers, "If-None-Match": renamed.headers["ETag"]}
    )
    assert ran.status_code == 200
    assert ran.get_json()["data"]["jobs"]["prune"]["last_run"]["status"] == "ok"


def test_state_is_compressed_when_the_client_accepts_it(app, auth_headers):
    with app.app_context():
        _on_roster(*(make_student(email=f"u{n}@example.com") for n in range(200)))
    client = app.test_client()
    plain = client.get("/api/v1/state", headers=auth_headers)
    packed = client.get("/api/v1/state", headers={**auth_headers, "Accept-Encoding": "gzip"})
    assert plain.headers.get("Content-Encoding") is None
    assert packed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed.headers["Vary"]
    assert len(packed.data) < len(plain.data) / 4
    assert json.loads(gzip.decompress(packed.data)) == plain.get_json()


def test_a_compressed_answers_etag_still_answers_304_to_a_plain_poll(app, auth_headers):
    client = app.test_client()
    packed = client.get("/api/v1/state", headers={**auth_headers, "Accept-Encoding": "gzip"})
    assert packed.headers["ETag"].endswith(':gzip"')
    plain = client.get(
        "/api/v1/state", headers={**auth_headers, "If-None-Match": packed.headers["ETag"]}
    )
    assert plain.status_code == 304
