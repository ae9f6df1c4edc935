"""Typed settings helpers: good values parse, bad ones fail at start-up naming the variable."""

from __future__ import annotations

import re

import pytest

from autocheckin.config import (
    ConfigError,
    database_uri,
    env_bool,
    env_int,
    env_seconds,
    load_config,
)


def test_env_bool():
    assert env_bool({"X": "true"}, "X", False) is True
    assert env_bool({"X": "0"}, "X", True) is False
    assert env_bool({}, "X", True) is True
    with pytest.raises(ConfigError, match="X must be true or false"):
        env_bool({"X": "maybe"}, "X", False)


def test_env_int():
    assert env_int({"N": " 12 "}, "N", 1) == 12
    with pytest.raises(ConfigError, match="N must be a whole number"):
        env_int({"N": "1.5"}, "N", 1)
    with pytest.raises(ConfigError, match="at least 1"):
        env_int({"N": "0"}, "N", 5, minimum=1)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("500ms", 0.5), ("15m", 900), ("1h", 3600), ("30d", 2592000), ("2.5s", 2.5)],
)
def test_env_seconds(text, seconds):
    assert env_seconds({"D": text}, "D", 1) == seconds


def test_env_seconds_rejects_garbage():
    with pytest.raises(ConfigError, match="D must be a duration"):
        env_seconds({"D": "soon"}, "D", 1)


def test_database_uri_forms():
    assert database_uri({}, "/srv/instance") == "sqlite:////srv/instance/autocheckin.db"
    assert (
        database_uri({"DATABASE_URL": "postgres://u:p@h:5432/d"}, "")
        == "postgresql+psycopg://u:p@h:5432/d"
    )
    assert database_uri({"DATABASE_URL": "postgresql://u@h/d"}, "") == "postgresql+psycopg://u@h/d"
    assert database_uri({"DATABASE_URL": "sqlite:///x.db"}, "") == "sqlite:///x.db"


def test_defaults_and_example_file_agree(tmp_path):
    """Every setting load_config reads is documented in .env.example."""
    from pathlib import Path

    example = (Path(__file__).parent.parent / ".env.example").read_text()
    config = load_config({}, instance_path=str(tmp_path))
    assert config["PORT"] == 5000
    assert config["LATE_AFTER"] == 600
    assert config["CHECKIN_MAX_BACKDATE"] is None
    source = (Path(__file__).parent.parent / "autocheckin" / "config.py").read_text()
    import re

    names = set(re.findall(r'environ, "([A-Z_]+)"', source))
    missing = sorted(name for name in names if name not in example)
    assert not missing, f"not in .env.example: {missing}"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("REFRESH_INTERVAL", "0", "REFRESH_INTERVAL must be at least 1 seconds"),
        ("SCHEDULER_LEASE_SECONDS", "0", "SCHEDULER_LEASE_SECONDS must be at least 3 seconds"),
        ("CHECKOUT_READ_TIMEOUT", "0", "CHECKOUT_READ_TIMEOUT must be at least 0.1 seconds"),
        ("PORT", "70000", "PORT must be at most 65535"),
        ("CHECKOUT_API_URL", "checkout.example/api", "CHECKOUT_API_URL must be an http(s) URL"),
        ("DATABASE_URL", "nonsense", "DATABASE_URL must be a postgres://"),
        ("LOG_LEVEL", "verbose", "LOG_LEVEL must be one of"),
    ],
)
def test_nonsense_is_refused_naming_the_variable(tmp_path, name, value, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config({name: value}, instance_path=str(tmp_path))


def test_a_config_error_is_one_line_and_exit_2(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    completed = subprocess.run(
        [sys.executable, "-c", "import main"],
        env={
            "PATH": "/usr/bin:/bin",
            "REFRESH_INTERVAL": "0",
            "SCHEDULER_ENABLED": "false",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        },
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [
        "autocheckin: configuration error: REFRESH_INTERVAL must be at least 1 seconds, got '0'"
    ]


def test_gunicorn_reads_the_env_file(tmp_path):
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    shutil.copy(root / "gunicorn.conf.py", tmp_path / "gunicorn.conf.py")
    (tmp_path / ".env").write_text("PORT=5078\n")
    completed = subprocess.run(
        [sys.executable, "-c", "import runpy; print(runpy.run_path('gunicorn.conf.py')['bind'])"],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    assert completed.stdout.strip() == "[::]:5078"


@pytest.mark.parametrize(
    ("key", "warnings"),
    [
        ("change-me", ["CHECKOUT_API_KEY is the development placeholder change-me"]),
        ("short", ["CHECKOUT_API_KEY is shorter than 16 characters"]),
        ("a-long-enough-random-key", []),
    ],
)
def test_weak_keys_are_reported(make_app, key, warnings):
    client = make_app(CHECKOUT_API_KEY=key).test_client()
    status = client.get("/api/v1/status", headers={"x-checkout-key": key}).get_json()
    assert status["data"]["warnings"] == warnings


@pytest.mark.parametrize(
    ("environ", "graceful"),
    [
        ({}, 20),
        ({"RAILWAY_DEPLOYMENT_DRAINING_SECONDS": "30"}, 28),
        ({"RAILWAY_DEPLOYMENT_DRAINING_SECONDS": "30", "GUNICORN_GRACEFUL_TIMEOUT": "9"}, 9),
    ],
)
def test_graceful_shutdown_fits_railways_draining_time(tmp_path, environ, graceful):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import runpy; print(runpy.run_path('gunicorn.conf.py')['graceful_timeout'])",
        ],
        env={"PATH": "/usr/bin:/bin", **environ},
        capture_output=True,
        text=True,
        cwd=root,
        check=True,
    )
    assert int(completed.stdout) == graceful


def test_log_format_is_json_on_railway(tmp_path):
    assert load_config({}, instance_path=str(tmp_path))["LOG_FORMAT"] == "text"
    railway = {"RAILWAY_ENVIRONMENT": "production"}
    assert load_config(railway, instance_path=str(tmp_path))["LOG_FORMAT"] == "json"
    chosen = {**railway, "LOG_FORMAT": "text"}
    assert load_config(chosen, instance_path=str(tmp_path))["LOG_FORMAT"] == "text"


def test_json_log_lines_carry_the_fields():
    import json
    import logging

    from autocheckin.logs import json_formatter

    record = logging.LogRecord(
        "autocheckin.webhooks", logging.WARNING, __file__, 1, "source=%r", ("x\ny",), None
    )
    record.request_id = "abc"
    line = json_formatter().format(record)
    assert "\n" not in line
    fields = json.loads(line)
    assert (fields["level"], fields["logger"], fields["msg"], fields["request_id"]) == (
        "WARNING",
        "autocheckin.webhooks",
        "source='x\\ny'",
        "abc",
    )
