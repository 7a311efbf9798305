"""Test fixtures: a migrated database per run (SQLite or PostgreSQL), one rolled-back transaction per test."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings, get_settings
from app.db import create_db_engine, database
from app.migrations_state import upgrade_to_head
from tests.factories import Persona, make_persona

POSTGRES_SERVER = os.environ.get(
    "PREFHUB_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    """A loopback port nobody listens on now, for a server a test starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _backend() -> str:
    return os.environ.get("PREFHUB_TEST_DATABASE", "sqlite")


def _create_postgres_database() -> tuple[str, str]:
    name = f"prefhub_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return POSTGRES_SERVER.rsplit("/", 1)[0] + f"/{name}", name


def _drop_postgres_database(name: str) -> None:
    admin = sa.create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if _backend() == "postgresql":
        url, name = _create_postgres_database()
        yield url
        _drop_postgres_database(name)
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    data_dir = tmp_path_factory.mktemp("data")
    overrides = {
        "PREFHUB_ENV": "test",
        "PREFHUB_DATABASE_URL": database_url,
        "PREFHUB_DATA_DIR": str(data_dir),
        "PREFHUB_LOG_JSON": "false",
        "PREFHUB_LOG_LEVEL": "WARNING",
        "PREFHUB_SECRET_KEY": "t" * 40,
    }
    saved = {k: os.environ.get(k) for k in overrides}
    os.environ.update(overrides)
    get_settings.cache_clear()
    yield get_settings()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def migrated(settings: Settings) -> str:
    upgrade_to_head(settings.database_url)
    return settings.database_url


@pytest.fixture(scope="session")
def engine(migrated: str, settings: Settings) -> Iterator[sa.Engine]:
    engine = create_db_engine(migrated, settings)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def app(engine: sa.Engine, settings: Settings):  # type: ignore[no-untyped-def]
    from app.main import create_app

    return create_app(settings)


@pytest.fixture
def connection(engine: sa.Engine, app) -> Iterator[sa.Connection]:  # type: ignore[no-untyped-def]
    """Every session of the test joins one outer transaction that is rolled back at the end."""
    conn = engine.connect()
    outer = conn.begin()
    database.use_factory(
        sessionmaker(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
    )
    yield conn
    database.use_factory(None)
    outer.rollback()
    conn.close()


@pytest.fixture
def session(connection: sa.Connection) -> Iterator[Session]:
    session = database.new_session()
    yield session
    session.close()


@pytest.fixture
def client(app, connection: sa.Connection) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client


@pytest.fixture
def admin(session: Session) -> Persona:
    return make_persona(session, "admin", "admin")


@pytest.fixture
def annotator(session: Session) -> Persona:
    return make_persona(session, "annotator", "annotator")


@pytest.fixture
def second_annotator(session: Session) -> Persona:
    return make_persona(session, "second_annotator", "annotator")


@pytest.fixture
def outsider(session: Session) -> Persona:
    return make_persona(session, "outsider", "annotator")


def pytest_report_header(config: pytest.Config) -> str:
    return f"database backend: {_backend()}"


ROOT = Path(__file__).resolve().parents[1]


# --- A real server and a real browser, for UI tests -------------------------------------------------------

CHROMIUM = Path(os.environ.get("PREFHUB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@dataclass
class LiveServer:
    url: str
    sessions: sessionmaker[Session]


@pytest.fixture(scope="module")
def live_server(app, settings: Settings) -> Iterator[LiveServer]:  # type: ignore[no-untyped-def]
    """The app served by uvicorn on a free loopback port, on its own freshly migrated database (real commits)."""
    import threading
    import time

    import uvicorn

    if _backend() == "postgresql":
        url, name = _create_postgres_database()
    else:
        url, name = f"sqlite:///{Path(settings.data_dir) / f'live-{uuid.uuid4().hex[:8]}.db'}", ""
    upgrade_to_head(url)
    engine = create_db_engine(url, settings)
    database.use_engine(engine)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    yield LiveServer(
        url=f"http://127.0.0.1:{port}", sessions=sessionmaker(bind=engine, expire_on_commit=False)
    )
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()
    if name:
        _drop_postgres_database(name)
    database.configure(settings.database_url, settings)


@pytest.fixture(scope="session")
def browser():  # type: ignore[no-untyped-def]
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium fonts-noto-cjk)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield instance
        instance.close()


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    page = context.new_page()
    yield page
    context.close()
