"""The check-in hot path's budget, counted, not timed: the SQL statements and the
transactions one webhook check-in (and one batch) costs. A change that adds one fails here;
if it is worth its cost, raise the number in the same commit and say why (BENCHMARKS.md)."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import event

from autocheckin.extensions import db
from tests.helpers import LEGACY, ONETAP, make_event, make_student, post

BATCH = "/api/webhook/attendance/batch/"


def _costs(app, send) -> tuple[Counter, object]:
    """Statements by kind and transactions begun while `send()` runs, across the engine."""
    with app.app_context():
        engine = db.engine
    seen: Counter = Counter()

    def statement(_conn, _cursor, sql, *_args):
        seen[sql.split(None, 1)[0].upper()] += 1

    def begun(_conn):
        seen["transactions"] += 1

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "begin", begun)
    try:
        answer = send()
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "begin", begun)
    return seen, answer


def _budget(app) -> dict[str, int]:
    """One transaction: the student and the event looked up, the check-in, its first history
    entry and the request's record inserted (SQLite's BEGIN IMMEDIATE is a statement of
    ours; PostgreSQL's driver begins by itself)."""
    budget = {"transactions": 1, "SELECT": 2, "INSERT": 3}
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            budget["BEGIN"] = 1
    return budget


@pytest.fixture
def roster(app):
    with app.app_context():
        for n in range(100):
            make_student(identifier=f"s{n}")
        make_event(name="Lab")
        make_event(name="Hall")
    return app


def _warm(client) -> None:
    """The first request builds caches (statements, the subscribed types): not the budget."""
    post(client, LEGACY, {"student_identifier": "s99", "event_identifier": "Hall"})


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (LEGACY, {"student_identifier": "s1", "event_identifier": "Lab"}),
        (
            ONETAP,
            {
                "action": "record_attendance",
                "data": {"student_identifier": "s1", "event_identifier": "Lab"},
            },
        ),
    ],
)
def test_one_webhook_check_in_costs_a_fixed_handful(roster, path, body):
    client = roster.test_client()
    _warm(client)
    costs, answer = _costs(roster, lambda: post(client, path, body))
    assert answer.status_code == 201
    assert dict(costs) == _budget(roster)


def test_a_batch_costs_the_same_whatever_its_size(roster):
    client = roster.test_client()
    _warm(client)
    items = [{"student_identifier": f"s{n}", "event_identifier": "Lab"} for n in range(90)]
    costs, answer = _costs(roster, lambda: post(client, BATCH, {"items": items}))
    assert answer.status_code == 200
    assert answer.get_json()["totals"]["recorded"] == 90
    assert dict(costs) == _budget(roster)
