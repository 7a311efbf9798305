"""The gunicorn worker that serves the app: uvicorn, with connections shared fairly between workers.

Workers share one listening socket. uvicorn's event loop accepts every pending connection at once, so a burst
of new connections (raters starting together, a proxy opening its keep-alive pool) lands on whichever worker
woke first and stays there: in our benchmark all eight raters' connections went to one of two workers, which
then did all the work while the other idled. Two changes share them out:

- a worker accepts one connection per wake-up, and one whose connections are in use waits a moment first, so
  a less busy worker takes the next one;
- a connection is closed after a number of requests (nginx's keepalive_requests, Apache's
  MaxKeepAliveRequests), so its client reconnects and the placement above corrects any imbalance left, such as
  a burst that met a worker still starting.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import math
import socket
import ssl
import sys
import time
from collections.abc import Callable

from gunicorn.arbiter import Arbiter
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

logger = logging.getLogger(__name__)

# A worker with n connections in use waits n times this before accepting (capped), so new connections favour
# the least busy worker. Only connection set-up pays the delay; requests on open connections never do.
ACCEPT_DELAY_PER_CONNECTION_S = 0.002
ACCEPT_DELAY_CAP_S = 0.02
# A connection is in use if it sent a request this recently. Raters who pause to read an item leave their
# connection idle; it should not make a new rater's connection wait.
IN_USE_WINDOW_S = 1.0
# nginx's keepalive_requests default: rare enough that a reconnect's handshake stays out of the p99.
REQUESTS_PER_CONNECTION = 1000
# How long an idle connection stays open. gunicorn's default is 2 s (uvicorn's 5 s): a client that reuses a
# connection just as the server closes it sees it drop mid-request (the unruly load's raters met it as a
# "connection ReadError"), and clients that pause longer reconnect each time. 75 s, nginx's keepalive_timeout,
# outlasts the idle timeouts of clients and proxies (httpx 5 s, nginx upstreams and AWS load balancers 60 s),
# so they close an idle connection first, never the server under them.
KEEP_ALIVE_S = 75
# Out of file descriptors: stop accepting for a moment rather than spin on the error.
ACCEPT_BACKOFF_S = 0.1


class FairAcceptor:
    """Accepts connections from a shared listening socket one at a time, yielding to less loaded workers."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        listener: socket.socket,
        protocol_factory: Callable[[], asyncio.Protocol],
        connections_in_use: Callable[[], int],
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self._loop = loop
        self._listener = listener
        self._protocol_factory = protocol_factory
        self._connections_in_use = connections_in_use
        self._ssl = ssl_context
        self._stopped = False
        self._pending: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        listener.setblocking(False)

    def start(self) -> None:
        self._loop.add_reader(self._listener.fileno(), self._on_readable)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._pending is not None:
            self._pending.cancel()
        self._loop.remove_reader(self._listener.fileno())

    def delay(self) -> float:
        # Connections still being set up count too: a burst would otherwise all meet an idle-looking worker.
        busy = self._connections_in_use() + len(self._tasks)
        return min(busy * ACCEPT_DELAY_PER_CONNECTION_S, ACCEPT_DELAY_CAP_S)

    def _on_readable(self) -> None:
        # Stop watching until this connection is handled: the socket stays readable while it waits.
        self._loop.remove_reader(self._listener.fileno())
        wait = self.delay()
        if wait:
            self._pending = self._loop.call_later(wait, self._accept_one)
        else:
            self._accept_one()

    def _accept_one(self) -> None:
        self._pending = None
        if self._stopped:
            return
        try:
            connection, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            pass  # another worker took it, or the client gave up
        except OSError as error:
            if error.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                raise
            logger.warning("cannot accept connections for now: %s", error)
            self._pending = self._loop.call_later(ACCEPT_BACKOFF_S, self.start)
            return
        else:
            self._serve(connection)
        self.start()

    def _serve(self, connection: socket.socket) -> None:
        connection.setblocking(False)
        if connection.family in (socket.AF_INET, socket.AF_INET6):
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = self._loop.create_task(
            self._loop.connect_accepted_socket(self._protocol_factory, connection, ssl=self._ssl)
        )
        self._tasks.add(task)
        task.add_done_callback(self._connected)

    def _connected(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("could not set up a connection: %s", task.exception())


class RecyclingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, answering with `Connection: close` once a connection has served its share."""

    requests_served = 0
    last_request_at = -math.inf

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self.requests_served += 1
        self.last_request_at = time.monotonic()
        if self.requests_served >= REQUESTS_PER_CONNECTION and self.cycle is not None:
            self.cycle.keep_alive = False


class FairServer(Server):
    """uvicorn's server, accepting from the worker's sockets through FairAcceptor instead of the loop's server."""

    acceptors: list[FairAcceptor]

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.acceptors = []
        if sockets is None:
            await super().startup(sockets)
            return
        # With no sockets uvicorn runs the lifespan and marks the server started; we do the listening.
        await super().startup(sockets=[])
        if not self.started:
            return
        config = self.config

        def create_protocol() -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state
            )

        # What startup built (modules, mappers, compiled statements) lives as long as the worker; frozen, the
        # collector stops walking it, and a full collection under load took 4 ms instead of 80.
        gc.collect()
        gc.freeze()
        loop = asyncio.get_running_loop()
        for listener in sockets:
            acceptor = FairAcceptor(loop, listener, create_protocol, self.connections_in_use, config.ssl)
            acceptor.start()
            self.acceptors.append(acceptor)

    def connections_in_use(self) -> int:
        since = time.monotonic() - IN_USE_WINDOW_S
        return sum(
            1
            for connection in self.server_state.connections
            if getattr(connection, "last_request_at", -math.inf) >= since
        )

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for acceptor in self.acceptors:
            acceptor.stop()
        await super().shutdown(sockets)


class FairUvicornWorker(UvicornWorker):
    CONFIG_KWARGS = {
        **UvicornWorker.CONFIG_KWARGS,
        "http": RecyclingHttpToolsProtocol,
        "timeout_keep_alive": KEEP_ALIVE_S,
    }

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        server = FairServer(config=self.config)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
