"""Request ids, structured JSON logs and Prometheus metrics."""

from __future__ import annotations

import contextvars
import json
import logging
import os

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

REQUEST_LATENCY = Histogram(
    "prefhub_request_duration_seconds",
    "Request latency by route",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ANNOTATIONS_SUBMITTED = Counter("prefhub_annotations_submitted_total", "Annotations submitted", ["purpose"])
# Read from the database by whichever worker is scraped: across workers, the newest reading counts.
ACTIVE_LEASES = Gauge(
    "prefhub_active_leases", "Unexpired leases per project", ["project"], multiprocess_mode="mostrecent"
)
ITEMS_LEFT = Gauge(
    "prefhub_items_left",
    "Live items not yet complete per project",
    ["project"],
    multiprocess_mode="mostrecent",
)
# Where worker processes keep their metrics, so that any of them can answer /metrics for all (see `prefhub
# serve`). prometheus_client reads it when first imported.
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def metrics_registry() -> CollectorRegistry:
    """This process's metrics, or, under several workers, every worker's added up (dead ones included, so
    counters never go backwards)."""
    if not os.environ.get(METRICS_DIR_VARIABLE):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def current_request_id() -> str | None:
    return _request_id.get()


class JsonLogFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": _request_id.get(),
        }
        for key in ("method", "path", "status", "duration_ms"):
            if hasattr(record, key):
                payload[key] = getattr(record, key)
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


def configure_logging(level: str, as_json: bool) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonLogFormatter() if as_json else logging.Formatter("%(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger("prefhub")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


access_log = logging.getLogger("prefhub.access")


def bind_request_id(request_id: str) -> contextvars.Token[str | None]:
    return _request_id.set(request_id)


def reset_request_id(token: contextvars.Token[str | None]) -> None:
    _request_id.reset(token)
