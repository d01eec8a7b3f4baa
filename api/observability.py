"""Metrics (Prometheus), structured logs, and the request middleware that feeds both.

Logs are JSON lines with an `event` field; comment text never appears unless
MODERATO_LOG_COMMENT_TEXT is set. Each app has its own metrics registry, so several apps (tests)
can live in one process.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class Metrics:
    """The service's Prometheus metrics, on a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "moderato_requests_total", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "moderato_request_duration_seconds",
            "HTTP request latency",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "moderato_decisions_total",
            "Engine verdicts stored, by decision and most severe label",
            ["decision", "label"],
            registry=self.registry,
        )
        self.webhook_attempts = Counter(
            "moderato_webhook_attempts_total", "Webhook delivery attempts", ["outcome"], registry=self.registry
        )
        self.commit_batch = Histogram(
            "moderato_writer_batch_jobs",
            "Write jobs per group commit",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )

    def record_batch(self, jobs: int, _seconds: float) -> None:
        self.commit_batch.observe(jobs)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class RequestMetrics:
    """Pure ASGI middleware: count and time every request by its route template (not its path)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, access_log: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        self.log = logging.getLogger("moderato.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], template, str(status)).inc()
            self.metrics.latency.labels(template).observe(elapsed)
            if self.access_log and template not in ("/metrics", "/healthz"):
                state = scope.get("state") or {}
                self.log.info(
                    "request",
                    extra={
                        "event": "http.request",
                        "method": scope["method"],
                        "route": template,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                        "site": state.get("site_name"),
                    },
                )


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and every `extra` field."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def configure_logging(*, level: str = "INFO", json_lines: bool = True) -> None:
    """Send the `moderato` loggers to stderr (JSON lines by default); idempotent."""
    logger = logging.getLogger("moderato")
    logger.setLevel(level.upper())
    if any(getattr(h, "_moderato", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter("%(levelname)s %(name)s %(message)s"))
    handler._moderato = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
