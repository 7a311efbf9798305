"""Rules of the items domain: importing lines in batches with deduplication, listing items, gold answers."""

from __future__ import annotations

import json
import os
import random
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.audit import service as audit
from app.db import utcnow
from app.items import exceptions, repository
from app.items.models import Item, Response
from app.items.parsing import ImportOptions, LineError, ParsedItem, ParseResult, parse_lines
from app.items.pipeline import BatchReader
from app.items.repository import encode_json
from app.projects.models import Project
from app.projects.questions import (
    AnswerError,
    Question,
    max_responses_allowed,
    min_responses_required,
    parse_questions,
    validate_answers,
)

BATCH_SIZE = 1000
MAX_REPORTED_ERRORS = 1000
_random = random.Random()


@dataclass
class ImportTally:
    created: int = 0
    duplicates: int = 0
    errors: list[LineError] = field(default_factory=list)
    errors_total: int = 0

    def add_error(self, error: LineError) -> None:
        self.errors_total += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(error)


def import_options(project: Project, pairs: str | int = "none", seed: int = 0) -> ImportOptions:
    questions = parse_questions(project.questions)
    return ImportOptions(pairs=pairs, seed=seed, min_responses=max(2, min_responses_required(questions)))  # type: ignore[arg-type]


class _LineTracker:
    """Remembers the number of the line being parsed, so item-level problems can name their line."""

    def __init__(self, lines: Iterable[tuple[int, Any] | LineError]) -> None:
        self._lines = lines
        self.current = 0

    def __iter__(self) -> Iterator[tuple[int, Any] | LineError]:
        for entry in self._lines:
            if not isinstance(entry, LineError):
                self.current = entry[0]
            yield entry


def import_items(
    session: Session,
    project: Project,
    lines: Iterable[tuple[int, Any] | LineError],
    actor: User,
    *,
    options: ImportOptions,
    skip_bad_lines: bool = False,
    purpose: str = "live",
    dry_run: bool = False,
    on_progress: Any = None,
) -> ImportTally:
    """Write the parsed lines in batches; by default one bad line rejects the whole import."""
    tracker = _LineTracker(lines)
    results = parse_lines(tracker, options)
    questions = parse_questions(project.questions)
    max_responses = max_responses_allowed(questions)
    tally = ImportTally()
    savepoint = session.begin_nested()
    seq = session.scalar(
        sa.select(sa.func.coalesce(sa.func.max(Item.seq), 0)).where(Item.project_id == project.id)
    )
    seen: set[str] = set()
    checked = _checked(results, questions, max_responses, tally, tracker)
    with BatchReader(checked, BATCH_SIZE) as batches:
        for batch in batches:
            # A rejected import is rolled back whole: after its first bad line, only the checking goes on.
            if skip_bad_lines or not tally.errors_total:
                seq = _write_batch(session, project, questions, batch, seen, tally, purpose, seq or 0)
            if on_progress:
                on_progress(tally)
    if tally.errors_total and not skip_bad_lines:
        savepoint.rollback()
        raise exceptions.ImportRejected(details=[{"line": e.line, "error": e.error} for e in tally.errors])
    if dry_run:
        savepoint.rollback()
        return tally
    savepoint.commit()
    audit.record(
        session,
        actor.id,
        "items.import",
        "project",
        project.id,
        project_id=project.id,
        after={"created": tally.created, "duplicates": tally.duplicates, "errors": tally.errors_total},
    )
    return tally


def _checked(
    results: Iterable[ParseResult],
    questions: list[Question],
    max_responses: int | None,
    tally: ImportTally,
    tracker: _LineTracker,
) -> Iterator[ParsedItem]:
    for result in results:
        if isinstance(result, LineError):
            tally.add_error(result)
            continue
        for item in result:
            problem = _item_problem(item, questions, max_responses)
            if problem:
                tally.add_error(LineError(line=tracker.current, error=problem))
                break
            yield item


def _item_problem(item: ParsedItem, questions: list[Question], max_responses: int | None) -> str | None:
    count = len(item.responses)
    if max_responses is not None and count > max_responses:
        return (
            f"this project compares {max_responses} responses at a time and the line has {count}: "
            f"import with pairs=all or pairs=N to split it into pairs"
        )
    if item.gold is not None:
        try:
            _gold_answers(item, questions, [str(i) for i in range(count)])
        except (AnswerError, ValueError) as error:
            return f"gold: {_answer_error_text(error)}"
    return None


def _answer_error_text(error: Exception) -> str:
    if isinstance(error, AnswerError):
        return "; ".join(f"{e.get('question')}: {e.get('error')}" for e in error.errors)
    return str(error)


def _gold_answers(item: ParsedItem, questions: list[Question], response_ids: list[str]) -> dict[str, Any]:
    """Gold answers name responses by their 0-based position in the line; store them by response id."""
    gold = item.gold or {}
    answers = gold.get("answers", gold if "answers" not in gold else {})
    answers = (
        {k: v for k, v in answers.items() if k != "explanation"} if isinstance(answers, dict) else answers
    )
    by_position = {str(r.source_position): rid for r, rid in zip(item.responses, response_ids, strict=True)}
    return validate_answers(questions, _map_positions(questions, answers, by_position), response_ids)


def _map_positions(
    questions: list[Question], answers: dict[str, Any], by_position: dict[str, str]
) -> dict[str, Any]:
    def ids(value: Any) -> Any:
        if isinstance(value, list):
            return [ids(v) for v in value]
        is_position = (
            isinstance(value, int | str) and not isinstance(value, bool) and str(value) in by_position
        )
        return by_position[str(value)] if is_position else value

    kinds = {q.name: q.kind for q in questions}
    mapped: dict[str, Any] = {}
    for name, value in answers.items():
        kind = kinds.get(name)
        if kind == "preference" and isinstance(value, dict) and "choice" in value:
            mapped[name] = {**value, "choice": ids(value["choice"])}
        elif kind == "ranking":
            mapped[name] = ids(value)
        elif kind == "rating" and isinstance(value, dict):
            mapped[name] = {ids(k): v for k, v in value.items()}
        else:
            mapped[name] = value
    return mapped


def _write_batch(
    session: Session,
    project: Project,
    questions: list[Question],
    batch: list[ParsedItem],
    seen: set[str],
    tally: ImportTally,
    purpose: str,
    seq: int,
) -> int:
    if not batch:
        return seq
    keys = [_dedup_key(item) for item in batch]
    existing = repository.existing_dedup_keys(session, project.id, set(keys))
    fresh: list[tuple[ParsedItem, str]] = []
    for item, key in zip(batch, keys, strict=True):
        if key in existing or key in seen:
            tally.duplicates += 1
        else:
            seen.add(key)
            fresh.append((item, key))
    if fresh:
        item_rows, response_rows = _rows(project, questions, fresh, purpose, seq)
        repository.insert_rows(session, item_rows, response_rows)
        tally.created += len(fresh)
    return seq + len(fresh)


def _rows(
    project: Project, questions: list[Question], fresh: list[tuple[ParsedItem, str]], purpose: str, seq: int
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Item and response rows in the repository's column order, numbered on from seq."""
    ids = iter(_new_ids(len(fresh) + sum(len(item.responses) for item, _ in fresh)))
    project_id, now = project.id.bytes, utcnow()
    item_rows: list[tuple[Any, ...]] = []
    response_rows: list[tuple[Any, ...]] = []
    for seq, (item, key) in enumerate(fresh, start=seq + 1):  # noqa: B020 - seq numbers on from here
        item_id = next(ids)
        response_ids = [next(ids) for _ in item.responses]
        gold, item_purpose = None, purpose
        if item.gold is not None:
            answers = _gold_answers(item, questions, [str(uuid.UUID(bytes=r)) for r in response_ids])
            gold = encode_json({"answers": answers, "explanation": item.gold.get("explanation")})
            item_purpose = "training" if purpose == "training" else "gold"
        item_rows.append(
            (
                item_id,
                project_id,
                seq,
                item.external_id,
                key,
                item.content_hash,
                item.source_group,
                encode_json(item.prompt),
                encode_json(item.metadata) if item.metadata else b"{}",
                item_purpose,
                gold,
                _random.getrandbits(31),
                0,
                0,
                False,
                now,
            )
        )
        response_rows.extend(
            (
                rid,
                item_id,
                position,
                r.source_position,
                r.text,
                r.model,
                encode_json(r.metadata) if r.metadata else b"{}",
            )
            for position, (r, rid) in enumerate(zip(item.responses, response_ids, strict=True))
        )
    return item_rows, response_rows


# Version 4 (random) UUIDs: the version nibble is 4 and the variant bits are 10.
_V4_KEEP = bytes.fromhex("ffffffffffff0fff3fffffffffffffff")
_V4_SET = bytes.fromhex("00000000000040008000000000000000")


def _new_ids(count: int) -> list[bytes]:
    """count random version 4 UUIDs as 16 bytes each, made in a few big-integer steps (uuid4() is slow)."""
    size = 16 * count
    bits = int.from_bytes(os.urandom(size)) & int.from_bytes(_V4_KEEP * count) | int.from_bytes(
        _V4_SET * count
    )
    data = bits.to_bytes(size)
    return [data[start : start + 16] for start in range(0, size, 16)]


def _dedup_key(item: ParsedItem) -> str:
    return f"id:{item.external_id}" if item.external_id is not None else f"sha256:{item.content_hash}"


def list_items(
    session: Session, project_id: uuid.UUID, *, limit: int, offset: int, purpose: str | None = None
) -> tuple[list[tuple[Item, list[Response]]], int]:
    query = sa.select(Item).where(Item.project_id == project_id)
    if purpose:
        query = query.where(Item.purpose == purpose)
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    items = list(session.scalars(query.order_by(Item.seq).limit(limit).offset(offset)))
    responses: dict[uuid.UUID, list[Response]] = {item.id: [] for item in items}
    if items:
        for response in session.scalars(
            sa.select(Response).where(Response.item_id.in_(responses)).order_by(Response.position)
        ):
            responses[response.item_id].append(response)
    return [(item, responses[item.id]) for item in items], total


def get_item(session: Session, project_id: uuid.UUID, item_id: uuid.UUID) -> Item:
    item = session.get(Item, item_id)
    if item is None or item.project_id != project_id:
        raise exceptions.ItemNotFound()
    return item


def set_gold(
    session: Session,
    project: Project,
    item: Item,
    answers: dict[str, Any],
    explanation: str | None,
    actor: User,
    purpose: str | None = None,
) -> Item:
    response_ids = [
        str(r)
        for r in session.scalars(
            sa.select(Response.id).where(Response.item_id == item.id).order_by(Response.position)
        )
    ]
    try:
        normalised = validate_answers(parse_questions(project.questions), answers, response_ids)
    except AnswerError as error:
        raise exceptions.InvalidGold(details=error.errors) from error
    before = {"gold": item.gold, "purpose": item.purpose}
    item.gold = {"answers": normalised, "explanation": explanation}
    item.purpose = purpose or ("gold" if item.purpose == "live" else item.purpose)
    audit.record(
        session,
        actor.id,
        "item.set_gold",
        "item",
        item.id,
        project_id=project.id,
        before=before,
        after={"gold": item.gold, "purpose": item.purpose},
    )
    return item


def mark_complete_by(session: Session, project_id: uuid.UUID, annotations_per_item: int) -> None:
    """Mark the project's live items complete, or open again, by a new number of raters per item: raised, an
    item that had enough has room again; lowered, one that now has enough stops being handed out. Submits check
    the mark, so none counted after this ends up over the new number."""
    has_enough = Item.annotation_count >= annotations_per_item
    session.execute(
        sa.update(Item)
        .where(Item.project_id == project_id, Item.purpose == "live", Item.is_complete != has_enough)
        .values(is_complete=has_enough)
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True)
class Progress:
    total: int = 0
    complete: int = 0
    in_progress: int = 0
    annotations: int = 0

    @property
    def left(self) -> int:
        return self.total - self.complete

    @property
    def percent_complete(self) -> float:
        return 100.0 * self.complete / self.total if self.total else 0.0

    @property
    def percent_in_progress(self) -> float:
        return 100.0 * self.in_progress / self.total if self.total else 0.0


def progress_by_project(session: Session, project_ids: list[uuid.UUID]) -> dict[uuid.UUID, Progress]:
    """Live items done / being worked on / left, for each project, in one grouped query."""
    if not project_ids:
        return {}
    started = sa.and_(sa.not_(Item.is_complete), sa.or_(Item.annotation_count > 0, Item.assigned_count > 0))
    rows = session.execute(
        sa.select(
            Item.project_id,
            sa.func.count(Item.id),
            sa.func.sum(sa.case((Item.is_complete.is_(True), 1), else_=0)),
            sa.func.sum(sa.case((started, 1), else_=0)),
            sa.func.sum(Item.annotation_count),
        )
        .where(Item.project_id.in_(project_ids), Item.purpose == "live")
        .group_by(Item.project_id)
    ).all()
    found = {pid: Progress(int(t or 0), int(c or 0), int(p or 0), int(a or 0)) for pid, t, c, p, a in rows}
    return {pid: found.get(pid, Progress()) for pid in project_ids}


def preview_lines(handle: Any, limit: int = 5) -> list[dict[str, Any]]:
    """The first lines of the upload, shortened, so the admin sees what the file holds before importing."""
    rows: list[dict[str, Any]] = []
    for number, raw in enumerate(handle, start=1):
        if len(rows) >= limit:
            break
        try:
            record = json.loads(raw)
        except ValueError:
            rows.append({"line": number, "prompt": raw[:120].decode(errors="replace"), "responses": "?"})
            continue
        if isinstance(record, dict):
            answers = (
                record.get("responses")
                or record.get("completions")
                or [record.get("chosen"), record.get("rejected")]
            )
            rows.append(
                {
                    "line": number,
                    "prompt": str(record.get("prompt", record.get("chosen", "")))[:160],
                    "responses": len([a for a in answers if a is not None])
                    if isinstance(answers, list)
                    else "?",
                }
            )
    handle.seek(0)
    return rows
