"""Prometheus metrics (prometheus-client): requests, webhook outcomes, job runs, the leader.

Under gunicorn every worker is its own process: `gunicorn.conf.py` points
PROMETHEUS_MULTIPROC_DIR at a fresh directory before the workers start, each worker writes
its samples there, and a scrape of any worker adds them all up. Without that variable
(the development server, tests) the metrics live in this process.
"""

from __future__ import annotations

import os
import time

from flask import Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

REQUESTS = Counter(
    "autocheckin_http_requests_total", "HTTP requests answered", ["route", "method", "status"]
)
LATENCY = Histogram(
    "autocheckin_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WEBHOOKS = Counter(
    "autocheckin_webhook_requests_total", "Webhook requests by outcome", ["endpoint", "outcome"]
)
JOB_RUNS = Counter("autocheckin_job_runs_total", "Job runs by outcome", ["job", "status"])
JOB_SECONDS = Histogram(
    "autocheckin_job_run_duration_seconds",
    "Time a job run took",
    ["job"],
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900),
)
LEADER = Gauge(
    "autocheckin_scheduler_leader",
    "1 in the process that holds the leader lease",
    ["holder"],
    multiprocess_mode="liveall",
)
UPSTREAM_ERRORS = Counter("autocheckin_upstream_errors_total", "Failed calls to CheckOut")


def add_collector(app: Flask, collector: Collector) -> None:
    """Read `collector` at every scrape of `app`: for a fact stored once (in the database),
    not counted. The package that owns the fact registers it in its `init_app`."""
    app.extensions.setdefault("metrics_collectors", []).append(collector)


def exposition() -> Response:
    """The text format, across every worker when running under gunicorn."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    facts = CollectorRegistry(auto_describe=True)
    for collector in current_app.extensions.get("metrics_collectors", ()):
        facts.register(collector)
    body = generate_latest(registry) + generate_latest(facts)
    return Response(body, mimetype=CONTENT_TYPE_LATEST)


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


def _observe(response: Response) -> Response:
    started = g.pop("metrics_started", None)
    route = request.url_rule.rule if request.url_rule else "unmatched"
    REQUESTS.labels(route, request.method, str(response.status_code)).inc()
    if started is not None:
        LATENCY.labels(route).observe(time.perf_counter() - started)
    return response


def init_app(app: Flask) -> None:
    app.before_request(_start_timer)
    app.after_request(_observe)
