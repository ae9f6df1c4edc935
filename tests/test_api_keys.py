"""Integration API keys: made and revoked with `flask keys`, stored only as hashes,
accepted as `x-checkout-key` beside CHECKOUT_API_KEY, their last use noted sparingly."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from autocheckin.auth import api_keys
from autocheckin.auth.api_keys import ApiKey
from autocheckin.extensions import db
from autocheckin.times import utcnow


def _create(app, name: str) -> str:
    result = app.test_cli_runner().invoke(args=["keys", "create", name])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.startswith(f"{name}: "))
    return line.split(": ", 1)[1]


def test_a_created_key_opens_every_key_door_and_is_stored_only_as_a_hash(app):
    key = _create(app, "moodle-sync")
    assert key.startswith("ack_") and len(key) > 40
    with app.app_context():
        record = db.session.query(ApiKey).one()
        assert record.key_sha256 == hashlib.sha256(key.encode()).hexdigest()
        stored = " ".join(str(value) for value in vars(record).values())
        assert key not in stored  # the key itself is nowhere in the database
    client = app.test_client()
    headers = {"x-checkout-key": key}
    assert client.get("/api/v1/state", headers=headers).status_code == 200
    assert client.get("/api/v1/auth/test", headers=headers).get_json()["data"] == {
        "authenticated": True
    }
    assert client.get("/api/integrations/calendar/feeds", headers=headers).status_code == 200
    assert client.get("/api/webhooks", headers=headers).status_code == 200
    assert client.get("/metrics", headers=headers).status_code == 200
    assert key not in client.get("/api/v1/state", headers=headers).get_data(as_text=True)


def test_a_revoked_key_stops_at_once_and_the_listing_shows_no_key(app):
    key = _create(app, "old-integration")
    runner = app.test_cli_runner()
    listing = runner.invoke(args=["keys", "list"]).output
    assert "old-integration" in listing and "live" in listing and key not in listing
    revoked = runner.invoke(args=["keys", "revoke", "old-integration"])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    answer = app.test_client().get("/api/v1/state", headers={"x-checkout-key": key})
    assert answer.status_code == 401
    assert answer.get_json()["error"] == "Invalid API key"
    assert runner.invoke(args=["keys", "revoke", "nobody"]).exit_code != 0
    again = runner.invoke(args=["keys", "create", "old-integration"])
    assert again.exit_code != 0 and "exists" in again.output


def test_last_use_is_written_at_most_once_a_minute(app):
    key = _create(app, "poller")
    client = app.test_client()
    client.get("/api/v1/status", headers={"x-checkout-key": key})
    with app.app_context():
        first = db.session.query(ApiKey).one().last_used_at
    assert first is not None
    client.get("/api/v1/status", headers={"x-checkout-key": key})
    with app.app_context():
        assert db.session.query(ApiKey).one().last_used_at == first  # not again within a minute
        record = db.session.query(ApiKey).one()
        record.last_used_at = utcnow() - timedelta(minutes=2)
        db.session.commit()
    client.get("/api/v1/status", headers={"x-checkout-key": key})
    with app.app_context():
        assert db.session.query(ApiKey).one().last_used_at > first


def test_stored_keys_work_without_checkout_api_key_and_nothing_is_open_without_one(make_app):
    app = make_app(CHECKOUT_API_KEY=None)
    client = app.test_client()
    assert client.get("/api/v1/state", headers={"x-checkout-key": "x"}).status_code == 503
    key = _create(app, "only-key")
    assert client.get("/api/v1/state", headers={"x-checkout-key": key}).status_code == 200
    assert client.get("/api/v1/state").status_code == 401
    assert client.get("/api/v1/state", headers={"x-checkout-key": "ack_nope"}).status_code == 401


def test_only_keys_of_our_shape_are_looked_up(app):
    with app.app_context():
        assert api_keys.find_live("not-ours") is None
        assert api_keys.is_valid(None, "configured") is False
