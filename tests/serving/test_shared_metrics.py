"""Under several workers, /metrics on any of them reports the requests every worker served."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
HEALTH_COUNT = re.compile(r'prefhub_request_duration_seconds_count\{[^}]*route="/healthz"[^}]*\} ([0-9.e+]+)')


def _get(port: int, path: str) -> str:
    # A new connection per request, so any worker that is running may take it.
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        assert response.status == 200, response.status
        return response.read().decode()
    finally:
        connection.close()


def _healthz_served(port: int) -> float:
    return sum(float(n) for n in HEALTH_COUNT.findall(_get(port, "/metrics")))


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, list[int]]]:
    data = tmp_path_factory.mktemp("served")
    port = free_port()
    env = {
        **os.environ,
        "PREFHUB_DATABASE_URL": f"sqlite:///{data / 'prefhub.db'}",
        "PREFHUB_DATA_DIR": str(data),
        "PREFHUB_ENV": "development",
        "PREFHUB_LOG_LEVEL": "WARNING",
        "PROMETHEUS_MULTIPROC_DIR": str(data / "metrics"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        workers: list[int] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
            if len(children) == 2:
                try:
                    _get(port, "/healthz")
                    workers = [int(pid) for pid in children]
                    break
                except OSError:
                    pass
            time.sleep(0.2)
        assert workers, "the two workers did not start"
        time.sleep(2)  # both workers past their imports
        yield port, workers
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_metrics_add_up_every_worker(two_workers: tuple[int, list[int]]) -> None:
    port, workers = two_workers
    before = _healthz_served(port)
    # Each worker in turn is paused, so the other serves every request meanwhile.
    for paused in workers:
        os.kill(paused, signal.SIGSTOP)
        try:
            for _ in range(5):
                _get(port, "/healthz")
        finally:
            os.kill(paused, signal.SIGCONT)
    # Whichever worker answers the scrape, it counts all ten.
    readings = {_healthz_served(port) - before for _ in range(6)}
    assert readings == {10.0}
