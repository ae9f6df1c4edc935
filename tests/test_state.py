"""The database-backed state store."""

from __future__ import annotations

from autocheckin import state


def test_round_trip_of_json_values(app):
    with app.app_context():
        assert state.get("missing") is None
        assert state.get("missing", 7) == 7
        state.set("users", [{"email": "ü@example.com", "n": 1}])
        state.set("flag", True)
        assert state.get("users") == [{"email": "ü@example.com", "n": 1}]
        state.set("users", [])
        assert state.get("users", "default") == []
        assert state.get_many(["users", "flag", "absent"]) == {"users": [], "flag": True}


def test_set_many_writes_all_keys(app):
    with app.app_context():
        state.set_many({"a": 1, "b": {"nested": [1, 2]}, "c": None})
        assert state.get_many(["a", "b", "c"]) == {"a": 1, "b": {"nested": [1, 2]}, "c": None}


def test_two_app_instances_on_one_database_share_state(make_app):
    first, second = make_app(), make_app()
    with first.app_context():
        state.set("last_users_fetch", "2024-03-21T10:30:00Z")
        state.set_connection(connected=True)
    with second.app_context():
        assert state.get("last_users_fetch") == "2024-03-21T10:30:00Z"
        assert state.connection()["connected"] is True
        state.set_connection(connected=False, reason="upstream timed out")
    with first.app_context():
        assert state.connection() == {
            "connected": False,
            "reason": "upstream timed out",
            "checked_at": state.connection()["checked_at"],
        }


def test_a_write_inside_another_write_joins_it(app):
    from autocheckin.database import write_transaction

    with app.app_context():
        try:
            with write_transaction():
                state.set("joined", 1)
                raise RuntimeError("roll the whole unit back")
        except RuntimeError:
            pass
        assert state.get("joined") is None


def test_state_counts_are_reused_for_their_max_age(make_app, auth_headers):
    from tests.helpers import make_student

    app = make_app(STATE_COUNTS_MAX_AGE="1h")
    client = app.test_client()

    def students() -> int:
        answer = client.get("/api/v1/state", headers=auth_headers).get_json()
        return answer["data"]["counts"]["students"]

    assert students() == 0
    with app.app_context():
        make_student()
    assert students() == 0  # the count from the first poll, still within its hour
    fresh = make_app(STATE_COUNTS_MAX_AGE="0")  # same database, counted on every poll
    answer = fresh.test_client().get("/api/v1/state", headers=auth_headers).get_json()
    assert answer["data"]["counts"]["students"] == 1
