"""schemathesis over /openapi.json with every check on, against the app served on
127.0.0.1: the spec must tell the truth about every operation (statuses, schemas, what is
refused). Bounded (a few examples per operation) and seeded, so it is the same run every
time; tests/schemathesis.toml holds the few per-operation exceptions, each with its reason.
"""

from __future__ import annotations

import subprocess

import pytest

from autocheckin import ratelimits
from tests.conftest import API_KEY
from tests.helpers import login, register
from tests.servers import BIN, ROOT, serving

CONFIG = ROOT / "tests" / "schemathesis.toml"
SECRET = "schemathesis-session-secret-0123456789abcdef"
ADMIN_PASSWORD = "discord-admin-password"
EXAMPLES = "5"
SEED = "20261203"


@pytest.fixture
def fuzzed_app(make_app, checkout, monkeypatch):
    """Every feature configured (dashboard, Discord admin sign-up, the upstream), so the run
    reaches the routes' own logic; the wrong keys schemathesis sends on purpose (ignored
    auth) would otherwise lock its address out of every key door within seconds."""
    monkeypatch.setattr(ratelimits, "KEY_FAILURES", ratelimits.parse("100000/minute"))
    return make_app(
        SECRET_KEY=SECRET,
        DISCORD_ADMIN_PASSWORD=ADMIN_PASSWORD,
        CHECKOUT_API_URL=checkout.url,
        CHECKOUT_READ_TIMEOUT="1",
        CHECKOUT_CONNECT_TIMEOUT="1",
        CHECKOUT_RETRIES="1",
        WEBHOOK_SECRET="schemathesis-webhook-secret",
    )


def test_schemathesis_finds_nothing(fuzzed_app, tmp_path):
    client = fuzzed_app.test_client()
    register(client)
    token = login(client).get_json()["access_token"]
    with serving(fuzzed_app) as base:
        run = subprocess.run(
            [
                str(BIN / "schemathesis"),
                "--config-file",
                str(CONFIG),
                "run",
                f"{base}/openapi.json",
                "--header",
                f"x-checkout-key: {API_KEY}",
                "--header",
                f"Authorization: Bearer {token}",
                "--max-examples",
                EXAMPLES,
                "--seed",
                SEED,
                "--generation-deterministic",
                "--workers",
                "1",
                "--no-color",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
