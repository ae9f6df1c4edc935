"""Typed settings helpers: good values parse, bad ones fail at start-up naming the variable."""

from __future__ import annotations

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
