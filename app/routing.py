"""The route class that owns the request's database session: commit when the endpoint returns, else roll back."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastapi import Request
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.db import database

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
T = TypeVar("T")
E = TypeVar("E", bound=Callable[..., Any])
_WRITES_ON_READ = "_prefhub_writes_on_read"


def writes_on_read(endpoint: E) -> E:
    """Marks a GET endpoint that writes (the annotate page leases the next item) to run as a writer: in
    turn with the others on SQLite, in a transaction that begins as one. On SQLite a transaction that
    read first cannot write once another has committed meanwhile, and fails at once."""
    setattr(endpoint, _WRITES_ON_READ, True)
    return endpoint


def _writes(request: Request) -> bool:
    """Whether the request runs as a writer, as its route class decided (else by its method)."""
    decided: bool | None = getattr(request.state, "writes", None)
    return decided if decided is not None else request.method not in SAFE_METHODS


async def get_session(request: Request) -> Session:
    """The request's session, created on first use; the route class commits and closes it.

    Creating a session does no I/O (it connects on first use), so this runs on the event loop."""
    session: Session | None = getattr(request.state, "db_session", None)
    if session is None:
        session = database.new_session(write=_writes(request))
        request.state.db_session = session
    return session


async def run_in_transaction(request: Request, work: Callable[[Session], T]) -> T:
    """Run work, commit and close in one worker thread.

    The hot path uses this instead of sync dependencies and a sync endpoint: FastAPI moves each of those,
    the response validation, the commit and the close to a worker thread of their own, and under load
    every move waits for the interpreter lock. Called inside a TransactionalRoute, which has taken the
    request's write turn.
    """

    def run() -> T:
        session = database.new_session(write=_writes(request))
        try:
            result = work(session)
            # A failed commit raises here, so the client never sees a 200 for lost data.
            session.commit()
            return result
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    return await run_in_threadpool(run)


class TransactionalRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        writes_on_read = getattr(self.endpoint, _WRITES_ON_READ, False)

        async def route_handler(request: Request) -> Response:
            request.state.writes = writes_on_read or request.method not in SAFE_METHODS
            if not request.state.writes:
                return await handle(request)
            async with database.write_turn():
                return await handle(request)

        async def handle(request: Request) -> Response:
            try:
                response = await handler(request)
                session: Session | None = getattr(request.state, "db_session", None)
                if session is not None:
                    # A failed commit raises here, so the client never sees a 200 for lost data.
                    await run_in_threadpool(session.commit)
                return response
            except BaseException:
                session = getattr(request.state, "db_session", None)
                if session is not None:
                    # A rollback expires every loaded object; the error page still shows who is logged in.
                    user = getattr(request.state, "user", None)
                    if user is not None and user in session:
                        session.expunge(user)
                    await run_in_threadpool(session.rollback)
                raise
            finally:
                session = getattr(request.state, "db_session", None)
                if session is not None:
                    request.state.db_session = None
                    await run_in_threadpool(session.close)

        return route_handler
