"""The entry points serve from a fresh clone's point of view: the Procfile and `python main.py`."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from tests.servers import BIN, ROOT, free_port, running, server_env


def procfile_command(kind: str = "web") -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{kind}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {kind}: line in the Procfile")


@pytest.mark.slow
def test_procfile_web_command_migrates_and_serves_on_port(tmp_path):
    port = free_port()
    env = server_env(port, f"sqlite:///{tmp_path / 'fresh.db'}")
    with running(["bash", "-c", procfile_command()], env, f"http://127.0.0.1:{port}/") as url:
        response = requests.get(url, timeout=5)
        assert response.status_code == 200
        assert response.json()["success"] is True
        state = requests.get(
            f"{url}api/v1/state", headers={"x-checkout-key": "live-key"}, timeout=5
        )
        assert state.status_code == 200
        assert state.json()["data"]["counts"]["students"] == 0
    assert (tmp_path / "fresh.db").exists()


@pytest.mark.slow
def test_python_main_serves_the_dev_server(tmp_path):
    port = free_port()
    env = server_env(port, f"sqlite:///{tmp_path / 'fresh.db'}")
    subprocess.run(
        [str(BIN / "flask"), "--app", "autocheckin", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    url = f"http://127.0.0.1:{port}/health"
    with running([sys.executable, "main.py"], env, url):
        assert requests.get(url, timeout=5).json() == {"status": "healthy", "database": "ok"}


def test_railway_config_runs_what_the_procfile_runs():
    """railway.json migrates before deploy and starts the Procfile's gunicorn."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    deploy = json.loads((root / "railway.json").read_text())["deploy"]
    web = next(
        line.removeprefix("web:").strip()
        for line in (root / "Procfile").read_text().splitlines()
        if line.startswith("web:")
    )
    migrate, _, start = web.partition(" && exec ")
    assert deploy["preDeployCommand"] == [migrate]
    assert deploy["startCommand"] == start
    assert deploy["healthcheckPath"] == "/health"
    assert (root / ".python-version").read_text().strip() == "3.11"


def test_railway_clock_config_runs_the_procfiles_clock_without_a_health_check():
    """A clock serves no HTTP: a health check would fail every deploy of it."""
    import json

    clock = json.loads((ROOT / "railway.clock.json").read_text())["deploy"]
    web = json.loads((ROOT / "railway.json").read_text())["deploy"]
    procfile_clock = next(
        line.split("clock:", 1)[1].strip()
        for line in (ROOT / "Procfile").read_text().splitlines()
        if "clock:" in line and not line.startswith("web:")
    )
    assert clock["startCommand"] == procfile_clock == "python -m autocheckin.jobs"
    assert clock["preDeployCommand"] == web["preDeployCommand"]
    assert "healthcheckPath" not in clock
    assert clock["restartPolicyType"] == "ALWAYS"
