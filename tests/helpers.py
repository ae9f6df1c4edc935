"""What tests share: factory functions for test data (through the core, as real clients go),
and the requests the API tests send. Test modules import from here, never from each other."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from itertools import count
from typing import Any

from sqlalchemy import create_engine, func, select

from autocheckin.attendance import service
from autocheckin.attendance.models import Event, Student
from autocheckin.config import database_uri
from autocheckin.extensions import db
from autocheckin.times import utcnow

PASSWORD = "correct horse battery"
ONETAP = "/api/webhook/onetap/"
UNIFIED = "/api/webhook/unified/"
LEGACY = "/api/webhook/attendance/"

_sequence = count(1)


def make_student(**overrides: Any) -> Student:
    number = next(_sequence)
    values: dict[str, Any] = {
        "identifier": f"a{number:08d}",
        "email": f"student{number}@example.com",
        "first_name": "Test",
        "last_name": f"Student{number}",
        "is_admin": False,
        "source": "test",
    }
    values.update(overrides)
    return service.create_student(**values)


def make_event(**overrides: Any) -> Event:
    number = next(_sequence)
    values: dict[str, Any] = {
        "name": f"Event {number}",
        "start_time": utcnow() - timedelta(minutes=1),
        "end_time": None,
        "source": "test",
    }
    values.update(overrides)
    return service.create_event(**values)


def at(minutes: float = 0, *, base: datetime | None = None) -> datetime:
    return (base or utcnow()) + timedelta(minutes=minutes)


# --- requests -----------------------------------------------------------------------------------


def register(client, email="ann@example.com", name="Ann Lee", password=PASSWORD):
    return client.post("/auth/register", json={"email": email, "name": name, "password": password})


def login(client, email="ann@example.com", password=PASSWORD):
    return client.post("/auth/login", json={"email": email, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post(client, path, payload, **headers):
    """A webhook request with `payload` as its JSON body (bytes and str are sent as they are)."""
    body = payload if isinstance(payload, bytes | str) else json.dumps(payload)
    return client.post(path, data=body, headers={"Content-Type": "application/json", **headers})


# --- counting what is stored --------------------------------------------------------------------


def rows(app, model) -> int:
    with app.app_context():
        return db.session.query(model).count()


def count_rows(database_url: str, model) -> int:
    """Rows of `model` in the database at `database_url`, from outside any app."""
    engine = create_engine(database_uri({"DATABASE_URL": database_url}, ""))
    try:
        with engine.connect() as connection:
            return connection.scalar(select(func.count()).select_from(model))
    finally:
        engine.dispose()
