"""The export pipeline: counted votes merged with items, aggregated, filtered, split and de-duplicated into rows."""

from __future__ import annotations

import queue
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from functools import cached_property
from itertools import islice
from typing import Any, TypeVar

import numpy as np
from sqlalchemy.orm import Session

from app.exports import repository
from app.exports.aggregate import (
    DawidSkeneLabels,
    ItemGroup,
    LabelArrays,
    Outcome,
    ResponseScore,
    Vote,
    aggregate_preferences,
    aggregate_ranking,
    decided_outcome,
    rating_scores,
)
from app.exports.formats import Layout, prompt_value
from app.exports.rows import SeenKeys, canonical, pair_rows, rater_pseudonym, rating_rows, split_of
from app.exports.schemas import ExportOptions

CHUNK_ITEMS = 500
# Characters of text a chunk holds at most: 500 items of 40k-character answers made chunks of 40 MB, and
# three chunks are in memory at once (two read ahead).
CHUNK_CHARS = 4_000_000
# Chunks read ahead of the writer: enough to cover a fetch, few enough to keep memory flat.
READ_AHEAD_CHUNKS = 2

T = TypeVar("T")

Progress = Callable[[float], None]


@dataclass(frozen=True)
class ExportPlan:
    """Everything a build needs, checked against the project before any row is read."""

    project_id: uuid.UUID
    project_name: str
    project_slug: str
    project_description: str
    options: ExportOptions
    question: str | None
    question_kind: str | None
    score_questions: tuple[str, ...]
    chat: bool
    layout: Layout
    split_column: bool
    split_name: str | None = None
    secret: str = ""

    @cached_property
    def splits(self) -> list[tuple[str, float]] | None:
        """The options' splits, parsed once: rows ask for them one by one."""
        return self.options.splits

    @property
    def split_names(self) -> list[str]:
        return [name for name, _ in self.splits or [("train", 1.0)]]


@dataclass
class Tally:
    """Counts of one build: what came in, what each filter dropped, and the rows of each split."""

    items: int = 0
    annotations: int = 0
    raters: set[Hashable] = field(default_factory=set)
    guidelines_versions: Counter[int] = field(default_factory=Counter)
    steps: dict[str, int] = field(default_factory=dict)
    dropped: Counter[str] = field(default_factory=Counter)
    rows: Counter[str] = field(default_factory=Counter)
    labels: LabelArrays | None = None

    def passed(self, step: str) -> None:
        self.steps[step] = self.steps.get(step, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "annotations": self.annotations,
            "raters": len(self.raters),
            "guidelines_versions": {str(k): v for k, v in sorted(self.guidelines_versions.items())},
            "steps": dict(self.steps),
            "dropped": dict(sorted(self.dropped.items())),
            "rows": dict(self.rows),
            "rows_total": sum(self.rows.values()),
        }


class _Follower:
    """Rows ordered by item id, handed out item by item as the item stream walks the same order."""

    def __init__(self, rows: Iterator[Any]) -> None:
        self._rows = rows
        self._head: Any = next(rows, None)

    def rows_of(self, item_id: uuid.UUID) -> list[Any]:
        head, rows = self._head, self._rows
        # Rows of items the item stream does not hold (no longer live) are passed over.
        while head is not None and head[0] < item_id:
            head = next(rows, None)
        found = []
        while head is not None and head[0] == item_id:
            found.append(head)
            head = next(rows, None)
        self._head = head
        return found


def iter_groups(
    session: Session, plan: ExportPlan, *, with_text: bool, tick: Callable[[], None] | None = None
) -> Iterator[ItemGroup]:
    """Items with at least one counted vote, in export order, with their responses and votes."""
    kind = plan.question_kind
    items = iter(repository.stream_items(session, plan.project_id, with_prompt=with_text))
    responses = _Follower(repository.stream_responses(session, plan.project_id, with_text=with_text))
    votes = repository.stream_votes(
        session,
        plan.project_id,
        preference=plan.question if kind == "preference" else None,
        ranking=plan.question if kind == "ranking" else None,
        scores=list(plan.score_questions),
    )
    # Every stream walks the items in id order and votes come grouped by item, so the votes lead the merge;
    # votes of an item that is no longer live find no item row and are passed over.
    item = next(items, None)
    for vote_item, found in votes:
        while item is not None and item[0] < vote_item:
            if tick is not None:
                tick()
            item = next(items, None)
        if item is None:
            return
        if item[0] != vote_item:
            continue
        if tick is not None:
            tick()
        answers = responses.rows_of(vote_item)
        item_votes = [Vote(v[0], bool(v[1]), v[2], v[3], v[4], v[5], tuple(v[6:])) for v in found]
        ids = [str(r[1]) for r in answers]
        texts = [r[3] for r in answers] if with_text else []
        models = [r[4] for r in answers] if with_text else []
        yield ItemGroup(vote_item, item[1], item[2] if with_text else None, ids, texts, models, item_votes)
        item = next(items, None)
    if tick is not None and item is not None:
        tick()
        for _ in items:
            tick()


def chunked(
    source: Iterator[T], size: int = CHUNK_ITEMS, weigh: Callable[[T], int] | None = None
) -> Iterator[list[T]]:
    """Lists of `size` entries; with `weigh`, a list also ends once its entries weigh CHUNK_CHARS."""
    if weigh is None:
        while chunk := list(islice(source, size)):
            yield chunk
        return
    chunk, weight = [], 0
    for entry in source:
        chunk.append(entry)
        weight += weigh(entry)
        if len(chunk) >= size or weight >= CHUNK_CHARS:
            yield chunk
            chunk, weight = [], 0
    if chunk:
        yield chunk


def read_chunks(
    session: Session, groups: Iterator[T], weigh: Callable[[T], int] | None = None
) -> Iterator[list[T]]:
    """Chunks of groups; on PostgreSQL read ahead by a thread, so the server works while rows are written.

    Only that thread touches the session until the stream ends. SQLite reads in this process, where a
    thread would only take turns with the writer. `weigh` (characters of text) keeps chunks of long texts
    small.
    """
    chunks = chunked(groups, weigh=weigh)
    if session.get_bind().dialect.name != "postgresql":
        return chunks
    return read_ahead(chunks, READ_AHEAD_CHUNKS)


def read_ahead(source: Iterator[T], depth: int) -> Iterator[T]:
    """Items of source produced by a thread at most `depth` ahead of the consumer; errors are re-raised."""
    ready: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(entry: tuple[bool, Any]) -> bool:
        # Waits for room, but gives up once the consumer has gone, so the thread always ends.
        while not stop.is_set():
            try:
                ready.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for value in source:
                if not offer((True, value)):
                    return
            offer((False, None))
        except BaseException as error:
            offer((False, error))
        finally:
            # Server-side cursors are closed by the thread that used the connection, before it is released.
            close = getattr(source, "close", None)
            if close is not None:
                close()

    def consume() -> Iterator[T]:
        thread = threading.Thread(target=produce, name="export-read-ahead", daemon=True)
        thread.start()
        try:
            while True:
                more, value = ready.get()
                if not more:
                    if value is not None:
                        raise value
                    return
                yield value
        finally:
            stop.set()
            thread.join()

    return consume()


def _ticker(total: int, start: float, span: float, progress: Progress | None) -> Callable[[], None] | None:
    if progress is None or total <= 0:
        return None
    seen = 0
    step = max(total // 100, 1)

    def tick() -> None:
        nonlocal seen
        seen += 1
        if seen % step == 0 or seen == total:
            progress(start + span * min(seen / total, 1.0))

    return tick


def fit_dawid_skene(
    session: Session, plan: ExportPlan, tally: Tally, tick: Callable[[], None] | None
) -> DawidSkeneLabels:
    """The first pass: every counted preference vote, fitted per project and question."""
    labels = LabelArrays()
    for chunk in read_chunks(session, iter_groups(session, plan, with_text=False, tick=tick)):
        for group in chunk:
            labels.add_preference(group)
    tally.labels = labels
    return DawidSkeneLabels.fit(labels)


# ------------------------------------------------------------------------------------------- filters


def flagged(group: ItemGroup) -> bool:
    return any(vote.blocked for vote in group.votes)


def keep_item(plan: ExportPlan, outcome: Outcome, is_flagged: bool, tally: Tally) -> bool:
    """Apply the cleaning filters in funnel order, counting where each dropped item went."""
    options = plan.options
    tally.passed("annotated")
    if outcome.n_votes < options.min_annotations:
        tally.dropped["too_few_annotations"] += 1
        return False
    tally.passed("enough_annotations")
    if outcome.status == "unresolved":
        tally.dropped["unresolved"] += 1
        return False
    if options.min_agreement > 0 and (outcome.agreement is None or outcome.agreement < options.min_agreement):
        tally.dropped["low_agreement"] += 1
        return False
    tally.passed("agreement")
    if outcome.status in ("tie", "both_bad") and not options.include_ties:
        tally.dropped["ties"] += 1
        return False
    tally.passed("ties")
    if not options.include_flagged and is_flagged:
        tally.dropped["flagged"] += 1
        return False
    tally.passed("flags")
    return True


def keep_rated_item(plan: ExportPlan, group: ItemGroup, tally: Tally) -> bool:
    tally.passed("annotated")
    if len(group.votes) < plan.options.min_annotations:
        tally.dropped["too_few_annotations"] += 1
        return False
    tally.passed("enough_annotations")
    if not plan.options.include_flagged and flagged(group):
        tally.dropped["flagged"] += 1
        return False
    tally.passed("flags")
    return True


def outcomes_of(
    plan: ExportPlan, chunk: Sequence[ItemGroup], dawid_skene_labels: DawidSkeneLabels | None
) -> list[Outcome]:
    if plan.question_kind == "ranking":
        return [aggregate_ranking(group, plan.options.pairs == "best") for group in chunk]
    return aggregate_preferences(chunk, plan.options.margins, dawid_skene_labels)


def prompt_split(plan: ExportPlan, group: ItemGroup) -> str | None:
    splits = plan.splits
    if splits is None:
        return None
    return split_of(canonical(prompt_value(group.prompt, plan.chat)), splits, plan.options.seed)


# ------------------------------------------------------------------------------------------- driver


def _count_inputs(tally: Tally, chunk: Sequence[ItemGroup]) -> None:
    for group in chunk:
        tally.items += 1
        tally.annotations += len(group.votes)
        for vote in group.votes:
            tally.raters.add(vote.user_id)
            tally.guidelines_versions[vote.guidelines_version] += 1


# A row waiting for the duplicate check: its split, content key and values.
Staged = tuple[str | None, int, dict[str, Any]]


def _stage(
    plan: ExportPlan, group: ItemGroup, rows: Iterator[tuple[int, dict[str, Any]]], staged: list[Staged]
) -> None:
    split = prompt_split(plan, group)
    staged.extend((split, key, row) for key, row in rows)


def _unique_rows(
    plan: ExportPlan, staged: list[Staged], seen: SeenKeys, tally: Tally
) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """A chunk's rows without those whose content an earlier row had, in order; the first one stays."""
    if not staged:
        return
    keys = np.fromiter((key for _, key, _ in staged), dtype=np.uint64, count=len(staged))
    for (split, _, row), first in zip(staged, seen.add_new(keys).tolist(), strict=True):
        tally.passed("rows_before_dedup")
        if not first:
            tally.dropped["duplicates"] += 1
            continue
        tally.rows[split or "all"] += 1
        if plan.split_name is not None and split != plan.split_name:
            continue
        if plan.split_column:
            row["split"] = split
        yield split, row


def iter_rows(
    session: Session,
    plan: ExportPlan,
    tally: Tally,
    progress: Progress | None = None,
    *,
    collect: bool = False,
) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """(split, row) of every surviving row in a deterministic order; `collect` keeps votes for the card."""
    if plan.options.format == "raw":
        yield from _raw_rows(session, plan, tally, progress)
        return
    if tallied_in_database(session, plan):
        yield from _tallied_rows(session, plan, tally, progress, collect=collect)
        return
    total = repository.count_live_items(session, plan.project_id) if progress else 0
    fitted: DawidSkeneLabels | None = None
    start = 0.0
    if plan.options.aggregation == "dawid-skene" and plan.options.format != "ratings":
        fitted = fit_dawid_skene(session, plan, tally, _ticker(total, 0.0, 0.5, progress))
        start = 0.5
    elif collect and plan.options.format != "ratings":
        tally.labels = LabelArrays()
    seen = SeenKeys()
    tick = _ticker(total, start, 1.0 - start, progress)
    groups = iter_groups(session, plan, with_text=True, tick=tick)
    for chunk in read_chunks(session, groups, weigh=_group_chars):
        _count_inputs(tally, chunk)
        if fitted is None and tally.labels is not None:
            for group in chunk:
                if plan.question_kind == "ranking":
                    tally.labels.add_ranking(group)
                else:
                    tally.labels.add_preference(group)
        yield from _unique_rows(plan, _chunk_rows(plan, chunk, fitted, tally), seen, tally)


def _group_chars(group: ItemGroup) -> int:
    return sum(len(text) for text in group.texts)


def _tallied_chars(row: Any) -> int:
    return len(row[4]) + len(row[6])


def _chunk_rows(
    plan: ExportPlan, chunk: list[ItemGroup], fitted: DawidSkeneLabels | None, tally: Tally
) -> list[Staged]:
    staged: list[Staged] = []
    if plan.options.format == "ratings":
        per_question = [rating_scores(chunk, k) for k in range(len(plan.score_questions))]
        for i, group in enumerate(chunk):
            if keep_rated_item(plan, group, tally):
                _stage(plan, group, rating_rows(plan, group, [scores[i] for scores in per_question]), staged)
        return staged
    outcomes = outcomes_of(plan, chunk, fitted)
    scores = rating_scores(chunk, 0) if plan.score_questions else None
    for i, (group, outcome) in enumerate(zip(chunk, outcomes, strict=True)):
        if keep_item(plan, outcome, flagged(group), tally):
            rows = pair_rows(plan, group, outcome, scores[i] if scores is not None else None)
            _stage(plan, group, rows, staged)
    return staged


def tallied_in_database(session: Session, plan: ExportPlan) -> bool:
    """Whether PostgreSQL tallies the votes: pairs of a preference question, the common export."""
    return (
        session.get_bind().dialect.name == "postgresql"
        and plan.question is not None
        and plan.question_kind == "preference"
        and plan.options.format in ("preference", "preference-implicit", "kto")
    )


def tallied_outcome(
    item_id: uuid.UUID,
    counts: Sequence[int],
    margins: Sequence[float | None],
    fitted: DawidSkeneLabels | None,
) -> Outcome:
    """The rules of aggregate_preferences on counts the database made: a tied top count is unresolved."""
    n = sum(counts)
    if n == 0:
        return Outcome("none", 0)
    if fitted is not None:
        taken = fitted.take(item_id)
        if taken is None:
            return Outcome("unresolved", n)
        winner, agreement = taken
    else:
        top = max(counts)
        if list(counts).count(top) > 1:
            return Outcome("unresolved", n, top / n)
        winner, agreement = list(counts).index(top), top / n
    # The database averaged the margin over each response's votes; only a chosen response has one.
    margin = margins[winner] if winner in (0, 1) else None
    return decided_outcome(winner, n, agreement, margin)


def tallied_items(
    session: Session, plan: ExportPlan, *, content: repository.Content, with_votes: bool
) -> Iterator[Any]:
    assert plan.question is not None
    return repository.stream_preference_tallies(
        session,
        plan.project_id,
        question=plan.question,
        score_question=plan.score_questions[0] if plan.score_questions else None,
        margins=plan.options.margins,
        content=content,
        with_votes=with_votes,
    )


def fit_tallied(
    session: Session, plan: ExportPlan, tally: Tally, tick: Callable[[], None] | None
) -> DawidSkeneLabels:
    """Dawid-Skene's first pass: every counted vote's item, rater and class, read in blocks of whole items."""
    assert plan.question is not None
    labels = tally.labels = LabelArrays()
    votes = repository.stream_preference_classes(session, plan.project_id, question=plan.question)
    for block in read_ahead(votes, READ_AHEAD_CHUNKS):
        labels.add_votes(block["item"], block["rater"], block["class"])
        if tick is not None:
            for _ in range(int(np.count_nonzero(block["item"][1:] != block["item"][:-1])) + 1):
                tick()
    return DawidSkeneLabels.fit(labels)


def _tallied_rows(
    session: Session, plan: ExportPlan, tally: Tally, progress: Progress | None, *, collect: bool
) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """Rows from items PostgreSQL has already tallied: per item only filters, row building and writing here."""
    total = repository.count_judged_items(session, plan.project_id) if progress else 0
    fitted: DawidSkeneLabels | None = None
    start = 0.0
    if plan.options.aggregation == "dawid-skene":
        fitted = fit_tallied(session, plan, tally, _ticker(total, 0.0, 0.5, progress))
        start = 0.5
    elif collect:
        tally.labels = LabelArrays()
    tick = _ticker(total, start, 1.0 - start, progress)
    rows = tallied_items(session, plan, content="texts", with_votes=collect)
    seen = SeenKeys()
    for chunk in read_chunks(session, rows, weigh=_tallied_chars):
        staged: list[Staged] = []
        for row in chunk:
            if tick is not None:
                tick()
            item_id, external_id, prompt, first_id, first_text, second_id, second_text, n_counted = row[:8]
            group = ItemGroup(
                item_id, external_id, prompt, [first_id, second_id], [first_text, second_text], [], []
            )
            tally.items += 1
            tally.annotations += n_counted
            if collect:
                raters, classes, versions = row[17:20]
                tally.raters.update(raters)
                tally.guidelines_versions.update(versions)
                if fitted is None and tally.labels is not None:
                    _add_labels(tally.labels, item_id, raters, classes)
            outcome = tallied_outcome(item_id, row[8:12], row[12:14], fitted)
            if not keep_item(plan, outcome, row[14], tally):
                continue
            scores = [ResponseScore(0, mean, None) for mean in row[15:17]] if plan.score_questions else None
            _stage(plan, group, pair_rows(plan, group, outcome, scores), staged)
        yield from _unique_rows(plan, staged, seen, tally)


def _add_labels(
    labels: LabelArrays, item_id: uuid.UUID, raters: list[str], classes: list[int | None]
) -> None:
    """One item's vote classes, as LabelArrays.add_preference adds them."""
    added = False
    for rater, label in zip(raters, classes, strict=True):
        if label is not None:
            labels.add_vote(labels.n_units, rater, label)
            added = True
    if added:
        labels.end_item(item_id)


SCREEN_LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _raw_rows(
    session: Session, plan: ExportPlan, tally: Tally, progress: Progress | None
) -> Iterator[tuple[str | None, dict[str, Any]]]:
    total = repository.count_live_items(session, plan.project_id) if progress else 0
    tick = _ticker(total, 0.0, 1.0, progress)
    splits = plan.splits
    annotations = _Follower(repository.stream_annotations(session, plan.project_id))
    for item in repository.stream_items(session, plan.project_id, with_prompt=splits is not None):
        if tick is not None:
            tick()
        item_id = item[0]
        found = annotations.rows_of(item_id)
        if not found:
            continue
        tally.items += 1
        tally.passed("annotated")
        split = (
            split_of(canonical(prompt_value(item[2], plan.chat)), splits, plan.options.seed)
            if splits
            else None
        )
        for _, annotation_id, user_id, order, answers, flags, rationale, spent, version, created in found:
            tally.annotations += 1
            tally.raters.add(user_id)
            tally.guidelines_versions[version] += 1
            tally.rows[split or "all"] += 1
            if plan.split_name is not None and split != plan.split_name:
                continue
            row: dict[str, Any] = {
                "item_id": str(item_id),
                "external_id": item[1],
                "annotation_id": str(annotation_id),
                "rater": rater_pseudonym(plan.secret, user_id),
                "shown": {SCREEN_LABELS[i % 26]: str(rid) for i, rid in enumerate(order or [])},
                "answers": answers,
                "flags": list(flags or []),
                "rationale": rationale,
                "time_spent_ms": spent,
                "guidelines_version": version,
                "created_at": created.astimezone(UTC).isoformat(),
            }
            if plan.split_column:
                row["split"] = split
            yield split, row
