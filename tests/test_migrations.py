"""Alembic has one head, and `flask db upgrade` on an empty database gives the models' schema."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text

from autocheckin import MIGRATIONS_DIR, create_app
from autocheckin.config import database_uri
from autocheckin.extensions import db
from tests.conftest import TEST_DATABASE_URL, base_config


def test_alembic_has_a_single_head():
    config = Config()
    config.set_main_option("script_location", MIGRATIONS_DIR)
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1


@pytest.fixture
def empty_database_url(tmp_path) -> Iterator[str]:
    """A database with no tables at all: a new SQLite file, or a new PostgreSQL database."""
    if not TEST_DATABASE_URL:
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server = create_engine(
        database_uri({"DATABASE_URL": TEST_DATABASE_URL}, ""), isolation_level="AUTOCOMMIT"
    )
    name = f"autocheckin_migrate_{uuid.uuid4().hex[:8]}"
    with server.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.url.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with server.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


def test_upgrade_on_an_empty_database_matches_the_models(empty_database_url):
    app = create_app(base_config(empty_database_url))
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, db.metadata)
            tables = set(inspect(connection).get_table_names())
        db.engine.dispose()
    assert differences == []
    assert {"students", "events", "attendances", "state_entries"} <= tables


def test_0005_carries_web_users_and_idempotency_keys_over(empty_database_url):
    """Every web user gets a token key and the plain role (an `is_admin` that unsigned
    webhooks could set proves nothing); roster rows get no key; recorded idempotency keys
    keep answering on their endpoint."""
    app = create_app(base_config(empty_database_url))
    with app.app_context():
        upgrade(revision="0004_web_and_discord_users")
        with db.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO students (identifier_key, email, email_key, first_name, "
                    "last_name, is_admin, password_hash, is_active, created_at, updated_at) VALUES "
                    "(NULL, 'adm@x.io', 'adm@x.io', 'A', 'D', :yes, 'h', :yes, :now, :now), "
                    "(NULL, 'usr@x.io', 'usr@x.io', 'U', 'S', :no, 'h', :yes, :now, :now), "
                    "('r1', NULL, NULL, 'R', 'O', :yes, NULL, :yes, :now, :now)"
                ),
                {"yes": True, "no": False, "now": "2026-11-01 10:00:00"},
            )
            connection.execute(
                text(
                    "INSERT INTO webhook_requests (endpoint, received_at, headers, body, "
                    "body_sha256, idempotency_key, outcome, status_code, attempts, is_replayable) "
                    "VALUES ('onetap', :now, '{}', :body, 'f', 'k-1', 'succeeded', 201, 1, :yes)"
                ),
                {"now": "2026-11-01 10:00:00", "body": b"{}", "yes": True},
            )
        upgrade(revision="0005_security")
        with db.engine.connect() as connection:
            rows = connection.execute(
                text("SELECT email, web_role, token_key FROM students ORDER BY id")
            ).all()
            scope = connection.scalar(text("SELECT idempotency_scope FROM webhook_requests"))
        db.engine.dispose()
    from autocheckin.webhooks.request_log import idempotency_scope

    assert [(email, role) for email, role, _ in rows] == [
        ("adm@x.io", "user"),
        ("usr@x.io", "user"),
        (None, "user"),
    ]
    assert rows[0][2] and rows[1][2] and rows[0][2] != rows[1][2]
    assert rows[2][2] is None
    assert scope == idempotency_scope("onetap", "k-1", signer=None)


@pytest.mark.slow
def test_three_replicas_upgrading_at_once_all_succeed(empty_database_url):
    """Railway starts every replica's `flask db upgrade` together on a fresh database; on
    SQLite, 1–2 of 3 failed with "database is locked" before migrations took the writer
    lock (PostgreSQL: an advisory lock)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    flask = str(Path(sys.executable).parent / "flask")
    env = {**os.environ, "DATABASE_URL": empty_database_url, "SCHEDULER_ENABLED": "false"}
    env.pop("TEST_DATABASE_URL", None)
    upgrades = [
        subprocess.Popen(
            [flask, "--app", "autocheckin", "db", "upgrade"],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [process.communicate(timeout=120)[0] for process in upgrades]
    assert [process.returncode for process in upgrades] == [0, 0, 0], outputs
    engine = create_engine(database_uri({"DATABASE_URL": empty_database_url}, ""))
    with engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    engine.dispose()
    assert len(versions) == 1


def test_0007_carries_sessions_enrolments_and_the_roster_over(empty_database_url):
    """The JSON copies become rows: refresh bookkeeping, the enrolments only the JSON held,
    and the roster in upstream's order; a downgrade gives the JSON back."""
    from flask_migrate import downgrade

    app = create_app(base_config(empty_database_url))
    now = "2026-11-01 10:00:00"
    with app.app_context():
        upgrade(revision="0006_job_health")
        with db.engine.begin() as connection:
            run = connection.execute
            run(
                text(
                    "INSERT INTO students (id, email, email_key, first_name, last_name, "
                    "identifier, identifier_key, is_admin, is_active, web_role, created_at, "
                    "updated_at) VALUES "
                    "(1, 'ann@x.io', 'ann@x.io', 'Ann', '', 'a1', 'a1', :no, :yes, 'user', "
                    ":now, :now), "
                    "(2, 'Bob@x.io', 'bob@x.io', '', '', NULL, NULL, :no, :yes, 'user', :now, :now)"
                ),
                {"yes": True, "no": False, "now": now},
            )
            run(
                text(
                    "INSERT INTO events (id, name, start_time, end_time, event_type, location, "
                    "points, is_active, source, description, external_id, created_at, "
                    "updated_at) VALUES "
                    "(10, 'Lab', :now, NULL, 'General', '', 0, :yes, 'checkout', '', 's1', "
                    ":now, :now), "
                    "(11, 'Talk', :now, NULL, 'General', '', 0, :yes, 'checkout', '', 's2', "
                    ":now, :now)"
                ),
                {"yes": True, "now": now},
            )
            run(
                text(
                    "INSERT INTO enrolments (student_id, event_id, source, created_at) "
                    "VALUES (1, 10, 'checkout', :now)"
                ),
                {"now": now},
            )
            sessions = json.dumps([{"event_id": 10}, {"event_id": 11}, {"event_id": 99}])
            run(
                text(
                    "INSERT INTO checkin_sessions (student_id, refreshed_at, ok, error, "
                    "sessions, reported_state) VALUES "
                    "(1, :now, :yes, NULL, :sessions, 'refreshed|0|0|2|0'), "
                    "(2, :now, :no, 'GET /sessions answered 503', '[]', NULL)"
                ),
                {"now": now, "yes": True, "no": False, "sessions": sessions},
            )
            listed = json.dumps(
                [{"email": "bob@x.io"}, {"email": "nobody@x.io"}, {"email": "ann@x.io"}]
            )
            run(
                text(
                    "INSERT INTO state_entries (key, value, updated_at) "
                    "VALUES ('autoCheckinUsers', :listed, :now)"
                ),
                {"listed": listed, "now": now},
            )
        upgrade()
        with db.engine.connect() as connection:
            refreshes = connection.execute(
                text("SELECT student_id, ok, error, reported_state FROM user_refreshes ORDER BY 1")
            ).all()
            enrolments = connection.execute(
                text("SELECT student_id, event_id FROM enrolments ORDER BY 1, 2")
            ).all()
            roster = (
                connection.execute(text("SELECT student_id FROM checkout_roster ORDER BY position"))
                .scalars()
                .all()
            )
            kept = connection.execute(
                text("SELECT count(*) FROM state_entries WHERE key = 'autoCheckinUsers'")
            ).scalar()
        assert [tuple(row) for row in refreshes] == [
            (1, True, None, "refreshed|0|0|2|0"),
            (2, False, "GET /sessions answered 503", None),
        ]
        assert [tuple(row) for row in enrolments] == [(1, 10), (1, 11)]  # 99 is no event
        assert roster == [2, 1]  # upstream's order; the unknown email is no student
        assert kept == 0
        downgrade(revision="0006_job_health")
        with db.engine.connect() as connection:
            back = connection.execute(
                text("SELECT value FROM state_entries WHERE key = 'autoCheckinUsers'")
            ).scalar()
            rows = connection.execute(text("SELECT count(*) FROM checkin_sessions")).scalar()
        db.engine.dispose()
    back = json.loads(back) if isinstance(back, str) else back
    assert back == [
        {"email": "Bob@x.io"},
        {"email": "ann@x.io", "student_identifier": "a1", "first_name": "Ann"},
    ]
    assert rows == 2


def test_0009_adds_the_outbound_tables_and_takes_them_away_again(empty_database_url):
    from flask_migrate import downgrade

    outbound = {
        "outbound_subscriptions",
        "outbound_outbox",
        "outbound_deliveries",
        "outbound_attempts",
    }
    app = create_app(base_config(empty_database_url))
    with app.app_context():
        upgrade(revision="0009_outbound_webhooks")
        with db.engine.connect() as connection:
            assert outbound <= set(inspect(connection).get_table_names())
        downgrade(revision="0008_calendar_feeds")
        with db.engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
        db.engine.dispose()
    assert not outbound & tables
    assert {"students", "webhook_requests"} <= tables


def test_0011_moves_logins_to_accounts_and_keeps_every_persons_check_ins(empty_database_url):
    """From the previous head with data: logins become accounts under their ids (tokens keep
    working), login-only rows stop being people, an unverified login email leaves its
    person, roster people and every check-in stay; and the downgrade folds them back."""
    app = create_app(base_config(empty_database_url))
    with app.app_context():
        upgrade(revision="0010_api_keys")
        with db.engine.begin() as connection:
            insert = text(
                "INSERT INTO students (id, identifier, identifier_key, email, email_key, "
                "first_name, last_name, is_admin, source, password_hash, web_role, token_key, "
                "discord_user_id, discord_username, is_active, created_at, updated_at) VALUES "
                "(:id, :ident, :ident, :email, :email, :first, 'X', :no, :source, :hash, :role, "
                ":key, :discord, :dname, :yes, :now, :now)"
            )
            base = {"no": False, "yes": True, "now": "2026-11-01 10:00:00", "ident": None}
            login = {"role": "user", "key": None, "discord": None, "dname": None}
            people = [
                # a roster student from a webhook, no login
                {**login, "id": 1, "ident": "a1", "email": "roster@x.io", "first": "Rosa"}
                | {"source": "onetap_webhook", "hash": None},
                # a web admin who only ever signed in: an account, no longer a person
                {**login, "id": 2, "email": "admin@x.io", "first": "Ada", "source": "web"}
                | {"hash": "h2", "role": "admin", "key": "k2"},
                # a web user who checked in through the web: stays a person, loses the email
                {**login, "id": 3, "email": "web@x.io", "first": "Wes", "source": "web"}
                | {"hash": "h3", "key": "k3"},
                # a Discord user who checked in
                {**login, "id": 4, "email": None, "first": "Dee", "source": "discord"}
                | {"hash": None, "discord": "99", "dname": "dee#1"},
                # a sign-up the roster sync later matched: on the roster, keeps its email
                {**login, "id": 5, "email": "synced@x.io", "first": "Sy", "source": "web"}
                | {"hash": "h5", "key": "k5"},
            ]
            for person in people:
                connection.execute(insert, {**base, **person})
            connection.execute(
                text(
                    "INSERT INTO events (id, name, event_type, points, description, location, "
                    "start_time, is_active, created_by_id, created_at, updated_at) VALUES "
                    "(1, 'E', 'General', 0, '', '', :now, :yes, 2, :now, :now)"
                ),
                base,
            )
            for student_id in (1, 3, 4):
                connection.execute(
                    text(
                        "INSERT INTO attendances (student_id, event_id, checked_in_at, status, "
                        "source, metadata, created_at) VALUES (:s, 1, :now, 'present', 'web', "
                        "'{}', :now)"
                    ),
                    {**base, "s": student_id},
                )
            connection.execute(
                text("INSERT INTO checkout_roster VALUES (1, 0, :now), (5, 1, :now)"), base
            )
        upgrade()
        with db.engine.connect() as connection:
            accounts = connection.execute(
                text(
                    "SELECT id, email, name, role, token_key, discord_user_id, person_id "
                    "FROM accounts ORDER BY id"
                )
            ).all()
            people = connection.execute(
                text("SELECT id, email, first_name FROM students ORDER BY id")
            ).all()
            check_ins = connection.execute(
                text("SELECT student_id FROM attendances ORDER BY student_id")
            ).all()
            creator = connection.scalar(text("SELECT created_by_id FROM events"))
        assert [tuple(a) for a in accounts] == [
            (2, "admin@x.io", "Ada X", "admin", "k2", None, None),
            (3, "web@x.io", "Wes X", "user", "k3", None, 3),
            (4, None, "Dee X", "user", None, "99", 4),
            (5, "synced@x.io", "Sy X", "user", "k5", None, 5),
        ]
        assert [tuple(p) for p in people] == [
            (1, "roster@x.io", "Rosa"),
            (3, None, "Wes"),
            (4, None, "Dee"),
            (5, "synced@x.io", "Sy"),
        ]
        assert [row.student_id for row in check_ins] == [1, 3, 4]
        assert creator == 2

        downgrade(revision="0010_api_keys")
        with db.engine.connect() as connection:
            folded = connection.execute(
                text(
                    "SELECT id, email, web_role, token_key, discord_user_id FROM students "
                    "ORDER BY id"
                )
            ).all()
            check_ins_after = connection.scalar(text("SELECT COUNT(*) FROM attendances"))
            creator_after = connection.scalar(text("SELECT created_by_id FROM events"))
        db.engine.dispose()
    assert [tuple(row) for row in folded] == [
        (1, "roster@x.io", "user", None, None),
        (2, "admin@x.io", "admin", "k2", None),
        (3, "web@x.io", "user", "k3", None),
        (4, None, "user", None, "99"),
        (5, "synced@x.io", "user", "k5", None),
    ]
    assert check_ins_after == 3
    assert creator_after == 2


def test_0015_gives_every_stored_check_in_its_first_history_entry(empty_database_url):
    """Check-ins stored before the history existed each get a `marked` entry by
    `migration`, hashed as the service hashes one (so `audit verify` passes); people and
    events no longer cascade their attendances away; the downgrade takes it all back."""
    from autocheckin.attendance import history

    app = create_app(base_config(empty_database_url))
    with app.app_context():
        upgrade(revision="0014_outbound_created_by")
        with db.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO students (id, identifier, identifier_key, first_name, last_name,"
                    " is_admin, created_at, updated_at) VALUES (1, 'a1', 'a1', 'Ann', 'Lee',"
                    " :no, :now, :now), (2, 'b2', 'b2', 'Bob', 'Ray', :no, :now, :now)"
                ),
                {"no": False, "now": "2026-11-01 10:00:00"},
            )
            connection.execute(
                text(
                    "INSERT INTO events (id, name, event_type, points, description, location,"
                    " start_time, is_active, created_at, updated_at) VALUES (1, 'Lab', 'General',"
                    " 0, '', '', :start, :yes, :start, :start)"
                ),
                {"yes": True, "start": "2026-11-02 09:00:00"},
            )
            connection.execute(
                text(
                    "INSERT INTO attendances (student_id, event_id, checked_in_at, status, source,"
                    " metadata, created_at) VALUES (1, 1, '2026-11-02 09:01:02.345678', 'present',"
                    " 'onetap', '{}', :now),"
                    " (2, 1, '2026-11-02 09:30:00', 'late', NULL, '{}', :now)"
                ),
                {"now": "2026-11-02 09:31:00"},
            )
        upgrade()
        with db.engine.connect() as connection:
            entries = connection.execute(
                text("SELECT actor, action, seq FROM attendance_history ORDER BY attendance_id")
            ).all()
            assert [tuple(row) for row in entries] == [("migration", "marked", 1)] * 2
            result = history.verify(connection)
            assert result.ok and (result.entries, result.attendances) == (2, 2)
            versions = connection.execute(text("SELECT version FROM attendances")).scalars().all()
            assert versions == [1, 1]
        with db.engine.begin() as connection, pytest.raises(Exception, match="(?i)foreign key"):
            connection.execute(text("DELETE FROM students WHERE id = 1"))
        downgrade(revision="0014_outbound_created_by")
        with db.engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
            kept = connection.execute(text("SELECT count(*) FROM attendances")).scalar()
        db.engine.dispose()
    assert "attendance_history" not in tables and "excuses" not in tables
    assert kept == 2
