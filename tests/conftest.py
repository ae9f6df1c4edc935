"""Fixtures: a real SQLite file per test, or PostgreSQL when TEST_DATABASE_URL is set."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from autocheckin import create_app
from autocheckin.config import database_uri
from autocheckin.extensions import db
from tests.helpers import PASSWORD, bearer, login, register

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
API_KEY = "test-checkout-key"
JWT_SECRET = "test-jwt-secret-long-enough-for-hs256-0123456789"


def is_postgres() -> bool:
    return bool(TEST_DATABASE_URL)


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[Engine | None]:
    """One schema for the whole PostgreSQL run; tables are truncated per test."""
    if not TEST_DATABASE_URL:
        yield None
        return
    from autocheckin import models  # noqa: F401

    engine = create_engine(database_uri({"DATABASE_URL": TEST_DATABASE_URL}, ""))
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    db.metadata.drop_all(engine)
    db.metadata.create_all(engine)
    yield engine
    db.metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture
def database_url(tmp_path, postgres_engine: Engine | None) -> str:
    """A database with an empty schema for this test."""
    from autocheckin import models  # noqa: F401

    if postgres_engine is None:
        url = f"sqlite:///{tmp_path / 'autocheckin.db'}"
        engine = create_engine(url)
        db.metadata.create_all(engine)
        engine.dispose()
        return url
    tables = ", ".join(f'"{table.name}"' for table in db.metadata.sorted_tables)
    with postgres_engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return TEST_DATABASE_URL or ""


def base_config(database_url: str, **overrides: Any) -> dict[str, Any]:
    """The settings a test app starts from: env-style keys, nothing read from os.environ.

    Tests run the guides' basic setup (unsigned webhooks, a keyless Discord bot) so their
    sample payloads stay short; `tests/test_security.py` passes None to get the defaults.
    """
    return {
        "DATABASE_URL": database_url,
        "CHECKOUT_API_KEY": API_KEY,
        "JWT_SECRET_KEY": JWT_SECRET,
        "WEBHOOK_REQUIRE_SIGNATURE": "false",
        "DISCORD_ALLOW_KEYLESS": "true",
        "SCHEDULER_ENABLED": "false",
        "STATE_COUNTS_MAX_AGE": "0",
        # Receivers in the tests listen on 127.0.0.1; the SSRF tests turn this off again.
        "OUTBOUND_WEBHOOKS_ALLOW_PRIVATE": "true",
        "TESTING": True,
        **overrides,
    }


@pytest.fixture
def make_app(database_url: str) -> Iterator[Callable[..., Flask]]:
    """Build apps on this test's database; `make_app(CHECKOUT_API_KEY=None)` to override."""
    from tests.spec_check import check_answers

    apps: list[Flask] = []
    mismatches: list[str] = []

    def factory(**overrides: Any) -> Flask:
        app = create_app(base_config(database_url, **overrides))
        check_answers(app, mismatches)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    assert not mismatches, "answers that /openapi.json does not describe:\n" + "\n".join(mismatches)


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


class AuthActions:
    """Sign-ups and log-ins as a web user sends them (flaskr's AuthActions)."""

    def __init__(self, client: Any):
        self._client = client

    def register(
        self, email: str = "ann@example.com", name: str = "Ann Lee", password: str = PASSWORD
    ):
        return register(self._client, email=email, name=name, password=password)

    def login(self, email: str = "ann@example.com", password: str = PASSWORD):
        return login(self._client, email=email, password=password)

    def headers(self, email: str = "ann@example.com", name: str = "Ann Lee") -> dict[str, str]:
        """A bearer header for the account with `email`, registered first if it is new."""
        self.register(email=email, name=name)
        answer = self.login(email=email)
        assert answer.status_code == 200, answer.get_json()
        return bearer(answer.get_json()["access_token"])


@pytest.fixture
def auth(client: Any) -> AuthActions:
    return AuthActions(client)


@pytest.fixture
def auth_headers() -> dict[str, str]:
    return {"x-checkout-key": API_KEY}


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The test app over real HTTP on 127.0.0.1 (a threaded Werkzeug server)."""
    from tests.servers import serving

    with serving(app) as url:
        yield url


@pytest.fixture
def checkout() -> Iterator[Any]:
    """A fake CheckOut API on 127.0.0.1 that accepts our test key."""
    from tests.fake_checkout import FakeCheckOut

    fake = FakeCheckOut(api_key=API_KEY).start()
    yield fake
    fake.stop()


@pytest.fixture
def sync_app(make_app: Callable[..., Flask], checkout: Any) -> Flask:
    """An app pointed at the fake CheckOut, with short timeouts."""
    return make_app(
        CHECKOUT_API_URL=checkout.url,
        CHECKOUT_READ_TIMEOUT="1",
        CHECKOUT_CONNECT_TIMEOUT="1",
        CHECKOUT_RETRIES="1",
        REFRESH_CONCURRENCY="4",
    )


@pytest.fixture
def start_sender() -> Iterator[Callable[..., Any]]:
    """Start outbound senders on any app; every one is stopped at the end of the test."""
    from autocheckin.outbound.sender import Sender  # noqa: PLC0415 - only tests that send

    senders: list[Any] = []

    def start(app: Flask, **kwargs: Any) -> Any:
        sender = Sender(app, **kwargs).start()
        senders.append(sender)
        return sender

    yield start
    for sender in senders:
        sender.stop(timeout=2)
