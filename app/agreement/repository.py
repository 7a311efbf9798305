"""SQL of the agreement domain: the live answers that count, read as columns, and raters' names.

A project can hold a million annotations, so answers are picked out of the JSON column by the database and
come back as one Arrow table of plain strings and integers. PostgreSQL streams the rows as CSV through
COPY, which Arrow parses in C; read row by row, the same million rows cost several times more in Python
objects than all the statistics together. Ids come back as text: they only ever serve as keys.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa
import pyarrow.csv as pa_csv
import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from app.accounts.models import User
from app.annotation.models import Annotation
from app.items.models import Item, Response
from app.projects.models import ProjectMembership

# Rows per round trip where rows are read one by one (SQLite).
BATCH_SIZE = 20_000
SECONDS_PER_DAY = 86_400
_ARROW_TYPES = {"text": pa.string(), "integer": pa.int64(), "present": pa.int64(), "score": pa.int64()}


@dataclass(frozen=True)
class AnswerField:
    """One value picked out of an annotation's answers: its JSON path and what it comes back as: "text"
    (strings; lists as JSON text), "integer", "present" (1 when the answer exists, else 0) or "score"
    (a rating question's score of the response shown at `position` on the rater's screen)."""

    path: tuple[str, ...]
    as_: Literal["text", "integer", "present", "score"]
    position: int = 0

    @property
    def name(self) -> str:
        return ".".join(self.path) + (f"@{self.position}" if self.as_ == "score" else "")

    def expression(self, dialect: str) -> sa.ColumnElement[Any]:
        if self.as_ == "score":
            return _score_of_shown(self.path[0], self.position, dialect)
        value = Annotation.answers[self.path if len(self.path) > 1 else self.path[0]]
        if self.as_ == "integer":
            return value.as_integer()
        text = value.as_string()
        return sa.cast(text.is_not(None), sa.Integer) if self.as_ == "present" else text


def _shown(position: int) -> sa.ColumnElement[str]:
    return Annotation.display_order[position].as_string()


def _score_of_shown(question_name: str, position: int, dialect: str) -> sa.ColumnElement[int]:
    """Scores are keyed by response id; the id comes from the screen order, so a rating answer reads
    as one value per position instead of one row per response."""
    if dialect == "postgresql":
        return sa.cast(Annotation.answers[question_name].op("->>")(_shown(position)), sa.Integer)
    path = sa.literal('$."' + question_name + '"."') + _shown(position) + '"'
    return sa.cast(sa.func.json_extract(Annotation.answers, path), sa.Integer)


def _excluded_raters(project_id: uuid.UUID) -> sa.Select[uuid.UUID]:
    return sa.select(ProjectMembership.user_id).where(
        ProjectMembership.project_id == project_id, ProjectMembership.excluded_at.is_not(None)
    )


def _counted(project_id: uuid.UUID) -> list[sa.ColumnElement[bool]]:
    """Live answers of raters who are not excluded; gold and training answers measure raters, not items.

    Corrections overwrite the annotation row (earlier content moves to annotation_revisions), so each
    row already holds the latest revision.
    """
    return [
        Annotation.project_id == project_id,
        Annotation.purpose == "live",
        Annotation.user_id.not_in(_excluded_raters(project_id)),
    ]


def _as_text(column: Any) -> sa.ColumnElement[str]:
    return sa.cast(column, sa.String)


def _day() -> sa.ColumnElement[int]:
    """Whole days since 1970-01-01 UTC of the annotation."""
    return sa.cast(sa.extract("epoch", Annotation.created_at), sa.BigInteger) // SECONDS_PER_DAY


def _response_at(position: int) -> Any:
    return aliased(Response, name=f"response_{position}")


def _read(session: Session, statement: sa.Select[Any], schema: pa.Schema) -> pa.Table:
    """Every row of a SELECT as one Arrow table with the given column names and types."""
    if session.get_bind().dialect.name == "postgresql":
        return _read_by_copy(session, statement, schema)
    batches = [
        pa.RecordBatch.from_arrays(
            [
                pa.array(column, type=field.type)
                for column, field in zip(zip(*rows, strict=True), schema, strict=True)
            ],
            schema=schema,
        )
        for rows in session.execute(statement.execution_options(yield_per=BATCH_SIZE)).partitions()
    ]
    return pa.Table.from_batches(batches, schema=schema)


def _read_by_copy(session: Session, statement: sa.Select[Any], schema: pa.Schema) -> pa.Table:
    """COPY (SELECT ...) TO STDOUT on the session's own connection, so it sees the same transaction.
    Every bound value is a project id, a fixed word or a question name (letters, digits, underscores),
    rendered as an escaped literal because COPY takes no parameters."""
    connection = session.connection()
    sql = statement.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
    buffer = io.BytesIO()
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
        for chunk in copy:
            buffer.write(chunk)
    if buffer.tell() == 0:
        return schema.empty_table()
    buffer.seek(0)
    # In PostgreSQL's CSV an unquoted empty field is NULL and "" an empty string.
    convert = pa_csv.ConvertOptions(
        column_types=schema, strings_can_be_null=True, quoted_strings_can_be_null=False
    )
    return pa_csv.read_csv(
        buffer, read_options=pa_csv.ReadOptions(column_names=schema.names), convert_options=convert
    )


def read_counted_answers(
    session: Session,
    project_id: uuid.UUID,
    fields: Sequence[AnswerField],
    *,
    stored_first: bool = False,
    positions: int = 1,
) -> pa.Table:
    """One row per counted annotation: item, rater, day, shown.0 .. shown.N-1 (the response ids in screen
    order, N = positions), optionally first (the item's response stored first, for preference answers),
    then one column per field, named field.name."""
    dialect = session.get_bind().dialect.name
    first = _response_at(0)
    columns: list[tuple[str, pa.DataType, Any]] = [
        ("item", pa.string(), _as_text(Annotation.item_id)),
        ("rater", pa.string(), _as_text(Annotation.user_id)),
        ("day", pa.int64(), _day()),
    ]
    columns += [(f"shown.{i}", pa.string(), _shown(i)) for i in range(max(positions, 1))]
    if stored_first:
        columns.append(("first", pa.string(), _as_text(first.id)))
    columns += [(field.name, _ARROW_TYPES[field.as_], field.expression(dialect)) for field in fields]
    statement = sa.select(*(expression.label(f"c{i}") for i, (_, _, expression) in enumerate(columns)))
    statement = statement.select_from(Annotation).where(*_counted(project_id))
    if stored_first:
        statement = statement.outerjoin(
            first, sa.and_(first.item_id == Annotation.item_id, first.position == 0)
        )
    return _read(session, statement, pa.schema([(name, kind) for name, kind, _ in columns]))


def count_response_positions(session: Session, project_id: uuid.UUID) -> int:
    """The most responses any live item of the project has."""
    top = session.scalar(
        sa.select(sa.func.max(Response.position))
        .join(Item, Item.id == Response.item_id)
        .where(Item.project_id == project_id, Item.purpose == "live")
    )
    return 0 if top is None else int(top) + 1


def read_preference_choices(session: Session, project_id: uuid.UUID, question_name: str) -> pa.Table:
    """One row per counted annotation: item, rater, choice, strength, and the item's two stored responses
    (first, second) with the models behind them (model_a, model_b)."""
    first, second = _response_at(0), _response_at(1)
    columns = [
        ("item", pa.string(), _as_text(Annotation.item_id)),
        ("rater", pa.string(), _as_text(Annotation.user_id)),
        ("choice", pa.string(), Annotation.answers[(question_name, "choice")].as_string()),
        ("strength", pa.int64(), Annotation.answers[(question_name, "strength")].as_integer()),
        ("first", pa.string(), _as_text(first.id)),
        ("second", pa.string(), _as_text(second.id)),
        ("model_a", pa.string(), first.model),
        ("model_b", pa.string(), second.model),
    ]
    statement = (
        sa.select(*(expression.label(name) for name, _, expression in columns))
        .select_from(Annotation)
        .outerjoin(first, sa.and_(first.item_id == Annotation.item_id, first.position == 0))
        .outerjoin(second, sa.and_(second.item_id == Annotation.item_id, second.position == 1))
        .where(*_counted(project_id))
    )
    return _read(session, statement, pa.schema([(name, kind) for name, kind, _ in columns]))


def count_excluded_raters(session: Session, project_id: uuid.UUID) -> int:
    count = sa.select(sa.func.count()).select_from(_excluded_raters(project_id).subquery())
    return int(session.scalar(count) or 0)


def usernames(session: Session, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not user_ids:
        return {}
    rows = session.execute(sa.select(User.id, User.username).where(User.id.in_(list(user_ids))))
    return {user_id: name for user_id, name in rows}
