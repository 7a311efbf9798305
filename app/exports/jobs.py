"""Background building of export snapshots, claimed from the database so any worker process can run them."""

from __future__ import annotations

import logging
import threading
import time
import uuid

from sqlalchemy.orm import Session

from app.db import database
from app.errors import AppError
from app.exports import repository, service
from app.exports.models import Export

logger = logging.getLogger("prefhub.exports.jobs")

POLL_SECONDS = 1.0
# Progress is written at most this often: each write is its own small transaction.
PROGRESS_EVERY_SECONDS = 1.0

_lock = threading.Lock()
_stop = threading.Event()
_thread: threading.Thread | None = None


def _session() -> Session:
    # Straight from the engine, never the app's session factory: the worker commits for real and must not
    # join a session another thread is using.
    session = Session(bind=database.engine, expire_on_commit=False)
    if database.engine.dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    return session


def claim_next() -> uuid.UUID | None:
    with Session(bind=database.engine, expire_on_commit=False) as session:
        export_id = repository.claim_queued_export(session)
        session.commit()
        return export_id


def _progress_writer(export_id: uuid.UUID) -> service.Progress:
    last = 0.0

    def report(fraction: float) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < PROGRESS_EVERY_SECONDS and fraction < 1.0:
            return
        last = now
        with Session(bind=database.engine) as session:
            repository.set_progress(session, export_id, min(fraction, 0.99))
            session.commit()

    return report


def _fail(export_id: uuid.UUID, message: str) -> None:
    with Session(bind=database.engine) as session:
        repository.mark_failed(session, export_id, message)
        session.commit()


def run_export(export_id: uuid.UUID) -> None:
    """Build one claimed export in its own transaction; a failure is recorded on the export."""
    try:
        # The build only reads; the outcome is written afterwards in a short transaction of its own, so on
        # SQLite the long read never has to become a write after progress updates were committed.
        with _session() as session:
            export = session.get(Export, export_id)
            if export is None:
                return
            built = service.build_export_file(session, export, _progress_writer(export_id))
        with Session(bind=database.engine, expire_on_commit=False) as session:
            service.finish_export(session.get_one(Export, export_id), built)
            session.commit()
    except AppError as error:
        _fail(export_id, error.message)
    except Exception:
        logger.exception("export %s failed", export_id)
        _fail(export_id, "The export failed with an internal error; the server log has the details.")


def run_pending() -> int:
    """Build queued exports until none is left; returns how many were built."""
    built = 0
    while not _stop.is_set():
        export_id = claim_next()
        if export_id is None:
            return built
        run_export(export_id)
        built += 1
    return built


def _loop() -> None:
    while not _stop.is_set():
        try:
            run_pending()
        except Exception:
            # A database outage must not kill the worker: it tries again on the next tick.
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
