"""The migrations build the schema the models describe, and go down and up again."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient

from app.db import create_db_engine
from app.migrations_state import alembic_config, head_revision, migration_status
from app.models import Base
from tests.conftest import _backend, _create_postgres_database, _drop_postgres_database
from tests.factories import Persona, create_project, import_lines


def _fresh_url(tmp_path) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    if _backend() == "postgresql":
        return _create_postgres_database()
    return f"sqlite:///{tmp_path / f'm-{uuid.uuid4().hex[:6]}.db'}", ""


def test_models_and_migrations_agree(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        diff = compare_metadata(
            MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata
        )
    assert diff == []


def test_downgrade_to_base_and_upgrade_again(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url, name = _fresh_url(tmp_path)
    try:
        config = alembic_config(url)
        command.upgrade(config, "head")
        command.downgrade(config, "base")
        engine = create_db_engine(url)
        with engine.connect() as connection:
            tables = set(sa.inspect(connection).get_table_names()) - {"alembic_version"}
        assert tables == set()
        command.upgrade(config, "head")
        assert migration_status(engine) == {
            "ready": True,
            "database": "ok",
            "revision": head_revision(),
            "head": head_revision(),
        }
        engine.dispose()
    finally:
        if name:
            _drop_postgres_database(name)


@pytest.mark.skipif(_backend() != "postgresql", reason="column compression is a PostgreSQL setting")
def test_long_prompts_and_responses_are_stored_with_lz4(
    client: TestClient, connection: sa.Connection, admin: Persona
) -> None:
    project = create_project(client, admin)
    # Long enough to be compressed (PostgreSQL compresses values over about 2 kB), and compressible.
    long_text = "The answer walks through each step and why it matters. " * 80
    line = {
        "external_id": "long",
        "prompt": long_text,
        "responses": [{"text": long_text, "model": "a"}, {"text": long_text + "!", "model": "b"}],
    }
    import_lines(client, admin, project["id"], [line])
    methods = connection.exec_driver_sql(
        "SELECT pg_column_compression(i.prompt), pg_column_compression(r.text) FROM items i "
        "JOIN responses r ON r.item_id = i.id WHERE i.project_id = %(project)s",
        {"project": project["id"]},
    ).all()
    assert methods == [("lz4", "lz4"), ("lz4", "lz4")]
