"""The entry points serve from a fresh clone's point of view: the Procfile and `python main.py`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def procfile_command(kind: str = "web") -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{kind}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {kind}: line in the Procfile")


def wait_for(url: str, process: subprocess.Popen, seconds: float = 30) -> requests.Response:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}")
        try:
            return requests.get(url, timeout=2)
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {seconds}s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def server_env(tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CHECKOUT_", "WEBHOOK_", "DATABASE_URL"))
    }
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PORT=str(port),
        DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.db'}",
        CHECKOUT_API_KEY="deploy-key",
        SCHEDULER_ENABLED="false",
        WEB_CONCURRENCY="2",
        **extra,
    )
    return env


@pytest.mark.slow
def test_procfile_web_command_migrates_and_serves_on_port(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        ["bash", "-c", procfile_command()],
        cwd=ROOT,
        env=server_env(tmp_path, port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        response = wait_for(f"http://127.0.0.1:{port}/", process)
        assert response.status_code == 200
        assert response.json()["success"] is True
        state = requests.get(
            f"http://127.0.0.1:{port}/api/v1/state",
            headers={"x-checkout-key": "deploy-key"},
            timeout=5,
        )
        assert state.status_code == 200
        assert state.json()["data"]["counts"]["students"] == 0
    finally:
        stop(process)
    assert (tmp_path / "fresh.db").exists()


@pytest.mark.slow
def test_python_main_serves_the_dev_server(tmp_path):
    port = free_port()
    env = server_env(tmp_path, port)
    subprocess.run(
        [str(Path(sys.executable).parent / "flask"), "--app", "autocheckin", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    process = subprocess.Popen(
        [sys.executable, "main.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        response = wait_for(f"http://127.0.0.1:{port}/health", process)
        assert response.json() == {"status": "healthy", "database": "ok"}
    finally:
        stop(process)
