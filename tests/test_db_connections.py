"""Pooled PostgreSQL connections: checked before use only after sitting idle, replaced when found dead."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from app import db
from app.config import Settings
from tests.conftest import POSTGRES_SERVER, _backend

pytestmark = pytest.mark.skipif(
    _backend() != "postgresql", reason="the connection pool checks are PostgreSQL's"
)


@pytest.fixture
def engine(migrated: str, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.2)
    engine = db.create_db_engine(migrated, settings)
    yield engine
    engine.dispose()


@pytest.fixture
def pings(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real_ping = engine.dialect.do_ping

    def counted(dbapi_connection):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real_ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return calls


def _backend_pid(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(sa.text("SELECT pg_backend_pid()")))


def _terminate(pid: int) -> None:
    admin = sa.create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()


def test_a_connection_in_steady_use_is_not_pinged(engine: sa.Engine, pings: list[int]) -> None:
    first = _backend_pid(engine)
    for _ in range(5):
        assert _backend_pid(engine) == first
    assert pings == []


def test_an_idle_connection_is_pinged_and_a_dead_one_replaced_unseen(
    engine: sa.Engine, pings: list[int]
) -> None:
    first = _backend_pid(engine)
    time.sleep(0.3)
    assert _backend_pid(engine) == first
    assert len(pings) == 1

    _terminate(first)
    time.sleep(0.3)
    # The request never sees the dead connection: the ping finds it and the pool connects anew.
    replaced = _backend_pid(engine)
    assert replaced != first
    assert len(pings) == 2


def test_a_connection_that_dies_in_steady_use_fails_one_request_then_the_pool_reconnects(
    engine: sa.Engine, pings: list[int]
) -> None:
    first = _backend_pid(engine)
    _terminate(first)
    with pytest.raises(sa.exc.OperationalError) as raised:
        _backend_pid(engine)
    assert raised.value.connection_invalidated
    assert _backend_pid(engine) != first
    assert pings == []
