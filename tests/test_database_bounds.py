"""What the database cannot hold or answer: a number beyond its INTEGER ids is no id; a
silent server makes /health answer 503 within its timeout."""

from __future__ import annotations

import socket

import requests

from autocheckin.config import load_config
from autocheckin.database import engine_options
from tests.conftest import API_KEY
from tests.helpers import make_student
from tests.servers import serving

KEY = {"x-checkout-key": API_KEY}


def test_hr_summary_of_a_number_beyond_any_id_is_not_found(app, client):
    """PostgreSQL refused `WHERE id = 9999999999` (integer out of range) with a 500; a
    number no INTEGER id can hold is looked up as an identifier or email only."""
    beyond = client.get("/api/integrations/hr/attendance-summary/9999999999", headers=KEY)
    assert beyond.status_code == 404, beyond.get_json()
    assert beyond.get_json()["code"] == "student_not_found"
    with app.app_context():
        make_student(identifier="99999999999", email="long@x.io")
    found = client.get("/api/integrations/hr/attendance-summary/99999999999", headers=KEY)
    assert found.status_code == 200, found.get_json()
    assert found.get_json()["student_email"] == "long@x.io"


def test_postgres_connections_carry_connect_statement_and_tcp_timeouts(tmp_path):
    config = load_config(
        {
            "DATABASE_URL": "postgresql://u@db.internal/d",
            "DATABASE_STATEMENT_TIMEOUT": "2m",
            "DATABASE_TCP_KEEPALIVE": "30",
        },
        instance_path=str(tmp_path),
    )
    options = engine_options(config)
    assert options["pool_timeout"] == 5
    assert options["connect_args"] == {
        "connect_timeout": 5,
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "tcp_user_timeout": 20_000,
        "options": "-c statement_timeout=120000 -c lock_timeout=5000",
    }
    sqlite = load_config({}, instance_path=str(tmp_path))
    assert "connect_args" not in engine_options(sqlite)


def test_health_answers_503_within_its_timeout_when_the_server_never_speaks(make_app):
    """A listening socket that never answers: the kernel accepts, psycopg waits. /health
    answers 503 after DATABASE_HEALTH_TIMEOUT, not after the connect timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        app = make_app(
            DATABASE_URL=f"postgresql://postgres@127.0.0.1:{port}/none",
            DATABASE_HEALTH_TIMEOUT="300ms",
            DATABASE_CONNECT_TIMEOUT="30",
        )
        with serving(app) as base:
            # The bound is the client's own timeout: the connect timeout is 30 s.
            response = requests.get(f"{base}/health", timeout=5)
            index = requests.get(f"{base}/", timeout=5)
    assert response.status_code == 503
    assert response.json()["error"] == ("TimeoutError: the database did not answer within 0.3s")
    assert index.status_code == 200
