"""GET /metrics: guarded, and counting what an operator needs, across gunicorn workers."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import API_KEY
from tests.servers import gunicorn


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in the Prometheus text format (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        metric, _, label_text = series.partition("{")
        found = ",".join(sorted(label_text.rstrip("}").split(","))) if label_text else ""
        if metric == name and found == wanted:
            return float(value)
    return 0.0


def test_metrics_need_the_key_or_the_token(make_app):
    app = make_app(METRICS_TOKEN="scraper-token-0123456789")
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"x-checkout-key": "wrong"}).status_code == 401
    assert client.get("/metrics", headers={"x-checkout-key": API_KEY}).status_code == 200
    bearer = {"Authorization": "Bearer scraper-token-0123456789"}
    assert client.get("/metrics", headers=bearer).status_code == 200
    wrong = {"Authorization": "Bearer guess"}
    assert client.get("/metrics", headers=wrong).status_code == 401


def test_metrics_count_requests_webhooks_and_the_backlog(client, auth_headers):
    before = client.get("/metrics", headers=auth_headers).get_data(as_text=True)
    unmatched = sample(
        before, "autocheckin_webhook_requests_total", endpoint="attendance", outcome="unmatched"
    )
    client.post(
        "/api/webhook/attendance/", json={"student_identifier": "x", "event_identifier": "y"}
    )
    text = client.get("/metrics", headers=auth_headers).get_data(as_text=True)
    assert (
        sample(
            text, "autocheckin_webhook_requests_total", endpoint="attendance", outcome="unmatched"
        )
        == unmatched + 1
    )
    assert sample(text, "autocheckin_unmatched_checkins") == 1
    assert (
        sample(
            text,
            "autocheckin_http_requests_total",
            method="POST",
            route="/api/webhook/attendance/",
            status="404",
        )
        >= 1
    )


@pytest.mark.slow
def test_metrics_add_up_across_gunicorn_workers(database_url):
    with gunicorn(database_url, WEB_CONCURRENCY="2", CHECKOUT_API_KEY=API_KEY) as base:

        def health_count() -> float:
            text = requests.get(
                f"{base}/metrics", headers={"x-checkout-key": API_KEY}, timeout=10
            ).text
            return sample(
                text, "autocheckin_http_requests_total", method="GET", route="/health", status="200"
            )

        before = health_count()
        with requests.Session() as session:
            for _ in range(40):  # keep-alive off per request: both workers answer some
                response = session.get(
                    f"{base}/health", headers={"Connection": "close"}, timeout=10
                )
                assert response.status_code == 200
        assert health_count() - before == 40
