"""Engine, sessions and the declarative base shared by every domain's models."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from app.config import Settings, get_settings
from app.json_codec import load_stored_json

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "ck": "%(table_name)s_%(constraint_name)s_check",
    "fk": "%(table_name)s_%(column_0_N_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}

# JSON that PostgreSQL stores as JSONB; the same Python values on both databases.
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")

# An execution option that asks SQLite to take the write lock when the transaction begins, so a
# read-then-write transaction waits for the lock instead of failing with "database is locked".
SQLITE_IMMEDIATE = "prefhub_sqlite_immediate"
_HOLDS_WRITE_LOCK = "prefhub_holds_write_lock"
# As long as SQLite's own busy timeout: a writer waits this long for its turn before "database is locked".
SQLITE_WRITE_WAIT_SECONDS = 30


# A PostgreSQL connection that sat in the pool this long is checked with a round trip before use: the server
# may have restarted or a firewall dropped it. Under load connections come back within milliseconds and skip
# that round trip (SQLAlchemy's pre-ping paid it on every request).
PING_AFTER_IDLE_SECONDS = 1.0
_IDLE_SINCE = "prefhub_idle_since"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSONType, list[Any]: JSONType}


class UUIDPrimaryKey:
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)


class TZDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware datetimes on SQLite too, which stores them without an offset."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


def create_db_engine(database_url: str, settings: Settings | None = None) -> Engine:
    settings = settings or get_settings()
    if database_url.startswith("sqlite"):
        engine = sa.create_engine(database_url, connect_args={"check_same_thread": False, "timeout": 30})
        _configure_sqlite(engine)
        return engine
    engine = sa.create_engine(
        database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        # Answers, prompts and metadata are read on every hot call and by every export.
        json_deserializer=load_stored_json,
    )
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use if it has been idle; a dead one is replaced before the request
    sees it. One that dies while in steady use fails its request (a 503) and makes the pool reconnect."""

    @event.listens_for(engine.pool, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop(_IDLE_SINCE, None)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool discards this connection and checks out another (a new one, if the server is back).
            raise sa.exc.DisconnectionError(str(error)) from error


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself so SAVEPOINTs and BEGIN IMMEDIATE work.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    # SQLite has one writer at a time, and a writer that finds the database locked sleeps and retries (up to
    # 100 ms a turn), so under many concurrent writers a few wait a second or more while others get in first.
    # Writers of this process queue on a lock instead and go in turn; other processes still meet SQLite's wait.
    writer = threading.Lock()

    def release(info: dict[str, Any]) -> None:
        if info.pop(_HOLDS_WRITE_LOCK, False):
            writer.release()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        if not conn.get_execution_options().get(SQLITE_IMMEDIATE):
            conn.exec_driver_sql("BEGIN")
            return
        if not writer.acquire(timeout=SQLITE_WRITE_WAIT_SECONDS):
            # As SQLAlchemy wraps SQLite's own "locked", so the app answers 503 and retry rather than 500.
            raise sa.exc.OperationalError(
                "BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")
            )
        conn.info[_HOLDS_WRITE_LOCK] = True
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            release(conn.info)
            raise

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _on_end(conn: sa.Connection) -> None:
        # An invalidated connection has no info to read; the pool's invalidate event released its turn.
        if not conn.invalidated:
            release(conn.info)

    # A connection that goes back to the pool or away without commit or rollback frees the lock too.
    @event.listens_for(engine.pool, "checkin")
    @event.listens_for(engine.pool, "invalidate")
    def _on_return(_dbapi_connection: Any, record: Any, *_: Any) -> None:
        if record is not None:
            release(record.info)


class Database:
    """Holds the engine and session factory of the running app (one per process)."""

    def __init__(self) -> None:
        self._engine: Engine | None = None
        self._factory: sessionmaker[Session] | None = None
        # One per event loop: an asyncio lock belongs to the loop it first waited on (tests run several).
        self._write_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def configure(self, database_url: str, settings: Settings | None = None) -> None:
        if self._engine is not None:
            self._engine.dispose()
        self._engine = create_db_engine(database_url, settings)
        self._factory = sessionmaker(bind=self._engine, expire_on_commit=False)

    def use_engine(self, engine: Engine) -> None:
        self._engine = engine
        self._factory = sessionmaker(bind=engine, expire_on_commit=False)

    def use_factory(self, factory: sessionmaker[Session] | None) -> None:
        """Sessions from another factory (tests bind one to an outer transaction); None restores the default."""
        self._factory = factory or sessionmaker(bind=self.engine, expire_on_commit=False)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self.configure(get_settings().database_url)
        assert self._engine is not None
        return self._engine

    @asynccontextmanager
    async def write_turn(self) -> AsyncIterator[None]:
        """SQLite: a request that writes waits here, on the event loop, until the one before it has committed.

        Waiting for SQLite's single writer in a worker thread holds the thread and a pooled connection. A
        request that commits in another thread than the one that ran it (every route but the hot path)
        then finds none free once enough writers wait behind it, and all of them stall until they time
        out. PostgreSQL locks rows, not the database: there every request goes straight in.
        """
        if self.engine.dialect.name != "sqlite":
            yield
            return
        loop = asyncio.get_running_loop()
        turns = self._write_turns.get(loop)
        if turns is None:
            turns = self._write_turns[loop] = asyncio.Lock()
        async with turns:
            yield

    def new_session(self, *, write: bool = False) -> Session:
        if self._factory is None:
            _ = self.engine
        assert self._factory is not None
        session = self._factory()
        if write:
            begin_as_writer(session)
        return session

    def engine_session(self, *, write: bool = False) -> Session:
        """A session straight on the engine, never from the factory (which tests bind to one outer
        transaction): for background work that commits for real from a thread of its own."""
        session = Session(bind=self.engine, expire_on_commit=False)
        if write:
            begin_as_writer(session)
        return session


def begin_as_writer(session: Session) -> None:
    """SQLite: the session's transaction takes the write lock as it begins. One that read first cannot
    become a writer once another has committed meanwhile: "database is locked" at once, whatever the busy
    timeout. Other databases need nothing."""
    bind = session.get_bind()
    if bind.dialect.name != "sqlite":
        return
    if isinstance(bind, Engine):
        # BEGIN IMMEDIATE when the session first connects, not now: no I/O until it is used.
        session.bind = bind.execution_options(**{SQLITE_IMMEDIATE: True})
    else:
        session.connection(execution_options={SQLITE_IMMEDIATE: True})


database = Database()


@contextmanager
def session_scope(*, write: bool = True) -> Iterator[Session]:
    """One transaction for a job or CLI command: commit on success, roll back on error."""
    session = database.new_session(write=write)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def bulk_insert(session: Session, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows in the session's transaction: COPY on PostgreSQL, executemany elsewhere.

    Rows are keyed by column name. COPY is many times faster than row-by-row inserts for imports.
    """
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(table.insert(), rows)
        return
    columns = list(rows[0])
    json_columns = {name for name in columns if isinstance(table.c[name].type, sa.JSON | JSONB)}
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(
                [
                    json.dumps(row[name], ensure_ascii=False)
                    if name in json_columns and row[name] is not None
                    else row[name]
                    for name in columns
                ]
            )
