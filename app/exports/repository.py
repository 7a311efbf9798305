"""Queries of the exports domain: ordered streams of items, responses and counted annotations; snapshots."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from operator import itemgetter
from typing import Any, Literal

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by
from sqlalchemy.orm import Session, aliased

from app.accounts.models import User
from app.annotation.models import Annotation
from app.db import utcnow
from app.exports.models import Export
from app.items.models import Item, Response
from app.projects.models import ProjectMembership
from app.projects.questions import BOTH_BAD, TIE

STREAM_BATCH = 5000
# Rows of prompts or answers fetched at once: 5,000 answers of 40k characters would be 200 MB.
TEXT_STREAM_BATCH = 500
# What a tally row carries for the prompt and the two texts: see stream_preference_tallies.
Content = Literal["texts", "lengths"]
# Flags that say the item itself is unusable, whichever response a rater preferred.
BLOCKING_FLAGS = ("unsafe", "broken_prompt")
# Every stream is ordered by item id, so they merge item by item; both databases can walk that order in
# an index (items' and responses' keys, annotations by project and item) instead of sorting wide rows.


def _stream(session: Session, statement: sa.Select[Any], batch: int = STREAM_BATCH) -> Iterator[Any]:
    # yield_per makes PostgreSQL use a server-side cursor: memory stays flat however large the project.
    # Core rows through the session's connection skip the ORM's per-row bookkeeping.
    result = session.connection().execute(statement.execution_options(yield_per=batch))
    try:
        # Whole partitions skip the per-row fetch machinery.
        for partition in result.partitions():
            yield from partition
    finally:
        result.close()


def _pipelined(session: Session, statement: sa.Select[Any], rows_per_chunk: int = 100) -> Iterator[Any]:
    """PostgreSQL rows as the server produces them, for a single query that has the connection to itself.

    A server-side cursor computes the next batch only when asked for it, so server and client take turns;
    here the server keeps sending while this process decodes, and may plan the query in parallel.
    """
    connection = session.connection()
    compiled = statement.compile(dialect=connection.dialect)
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        yield from cursor.stream(str(compiled), compiled.params, size=rows_per_chunk)
    finally:
        cursor.close()


def without_jit(session: Session) -> None:
    """PostgreSQL: no JIT compilation for the rest of this transaction.

    An export's scans are costed high enough to be compiled, which took a second of each export and repaid
    nothing: the work per row is a few comparisons.
    """
    session.execute(sa.text("SET LOCAL jit = off"))


def _live_items(project_id: uuid.UUID) -> sa.ColumnElement[bool]:
    return sa.and_(Item.project_id == project_id, Item.purpose == "live")


def stream_items(session: Session, project_id: uuid.UUID, *, with_prompt: bool) -> Iterator[Any]:
    """(id, external_id[, prompt]) of every live item."""
    columns: list[Any] = [Item.id, Item.external_id]
    if with_prompt:
        columns.append(Item.prompt)
    statement = sa.select(*columns).where(_live_items(project_id)).order_by(Item.id)
    return _stream(session, statement, TEXT_STREAM_BATCH if with_prompt else STREAM_BATCH)


def stream_responses(session: Session, project_id: uuid.UUID, *, with_text: bool) -> Iterator[Any]:
    """(item_id, id, position[, text, model]) of every response of a live item, by position."""
    columns: list[Any] = [Response.item_id, Response.id, Response.position]
    if with_text:
        columns += [Response.text, Response.model]
    statement = (
        sa.select(*columns)
        .join(Item, Item.id == Response.item_id)
        .where(_live_items(project_id))
        .order_by(Response.item_id, Response.position)
    )
    return _stream(session, statement, TEXT_STREAM_BATCH if with_text else STREAM_BATCH)


def _counted(project_id: uuid.UUID) -> sa.ColumnElement[bool]:
    # Gold and training work, and raters an admin excluded, never reach a dataset. Annotations of items that
    # are no longer live are skipped where the streams merge, since the item stream holds live items only.
    return sa.and_(
        Annotation.project_id == project_id,
        Annotation.purpose == "live",
        ProjectMembership.excluded_at.is_(None),
    )


def _annotations_select(project_id: uuid.UUID, columns: list[Any]) -> sa.Select[Any]:
    return (
        sa.select(*columns)
        .outerjoin(
            ProjectMembership,
            sa.and_(
                ProjectMembership.project_id == Annotation.project_id,
                ProjectMembership.user_id == Annotation.user_id,
            ),
        )
        .where(_counted(project_id))
        .order_by(Annotation.item_id, Annotation.created_at, Annotation.id)
    )


def _blocking_flag() -> sa.ColumnElement[bool]:
    # Matching the JSON text reads the same on both databases and spares parsing every flag list.
    as_text = sa.cast(Annotation.flags, sa.Text)
    return sa.or_(*(as_text.like(f'%"{flag}"%') for flag in BLOCKING_FLAGS))


def _vote_columns(preference: str | None, ranking: str | None, scores: list[str]) -> list[Any]:
    nothing = sa.null()
    return [
        Annotation.user_id,
        _blocking_flag(),
        Annotation.guidelines_version,
        Annotation.answers[(preference, "choice")].as_string() if preference else nothing,
        Annotation.answers[(preference, "strength")].as_integer() if preference else nothing,
        Annotation.answers[ranking] if ranking else nothing,
        *(Annotation.answers[name] for name in scores),
    ]


def stream_votes(
    session: Session,
    project_id: uuid.UUID,
    *,
    preference: str | None,
    ranking: str | None,
    scores: list[str],
) -> Iterator[tuple[Any, list[Sequence[Any]]]]:
    """(item_id, votes) per item with counted annotations, each vote being
    (rater, blocked, guidelines_version, choice, strength, ranking, *scores) in the order they were given.

    A preference answer arrives as its two scalars, so only rankings and ratings are parsed as JSON. The rater
    is an opaque key: a UUID, or its text where PostgreSQL grouped the votes.
    """
    columns = _vote_columns(preference, ranking, scores)
    if session.get_bind().dialect.name == "postgresql":
        return _grouped_votes(session, project_id, columns)
    rows = _stream(session, _annotations_select(project_id, [Annotation.item_id, *columns]))
    return ((item_id, [row[1:] for row in group]) for item_id, group in groupby(rows, key=itemgetter(0)))


def _grouped_votes(
    session: Session, project_id: uuid.UUID, columns: list[Any]
) -> Iterator[tuple[Any, list[Sequence[Any]]]]:
    # PostgreSQL gathers each item's votes into one JSON array: a third of the rows cross the wire, and the
    # grouping runs in the server while this process writes the previous rows.
    votes = sa.func.json_agg(
        aggregate_order_by(sa.func.json_build_array(*columns), Annotation.created_at, Annotation.id)
    )
    statement = (
        _annotations_select(project_id, [Annotation.item_id, votes])
        .group_by(Annotation.item_id)
        .order_by(None)
        .order_by(Annotation.item_id)
    )
    return _stream(session, statement)


@dataclass(frozen=True)
class _Classified:
    """Counted live votes joined to their item's two responses, and what a preference choice is read as."""

    answers: Any
    # What a choice names: the first response's id, the second's, a tie, both bad (classes 0 to 3).
    keys: list[Any]
    vote_class: Any
    joins: tuple[tuple[Any, Any], ...]
    where: sa.ColumnElement[bool]

    def select(self, *columns: Any) -> sa.Select[Any]:
        """The votes with these columns, in the order they were given within each item."""
        statement = sa.select(*columns)
        for target, on in self.joins:
            statement = statement.join(target, on)
        return statement.where(self.where).order_by(Annotation.item_id, Annotation.created_at, Annotation.id)


def _classified_votes(project_id: uuid.UUID, question: str) -> _Classified:
    vote_first, vote_second = aliased(Response, name="vote_first"), aliased(Response, name="vote_second")
    keys = [
        sa.cast(vote_first.id, sa.Text),
        sa.cast(vote_second.id, sa.Text),
        sa.literal(TIE),
        sa.literal(BOTH_BAD),
    ]
    # Plain -> and ->> steps: their parameters need no conversion on the way to the driver.
    answers = sa.type_coerce(Annotation.answers, JSONB)
    choice = answers[question]["choice"].astext
    excluded = sa.select(ProjectMembership.user_id).where(
        ProjectMembership.project_id == project_id, ProjectMembership.excluded_at.is_not(None)
    )
    return _Classified(
        answers=answers,
        keys=keys,
        # The simple CASE form reads the choice out of the JSON once, not once per branch.
        vote_class=sa.case({key: k for k, key in enumerate(keys)}, value=choice),
        joins=(
            (vote_first, sa.and_(vote_first.item_id == Annotation.item_id, vote_first.position == 0)),
            (vote_second, sa.and_(vote_second.item_id == Annotation.item_id, vote_second.position == 1)),
        ),
        where=sa.and_(
            Annotation.project_id == project_id,
            Annotation.purpose == "live",
            Annotation.user_id.not_in(excluded),
        ),
    )


# One vote of stream_preference_classes as PostgreSQL's binary COPY writes it: the number of fields, then
# each field's length and value (item id, rater id, class), all fixed-width and never NULL.
CLASS_RECORD = np.dtype(
    [
        ("fields", ">i2"),
        ("item_length", ">i4"),
        ("item", "V16"),
        ("rater_length", ">i4"),
        ("rater", "V16"),
        ("class_length", ">i4"),
        ("class", ">i2"),
    ]
)
# The binary COPY header: signature, flags and the length of an (empty) header extension.
COPY_BINARY_HEADER = 19
# Votes decoded at once: 2.4 MB of records.
CLASS_RECORDS_PER_BLOCK = 50_000


def stream_preference_classes(
    session: Session, project_id: uuid.UUID, *, question: str
) -> Iterator[np.ndarray]:
    """PostgreSQL: every counted vote on a live item that makes a choice on one preference question, as
    CLASS_RECORD arrays of whole items: by item id, and within an item in the order the votes were given,
    as stream_preference_tallies takes them. Dawid-Skene reads only these three numbers per vote; binary
    COPY hands them over without a Python object per value (a third of the time of the tallies' arrays).
    """
    classified = _classified_votes(project_id, question)
    vote_class = sa.cast(classified.vote_class, sa.SmallInteger)
    votes = (
        classified.select(Annotation.item_id, Annotation.user_id, vote_class.label("class"))
        .join(Item, Item.id == Annotation.item_id)
        .where(_live_items(project_id), classified.vote_class.is_not(None))
    )
    connection = session.connection()
    # COPY takes no parameters: the values bound here are the project id and the question's name.
    sql = votes.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
    driver = connection.connection.driver_connection
    assert driver is not None
    pending = bytearray()
    started = False
    size = CLASS_RECORD.itemsize
    with driver.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT binary)") as copy:
        for data in copy:
            pending += data
            if not started:
                if len(pending) < COPY_BINARY_HEADER:
                    continue
                _check_copy_header(bytes(pending[:COPY_BINARY_HEADER]))
                del pending[:COPY_BINARY_HEADER]
                started = True
            if len(pending) < CLASS_RECORDS_PER_BLOCK * size:
                continue
            records = _class_records(pending)
            # The last item's votes may go on in the next data: they wait, so every block holds whole items.
            earlier = np.flatnonzero(records["item"] != records["item"][-1])
            if earlier.size:
                whole = int(earlier[-1]) + 1
                yield records[:whole]
                del pending[: whole * size]
    # What remains is the last records, then the trailer (a field count of -1).
    if len(pending) >= size:
        yield _class_records(pending)


def _check_copy_header(header: bytes) -> None:
    if header[:11] != b"PGCOPY\n\xff\r\n\x00" or header[15:19] != b"\x00\x00\x00\x00":
        raise RuntimeError("PostgreSQL's binary COPY header is not the one this reader knows")


def _class_records(pending: bytearray) -> np.ndarray:
    """The whole records at the start of pending, checked against CLASS_RECORD's layout."""
    size = CLASS_RECORD.itemsize
    records = np.frombuffer(bytes(pending[: len(pending) // size * size]), dtype=CLASS_RECORD)
    if not ((records["fields"] == 3).all() and (records["class_length"] == 2).all()):
        raise RuntimeError("PostgreSQL's binary COPY sent votes in a layout this reader does not know")
    return records


def stream_preference_tallies(
    session: Session,
    project_id: uuid.UUID,
    *,
    question: str,
    score_question: str | None,
    margins: dict[int, float] | None,
    content: Content,
    with_votes: bool,
) -> Iterator[Any]:
    """PostgreSQL: each live item with counted votes and the vote tallies of one preference question.

    A row is (id, external_id, prompt, first id, first text, second id, second text, counted votes, votes
    for the first response, the second, tie and both bad, mean margin of the first's and of the second's
    votes, flagged, mean score of the first and of the second), then with `with_votes` the raters, classes
    (0, 1, 2 = tie, 3 = both bad, NULL = no choice) and guidelines versions of every vote. `content` says
    what stands for the prompt and texts: themselves, or the prompt and the texts' lengths in bytes (read
    from the stored value's header, the text itself is never read); only with the texts are the external
    id and response ids read, otherwise they are NULL. Sums run in the order the votes were
    given, as the general pipeline adds them, so both give the same floats.
    """
    # Each vote is classified once, in the order the votes were given; the grouped tallies then meet the items
    # in one merge on item id. Looking each item's votes up by index (a lateral join) took twice as long.
    classified = _classified_votes(project_id, question)
    answers = classified.answers
    strength = sa.cast(answers[question]["strength"].astext, sa.Integer)
    margin: sa.ColumnElement[Any]
    if margins is None:
        margin = sa.cast(strength, sa.Float)
    elif not margins:
        margin = sa.cast(sa.null(), sa.Float)
    else:
        margin = sa.case({k: sa.cast(sa.literal(v), sa.Float) for k, v in margins.items()}, value=strength)
    keys = classified.keys
    vote_columns: list[Any] = [
        Annotation.item_id,
        classified.vote_class.label("class"),
        margin.label("margin"),
        _blocking_flag().label("blocked"),
    ]
    for k in (0, 1):
        if score_question is None:
            vote_columns.append(sa.cast(sa.null(), sa.Float).label(f"score_{k}"))
            continue
        score = answers[score_question].op("->")(keys[k])
        is_number = sa.func.jsonb_typeof(score) == "number"
        vote_columns.append(sa.case((is_number, sa.cast(score, sa.Float))).label(f"score_{k}"))
    vote_columns += [sa.cast(Annotation.user_id, sa.Text).label("rater"), Annotation.guidelines_version]
    # The ORDER BY keeps the subquery whole, so sums and arrays take the votes in the order they were given,
    # as the general pipeline adds them, and both give the same floats.
    vote = classified.select(*vote_columns).subquery("vote")
    columns: list[Any] = [sa.func.count().label("n_counted")]
    columns += [sa.func.count().filter(vote.c["class"] == k).label(f"class_{k}") for k in range(len(keys))]
    columns += [sa.func.avg(vote.c.margin).filter(vote.c["class"] == k).label(f"margin_{k}") for k in (0, 1)]
    columns.append(sa.func.bool_or(vote.c.blocked).label("flagged"))
    columns += [sa.func.avg(vote.c[f"score_{k}"]).label(f"score_{k}") for k in (0, 1)]
    if with_votes:
        columns += [
            sa.func.array_agg(vote.c.rater).label("raters"),
            sa.func.array_agg(vote.c["class"]).label("classes"),
            sa.func.array_agg(vote.c.guidelines_version).label("versions"),
        ]
    # Materialized, the tallies are made once; as a subquery the planner could run them in every parallel worker.
    tallies = (
        sa.select(vote.c.item_id, *columns).group_by(vote.c.item_id).cte("tally").prefix_with("MATERIALIZED")
    )
    # Per response position: (what to join, on what, the response id, what stands for its text).
    sides: list[tuple[Any, Any, Any, Any]] = []
    for position in (0, 1):
        if content == "lengths":
            lengths = _response_lengths(project_id, position)
            sides.append((lengths, lengths.c.item_id == Item.id, lengths.c.id, lengths.c.length))
            continue
        response = aliased(Response, name="first" if position == 0 else "second")
        on = sa.and_(response.item_id == Item.id, response.position == position)
        sides.append((response, on, response.id, response.text))
    (first, first_on, first_id, first_text), (second, second_on, second_id, second_text) = sides
    statement = (
        sa.select(
            Item.id,
            # Only rows to write need the ids; a count reads the row without them.
            Item.external_id if content == "texts" else sa.null(),
            Item.prompt,
            sa.cast(first_id, sa.Text) if content == "texts" else sa.null(),
            first_text,
            sa.cast(second_id, sa.Text) if content == "texts" else sa.null(),
            second_text,
            *(c for c in tallies.c if c.name != "item_id"),
        )
        .join(first, first_on)
        .join(second, second_on)
        .join(tallies, tallies.c.item_id == Item.id)
        .where(_live_items(project_id))
        .order_by(Item.id)
    )
    return _pipelined(session, statement)


def _response_lengths(project_id: uuid.UUID, position: int) -> sa.Subquery:
    """(item_id, id, length in bytes) of the project's responses at one position.

    OFFSET 0 keeps the subquery whole, so the length is taken where the response is read. Pulled up into the
    outer query, the text would travel up to the final SELECT, and the planner, costing rows that wide,
    chose an index lookup per item over hash joins (6.4 s against 5.0 s at 1M annotations).
    """
    item = aliased(Item, name=f"item_{position}")
    return (
        sa.select(Response.item_id, Response.id, sa.func.octet_length(Response.text).label("length"))
        .join(item, item.id == Response.item_id)
        .where(item.project_id == project_id, Response.position == position)
        .offset(0)
        .subquery("first" if position == 0 else "second")
    )


def stream_pair_texts(session: Session, item_ids: Sequence[uuid.UUID]) -> Iterator[Any]:
    """(id, prompt, first text, second text) of the given items, by item id."""
    first, second = aliased(Response, name="first"), aliased(Response, name="second")
    statement = (
        sa.select(Item.id, Item.prompt, first.text, second.text)
        .join(first, sa.and_(first.item_id == Item.id, first.position == 0))
        .join(second, sa.and_(second.item_id == Item.id, second.position == 1))
        .where(Item.id.in_(item_ids))
        .order_by(Item.id)
    )
    return _stream(session, statement, TEXT_STREAM_BATCH)


def count_judged_items(session: Session, project_id: uuid.UUID) -> int:
    """Items with at least one live annotation: about the rows a tallied export walks, for its progress."""
    statement = sa.select(sa.func.count(sa.distinct(Annotation.item_id))).where(
        Annotation.project_id == project_id, Annotation.purpose == "live"
    )
    return int(session.scalar(statement) or 0)


def count_counted_raters(session: Session, project_id: uuid.UUID) -> int:
    """Raters with at least one counted annotation on a live item: the raters a dataset draws on.

    One lookup per account through the annotations' user index: counting distinct raters over the
    project's annotations sorted them all (1 s at 1M annotations, against 0.3 s).
    """
    counted = (
        sa.select(Annotation.id)
        .join(Item, Item.id == Annotation.item_id)
        .outerjoin(
            ProjectMembership,
            sa.and_(
                ProjectMembership.project_id == Annotation.project_id,
                ProjectMembership.user_id == Annotation.user_id,
            ),
        )
        .where(Annotation.user_id == User.id, _counted(project_id), _live_items(project_id))
    )
    return int(session.scalar(sa.select(sa.func.count()).select_from(User).where(counted.exists())) or 0)


def stream_annotations(session: Session, project_id: uuid.UUID) -> Iterator[Any]:
    """Whole counted annotations, for the raw export."""
    columns: list[Any] = [
        Annotation.item_id,
        Annotation.id,
        Annotation.user_id,
        Annotation.display_order,
        Annotation.answers,
        Annotation.flags,
        Annotation.rationale,
        Annotation.time_spent_ms,
        Annotation.guidelines_version,
        Annotation.created_at,
    ]
    return _stream(session, _annotations_select(project_id, columns))


def count_live_items(session: Session, project_id: uuid.UUID) -> int:
    return int(
        session.scalar(sa.select(sa.func.count()).select_from(Item).where(_live_items(project_id))) or 0
    )


def has_chat_prompts(session: Session, project_id: uuid.UUID) -> bool:
    """Whether any live item's prompt is a list of messages rather than a string."""
    dialect = session.get_bind().dialect.name
    kind = sa.func.jsonb_typeof(Item.prompt) if dialect == "postgresql" else sa.func.json_type(Item.prompt)
    found = session.scalar(sa.select(Item.id).where(_live_items(project_id), kind == "array").limit(1))
    return found is not None


# ------------------------------------------------------------------------------------------ snapshots


def add_export(
    session: Session, project_id: uuid.UUID, requested_by: uuid.UUID, params: dict[str, Any]
) -> Export:
    export = Export(project_id=project_id, requested_by_id=requested_by, params=params, status="queued")
    session.add(export)
    session.flush()
    return export


def list_exports(session: Session, project_id: uuid.UUID, limit: int = 50) -> list[Export]:
    statement = (
        sa.select(Export)
        .where(Export.project_id == project_id)
        .order_by(Export.created_at.desc(), Export.id)
        .limit(limit)
    )
    return list(session.scalars(statement))


def _claimable(stale_before: datetime) -> sa.ColumnElement[bool]:
    # A running export whose heartbeat stopped lost its worker (killed, out of memory, machine gone).
    stale = sa.and_(
        Export.status == "running",
        sa.func.coalesce(Export.heartbeat_at, Export.started_at, Export.created_at) < stale_before,
    )
    return sa.or_(Export.status == "queued", stale)


def has_claimable_export(session: Session, stale_before: datetime) -> bool:
    return session.scalar(sa.select(sa.exists().where(_claimable(stale_before)))) or False


def claim_export(session: Session, stale_before: datetime) -> tuple[uuid.UUID, int] | None:
    """Mark the oldest queued (or abandoned running) export running; returns its id and attempt number.

    Each export goes to one worker: PostgreSQL skips rows another worker has locked, and on SQLite the
    guarded update does the same job.
    """
    statement = (
        sa.select(Export.id, Export.attempts)
        .where(_claimable(stale_before))
        .order_by(Export.created_at, Export.id)
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update(skip_locked=True)
    found = session.execute(statement).first()
    if found is None:
        return None
    export_id, attempts = found
    now = utcnow()
    claimed = session.execute(
        sa.update(Export)
        .where(Export.id == export_id, Export.attempts == attempts, _claimable(stale_before))
        .values(status="running", started_at=now, heartbeat_at=now, progress=0.0, attempts=attempts + 1)
    )
    return (export_id, attempts + 1) if claimed.rowcount == 1 else None  # type: ignore[attr-defined]


def beat(session: Session, export_id: uuid.UUID, attempt: int) -> bool:
    """Renew a running export's heartbeat; False once it is no longer this attempt's to build."""
    renewed = session.execute(
        sa.update(Export)
        .where(Export.id == export_id, Export.status == "running", Export.attempts == attempt)
        .values(heartbeat_at=utcnow())
    )
    return bool(renewed.rowcount == 1)  # type: ignore[attr-defined]


def set_progress(session: Session, export_id: uuid.UUID, progress: float) -> None:
    session.execute(
        sa.update(Export)
        .where(Export.id == export_id, Export.status == "running")
        .values(progress=round(progress, 4))
    )


def mark_failed(session: Session, export_id: uuid.UUID, message: str) -> None:
    session.execute(
        sa.update(Export)
        .where(Export.id == export_id)
        .values(status="failed", error=message[:2000], finished_at=utcnow())
    )
