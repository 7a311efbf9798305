"""The gunicorn worker shares connections between workers and recycles long-lived ones (app.serving)."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from uvicorn.config import Config

from app.serving import IN_USE_WINDOW_S, REQUESTS_PER_CONNECTION, FairServer
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 2


@dataclass
class Served:
    port: int
    worker_pids: set[str]


def _get(connection: http.client.HTTPConnection) -> tuple[str, str | None]:
    connection.request("GET", "/")
    response = connection.getresponse()
    return response.read().decode(), response.getheader("connection")


def _pid_on_new_connection(port: int) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        return _get(connection)[0]
    finally:
        connection.close()


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "tests.serving.pid_app:app",
            "--worker-class",
            "app.serving.FairUvicornWorker",
            "--workers",
            str(WORKERS),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
    )
    try:
        # Both workers must be serving before a test counts where connections land.
        seen: set[str] = set()
        deadline = time.monotonic() + 30
        while len(seen) < WORKERS and time.monotonic() < deadline:
            try:
                seen.add(_pid_on_new_connection(port))
            except OSError:
                time.sleep(0.1)
        assert len(seen) == WORKERS, f"only workers {seen} answered"
        yield Served(port=port, worker_pids=seen)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_burst_of_connections_is_shared_between_workers(served: Served) -> None:
    # Eight clients connect while the workers are busy (stopped, here), so all eight wait in the listening
    # socket's queue; one worker gets back to its event loop a few milliseconds before the other. An event
    # loop that accepted every pending connection at once took all eight in that head start.
    clients = 8
    connections = [http.client.HTTPConnection("127.0.0.1", served.port, timeout=5) for _ in range(clients)]
    for pid in served.worker_pids:
        os.kill(int(pid), signal.SIGSTOP)
    try:
        for connection in connections:
            connection.request("GET", "/")
    finally:
        for pid in sorted(served.worker_pids):
            os.kill(int(pid), signal.SIGCONT)
            time.sleep(0.005)
    try:
        pids = [connection.getresponse().read().decode() for connection in connections]
    finally:
        for connection in connections:
            connection.close()
    per_worker = Counter(pids)
    assert set(per_worker) == served.worker_pids, per_worker
    assert min(per_worker.values()) >= clients // 4, per_worker


def test_a_connection_is_closed_after_its_share_of_requests(served: Served) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=5)
    try:
        answers = [_get(connection) for _ in range(REQUESTS_PER_CONNECTION)]
        # http.client reconnects by itself once told to close.
        after = _get(connection)
    finally:
        connection.close()
    assert all(header is None for _, header in answers[:-1])
    assert answers[-1][1] == "close"
    assert len({pid for pid, _ in answers}) == 1, "one connection is served by one worker"
    assert after[1] is None


def test_a_connection_left_idle_for_a_few_seconds_is_still_open(served: Served) -> None:
    """A client that pauses between requests (a rater reading, a script between calls) reuses its connection:
    at gunicorn's default of 2 s the server had closed it, and a request sent as it closed was lost."""
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=5)
    try:
        first = _get(connection)
        socket_before = connection.sock
        time.sleep(3)
        # Sent on the same socket: a server that had closed it would drop this request (RemoteDisconnected).
        second = _get(connection)
        assert connection.sock is socket_before
    finally:
        connection.close()
    assert first[0] == second[0], "the same connection is served by the same worker"


class _Connection:
    def __init__(self, last_request_at: float | None) -> None:
        if last_request_at is not None:
            self.last_request_at = last_request_at


def test_only_connections_used_lately_make_a_worker_look_busy() -> None:
    # Raters reading an item leave their connections idle: those must not delay a new rater's connection.
    server = FairServer(Config(app=lambda *args: None))
    now = time.monotonic()
    server.server_state.connections.update(
        {
            _Connection(now - 0.1),  # type: ignore[arg-type]  # mid-cycle
            _Connection(now - IN_USE_WINDOW_S - 5),  # type: ignore[arg-type]  # idle keep-alive
            _Connection(None),  # type: ignore[arg-type]  # connected, no request yet
        }
    )
    assert server.connections_in_use() == 1
