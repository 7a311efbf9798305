"""SQLite writers of one process take turns on a lock; however a write transaction ends, the next one goes in."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from app import db
from app.db import SQLITE_IMMEDIATE, create_db_engine

METADATA = sa.MetaData()
COUNTER = sa.Table(
    "counter", METADATA, sa.Column("id", sa.Integer, primary_key=True), sa.Column("n", sa.Integer)
)


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> sa.Engine:
    # A lock that leaked would make the next writer fail after a second instead of hanging the suite.
    monkeypatch.setattr(db, "SQLITE_WRITE_WAIT_SECONDS", 1)
    engine = create_db_engine(f"sqlite:///{tmp_path / 'writers.db'}")
    METADATA.create_all(engine)
    with engine.begin() as connection:
        connection.execute(COUNTER.insert().values(id=1, n=0))
    return engine


def _writer(engine: sa.Engine) -> sa.Connection:
    return engine.connect().execution_options(**{SQLITE_IMMEDIATE: True})


def _add_one(connection: sa.Connection) -> None:
    connection.execute(COUNTER.update().values(n=COUNTER.c.n + 1))


def _commit_one(engine: sa.Engine) -> None:
    writer = _writer(engine)
    with writer.begin():
        _add_one(writer)
    writer.close()


def _count(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(sa.select(COUNTER.c.n)) or 0)


def test_every_way_a_write_transaction_ends_lets_the_next_writer_in(engine: sa.Engine) -> None:
    _commit_one(engine)

    rolled_back = _writer(engine)
    transaction = rolled_back.begin()
    _add_one(rolled_back)
    transaction.rollback()
    rolled_back.close()

    # Closed mid-transaction: the pool rolls it back on return.
    abandoned = _writer(engine)
    abandoned.begin()
    _add_one(abandoned)
    abandoned.close()

    # Its connection declared broken mid-transaction.
    broken = _writer(engine)
    broken.begin()
    _add_one(broken)
    broken.invalidate()
    broken.rollback()
    broken.close()

    _commit_one(engine)
    assert _count(engine) == 2


def test_a_writer_that_cannot_begin_does_not_keep_the_turn(engine: sa.Engine) -> None:
    # A second connection holding SQLite's own write lock (as another process would) makes BEGIN IMMEDIATE fail.
    outsider = engine.raw_connection()
    outsider.execute("PRAGMA busy_timeout=0")  # type: ignore[attr-defined]
    outsider.execute("BEGIN IMMEDIATE")  # type: ignore[attr-defined]
    blocked = _writer(engine)
    blocked.connection.dbapi_connection.execute("PRAGMA busy_timeout=0")  # type: ignore[union-attr]
    with pytest.raises(sa.exc.OperationalError, match="locked"):
        blocked.begin()
    blocked.close()
    outsider.execute("ROLLBACK")  # type: ignore[attr-defined]
    outsider.close()

    _commit_one(engine)
    assert _count(engine) == 1


def test_concurrent_writers_all_commit(engine: sa.Engine) -> None:
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(25):
                _commit_one(engine)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert _count(engine) == 8 * 25


def test_a_writer_that_waits_too_long_for_its_turn_gets_an_operational_error(engine: sa.Engine) -> None:
    # The app answers OperationalError with 503 and Retry-After; any other error would be a 500.
    holder = _writer(engine)
    holder.begin()
    waiter = _writer(engine)
    with pytest.raises(sa.exc.OperationalError, match="locked"):
        waiter.begin()
    waiter.close()
    holder.rollback()
    holder.close()
    _commit_one(engine)
    assert _count(engine) == 1
