"""Background building of export snapshots, claimed from the database so any worker process can run them."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db import database, utcnow
from app.errors import AppError
from app.exports import repository, service
from app.exports.models import Export

logger = logging.getLogger("prefhub.exports.jobs")

POLL_SECONDS = 1.0
# A running build renews its heartbeat this often; one silent for LEASE_SECONDS lost its worker and is
# claimed again, up to MAX_ATTEMPTS builds in all (an export that kills every worker must not loop forever).
HEARTBEAT_SECONDS = 10.0
LEASE_SECONDS = 120.0
MAX_ATTEMPTS = 3
# Progress is written at most this often: each write is its own small transaction.
PROGRESS_EVERY_SECONDS = 1.0

_lock = threading.Lock()
_stop = threading.Event()
_thread: threading.Thread | None = None


def _session() -> Session:
    session = database.engine_session()
    if database.engine.dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    return session


def claim_next(now: datetime | None = None) -> tuple[uuid.UUID, int] | None:
    """Claim the next export to build, a queued one or one whose worker stopped: (id, attempt)."""
    stale_before = (now or utcnow()) - timedelta(seconds=LEASE_SECONDS)
    # Every second's poll only reads: on SQLite a writer waits for all others, and most polls find nothing.
    with database.engine_session() as session:
        if not repository.has_claimable_export(session, stale_before):
            return None
    with database.engine_session(write=True) as session:
        claimed = repository.claim_export(session, stale_before)
        session.commit()
        return claimed


@contextmanager
def heartbeat(export_id: uuid.UUID, attempt: int) -> Iterator[None]:
    """Renew the export's heartbeat from a thread for as long as the build runs."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(HEARTBEAT_SECONDS):
            try:
                with database.engine_session(write=True) as session:
                    renewed = repository.beat(session, export_id, attempt)
                    session.commit()
            except Exception:
                logger.exception("export %s heartbeat failed", export_id)
                continue
            if not renewed:
                return

    thread = threading.Thread(target=beat, name=f"export-heartbeat-{export_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _progress_writer(export_id: uuid.UUID) -> service.Progress:
    last = 0.0

    def report(fraction: float) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < PROGRESS_EVERY_SECONDS and fraction < 1.0:
            return
        last = now
        with database.engine_session(write=True) as session:
            repository.set_progress(session, export_id, min(fraction, 0.99))
            session.commit()

    return report


def _fail(export_id: uuid.UUID, message: str) -> None:
    with database.engine_session(write=True) as session:
        repository.mark_failed(session, export_id, message)
        session.commit()


def run_export(export_id: uuid.UUID, attempt: int = 1) -> None:
    """Build one claimed export in its own transaction; a failure is recorded on the export."""
    if attempt > MAX_ATTEMPTS:
        _fail(export_id, f"The export was given up after {MAX_ATTEMPTS} attempts whose worker stopped.")
        return
    try:
        with heartbeat(export_id, attempt):
            _build(export_id)
    except AppError as error:
        _fail(export_id, error.message)
    except Exception:
        logger.exception("export %s failed", export_id)
        _fail(export_id, "The export failed with an internal error; the server log has the details.")


def _build(export_id: uuid.UUID) -> None:
    # The build only reads; the outcome is written afterwards in a short transaction of its own, so on
    # SQLite the long read never has to become a write after progress updates were committed.
    with _session() as session:
        export = session.get(Export, export_id)
        if export is None:
            return
        built = service.build_export_file(session, export, _progress_writer(export_id))
    with database.engine_session(write=True) as session:
        service.finish_export(session.get_one(Export, export_id), built)
        session.commit()


def run_pending() -> int:
    """Build queued exports until none is left; returns how many were built."""
    built = 0
    while not _stop.is_set():
        claimed = claim_next()
        if claimed is None:
            return built
        run_export(*claimed)
        built += 1
    return built


def _loop() -> None:
    unreachable = False
    while not _stop.is_set():
        try:
            run_pending()
            if unreachable:
                logger.info("export worker: database reachable again")
            unreachable = False
        except sa.exc.OperationalError as error:
            # An outage must not kill the worker, nor fill the log with a traceback every second: one line
            # when it starts, then the worker tries again on each tick.
            if not unreachable:
                logger.warning(
                    "export worker: database unreachable, retrying every %s s: %s", POLL_SECONDS, error.orig
                )
            unreachable = True
        except Exception:
            logger.exception("export worker tick failed")
        _stop.wait(POLL_SECONDS)


def start_worker() -> None:
    """Start this process's export worker: a daemon thread polling for queued exports every second."""
    global _thread
    with _lock:
        if _thread is not None and _thread.is_alive():
            return
        _stop.clear()
        _thread = threading.Thread(target=_loop, name="export-worker", daemon=True)
        _thread.start()


def stop_worker() -> None:
    """Stop this process's export worker, letting a running build finish its current step."""
    global _thread
    with _lock:
        thread, _thread = _thread, None
        _stop.set()
    if thread is not None:
        thread.join(timeout=10)
