"""Settings (pydantic-settings): good values parse, bad ones fail at start-up naming the
variable."""

from __future__ import annotations

import re

import pytest

from autocheckin.config import (
    ConfigError,
    Settings,
    database_uri,
    load_config,
)


def _load(tmp_path, **environ):
    return load_config(environ, instance_path=str(tmp_path))


def test_booleans(tmp_path):
    assert _load(tmp_path, DISCORD_ALLOW_KEYLESS="true")["DISCORD_ALLOW_KEYLESS"] is True
    assert _load(tmp_path, SCHEDULER_ENABLED="0")["SCHEDULER_ENABLED"] is False
    assert _load(tmp_path)["SCHEDULER_ENABLED"] is True
    for text, value in [("yes", True), ("ON", True), ("no", False), ("off", False), ("1", True)]:
        assert _load(tmp_path, SCHEDULER_ENABLED=text)["SCHEDULER_ENABLED"] is value
    with pytest.raises(ConfigError, match="SCHEDULER_ENABLED must be true or false"):
        _load(tmp_path, SCHEDULER_ENABLED="maybe")


def test_whole_numbers(tmp_path):
    assert _load(tmp_path, REFRESH_CONCURRENCY=" 12 ")["REFRESH_CONCURRENCY"] == 12
    with pytest.raises(ConfigError, match="REFRESH_CONCURRENCY must be a whole number"):
        _load(tmp_path, REFRESH_CONCURRENCY="1.5")
    with pytest.raises(ConfigError, match="REFRESH_CONCURRENCY must be at least 1"):
        _load(tmp_path, REFRESH_CONCURRENCY="0")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("500ms", 0.5), ("15m", 900), ("1h", 3600), ("30d", 2592000), ("2.5s", 2.5)],
)
def test_durations(tmp_path, text, seconds):
    assert _load(tmp_path, LATE_AFTER=text)["LATE_AFTER"] == seconds


def test_durations_refuse_garbage(tmp_path):
    with pytest.raises(ConfigError, match="LATE_AFTER must be a duration"):
        _load(tmp_path, LATE_AFTER="soon")


def test_an_empty_value_is_unset(tmp_path):
    config = _load(tmp_path, PORT="", LATE_AFTER="", HOST="  ", INTEGRATION_USER_RATE="")
    assert (config["PORT"], config["LATE_AFTER"], config["HOST"]) == (5000, 600, "127.0.0.1")
    assert config["INTEGRATION_USER_RATE"] == "100/hour"


def test_database_uri_forms():
    assert database_uri({}, "/srv/instance") == "sqlite:////srv/instance/autocheckin.db"
    assert (
        database_uri({"DATABASE_URL": "postgres://u:p@h:5432/d"}, "")
        == "postgresql+psycopg://u:p@h:5432/d"
    )
    assert database_uri({"DATABASE_URL": "postgresql://u@h/d"}, "") == "postgresql+psycopg://u@h/d"
    assert database_uri({"DATABASE_URL": "sqlite:///x.db"}, "") == "sqlite:///x.db"


def test_defaults_and_example_file_agree(tmp_path):
    """Every setting the model reads is documented in .env.example."""
    from pathlib import Path

    example = (Path(__file__).parent.parent / ".env.example").read_text()
    config = load_config({}, instance_path=str(tmp_path))
    assert config["PORT"] == 5000
    assert config["LATE_AFTER"] == 600
    assert config["CHECKIN_MAX_BACKDATE"] is None
    names = set(Settings.model_fields)
    assert len(names) > 50
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
        ("JWT_SECRET_KEY", "short", "JWT_SECRET_KEY is 5 bytes; use at least 32 random bytes"),
        ("METRICS_TOKEN", "x" * 15, "METRICS_TOKEN is 15 bytes; use at least 16 random bytes"),
        ("INTEGRATION_USER_RATE", "lots", "INTEGRATION_USER_RATE must be a rate like 100/hour"),
        ("SERIES_DEFAULT_TIMEZONE", "Europe", "SERIES_DEFAULT_TIMEZONE must be an IANA time zone"),
        ("SERIES_HORIZON", "1h", "SERIES_HORIZON must be at least 86400 seconds"),
        ("CHECKIN_MAX_BACKDATE", "soon", "CHECKIN_MAX_BACKDATE must be a duration like 90"),
    ],
)
def test_nonsense_is_refused_naming_the_variable(tmp_path, name, value, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config({name: value}, instance_path=str(tmp_path))


def test_every_bad_variable_is_named_on_one_line(tmp_path):
    with pytest.raises(ConfigError) as refused:
        _load(tmp_path, PORT="0", LATE_AFTER="soon")
    assert str(refused.value) == (
        "PORT must be at least 1, got 0; "
        "LATE_AFTER must be a duration like 90, 15m or 1h, got 'soon'"
    )


def test_create_app_raises_on_a_bad_dict(tmp_path):
    from autocheckin import create_app

    with pytest.raises(ConfigError, match="REFRESH_INTERVAL must be at least 1 seconds"):
        create_app({"REFRESH_INTERVAL": "0", "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})


def _python(code: str, environ: dict[str, str], cwd):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    return subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root), **environ},
        capture_output=True,
        text=True,
        cwd=cwd,
    )


def test_create_app_from_the_environment_exits_2_naming_the_variable(tmp_path):
    completed = _python(
        "from autocheckin import create_app; create_app()",
        {"JWT_SECRET_KEY": "short", "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"},
        tmp_path,
    )
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [
        "autocheckin: configuration error: JWT_SECRET_KEY is 5 bytes; use at least 32 random "
        'bytes, e.g. `python -c "import secrets; print(secrets.token_urlsafe(48))"`'
    ]


def test_a_dict_is_read_alone_and_the_environment_without_dotenv(tmp_path):
    """A test's dict never sees os.environ nor .env; the process environment is read as it
    is (main.py loads .env into it, the settings do not read the file)."""
    (tmp_path / ".env").write_text("PORT=4321\nLATE_AFTER=1m\n")
    code = (
        "from autocheckin.config import load_config; "
        "print(load_config({}, instance_path='.')['PORT'], "
        "load_config({'LATE_AFTER': '2m'}, instance_path='.')['LATE_AFTER'], "
        "load_config(instance_path='.')['PORT'], load_config(instance_path='.')['LATE_AFTER'])"
    )
    completed = _python(code, {"PORT": "1234", "port": "9"}, tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["5000", "120.0", "1234", "600.0"]


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
