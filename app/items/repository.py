"""SQL of the items domain's import: which dedup keys a project holds, and batches of new rows written fast.

Rows come as tuples in ITEM_COLUMNS / RESPONSE_COLUMNS order, in a form neither database needs to convert
much: ids as 16 raw bytes, JSON as encoded bytes (see encode_json), created_at as an aware datetime.
PostgreSQL takes them through a binary COPY, which the server reads without parsing text; SQLite through
one executemany with the values as SQLAlchemy itself would store them (ids as hex, JSON as text).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Collection
from typing import Any

import orjson
import sqlalchemy as sa
from psycopg import adapters
from psycopg.adapt import Dumper
from psycopg.pq import Format
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from app.items.models import Item

# Column name and PostgreSQL type of each value in a row, in row order.
ITEM_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "uuid"),
    ("project_id", "uuid"),
    ("seq", "int8"),
    ("external_id", "varchar"),
    ("dedup_key", "varchar"),
    ("content_hash", "varchar"),
    ("source_group", "varchar"),
    ("prompt", "jsonb"),
    ("metadata", "jsonb"),
    ("purpose", "varchar"),
    ("gold", "jsonb"),
    ("random_key", "int4"),
    ("annotation_count", "int4"),
    ("assigned_count", "int4"),
    ("is_complete", "bool"),
    ("created_at", "timestamptz"),
)
RESPONSE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "uuid"),
    ("item_id", "uuid"),
    ("position", "int4"),
    ("source_position", "int4"),
    ("text", "text"),
    ("model", "varchar"),
    ("metadata", "jsonb"),
)
Row = tuple[Any, ...]


def encode_json(value: Any) -> bytes:
    """JSON for a JSON column; orjson, except for integers beyond 64 bits, which only json can write."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value).encode()


def existing_dedup_keys(session: Session, project_id: uuid.UUID, keys: Collection[str]) -> set[str]:
    """The keys among `keys` that the project's items already have: one query."""
    if not keys:
        return set()
    if session.get_bind().dialect.name == "postgresql":
        # One array parameter: a thousand-value IN list costs more to build, send and plan than the lookup.
        matches = Item.dedup_key == sa.any_(sa.bindparam("keys", list(keys), type_=ARRAY(sa.String)))
    else:
        matches = Item.dedup_key.in_(keys)
    query = sa.select(Item.dedup_key).where(Item.project_id == project_id, matches)
    return set(session.scalars(query))


def insert_rows(session: Session, item_rows: list[Row], response_rows: list[Row]) -> None:
    """Write new items, then their responses, in the session's transaction."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            _copy_binary(cursor, "items", ITEM_COLUMNS, item_rows)
            _copy_binary(cursor, "responses", RESPONSE_COLUMNS, response_rows)
        finally:
            cursor.close()
        return
    _insert_sqlite(connection, "items", ITEM_COLUMNS, item_rows)
    _insert_sqlite(connection, "responses", RESPONSE_COLUMNS, response_rows)


class _RawUuidDumper(Dumper):
    """A uuid given as its 16 bytes, which are its binary wire format."""

    format = Format.BINARY
    oid = adapters.types["uuid"].oid

    def dump(self, obj: bytes) -> bytes:
        return obj


class _EncodedJsonbDumper(Dumper):
    """JSON text already encoded: binary jsonb is a version byte (1) and the text."""

    format = Format.BINARY
    oid = adapters.types["jsonb"].oid

    def dump(self, obj: bytes) -> bytes:
        return b"\x01" + obj


def _copy_binary(cursor: Any, table: str, columns: tuple[tuple[str, str], ...], rows: list[Row]) -> None:
    if not rows:
        return
    # Registered on this cursor only, by type oid: set_types picks the dumper of each column by its oid.
    cursor.adapters.register_dumper(None, _RawUuidDumper)
    cursor.adapters.register_dumper(None, _EncodedJsonbDumper)
    names = ", ".join(name for name, _ in columns)
    with cursor.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types([kind for _, kind in columns])
        for row in rows:
            copy.write_row(row)


def _insert_sqlite(
    connection: sa.Connection, table: str, columns: tuple[tuple[str, str], ...], rows: list[Row]
) -> None:
    if not rows:
        return
    converters = _sqlite_converters(connection.dialect, table, columns)
    values = []
    for row in rows:
        value = list(row)
        for index, convert in converters:
            value[index] = convert(value[index])
        values.append(tuple(value))
    names = ", ".join(name for name, _ in columns)
    marks = ", ".join("?" for _ in columns)
    connection.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({marks})", values)


def _sqlite_converters(
    dialect: sa.Dialect, table: str, columns: tuple[tuple[str, str], ...]
) -> list[tuple[int, Callable[[Any], Any]]]:
    """Per column, how SQLAlchemy would store the value: ids as 32 hex digits, JSON as text (None as the
    JSON null, like the JSON type), datetimes by the column type's own bind processor."""
    converters: list[tuple[int, Callable[[Any], Any]]] = []
    for index, (name, kind) in enumerate(columns):
        if kind == "uuid":
            converters.append((index, bytes.hex))
        elif kind == "jsonb":
            converters.append((index, _json_text))
        elif kind == "timestamptz":
            column_type = Item.metadata.tables[table].c[name].type
            processor = column_type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                converters.append((index, processor))
    return converters


def _json_text(value: bytes | None) -> str:
    return "null" if value is None else value.decode()
