"""Every counted answer of a project as numpy arrays in long form (unit, rater, value, day), per question.

The work is done on whole columns at once, never row by row, so a million annotations take about as long
to arrange as the database takes to send them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.orm import Session

from app.agreement import repository as repo
from app.agreement.stats import Ratings
from app.projects.models import Project
from app.projects.questions import (
    BOTH_BAD,
    TIE,
    LabelQuestion,
    MultiLabelQuestion,
    PreferenceQuestion,
    Question,
    RankingQuestion,
    RatingQuestion,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# Codes of the reserved preference choices, kept apart from response positions (0, 1, ...).
TIE_CODE, BOTH_BAD_CODE = 1000.0, 1001.0


class Coder(dict[Any, int]):
    """Dense integer codes in order of first appearance."""

    def __missing__(self, key: Any) -> int:
        code = self[key] = len(self)
        return code


@dataclass
class LongAnswers:
    """One question's answers in long form: unit, rater, value and the day of the annotation."""

    unit: IntArray
    rater: IntArray
    value: FloatArray
    day: IntArray
    _ratings: Ratings | None = field(default=None, repr=False)

    @classmethod
    def of(cls, unit: Any, rater: Any, value: Any, day: Any) -> LongAnswers:
        return cls(
            np.asarray(unit, np.int64),
            np.asarray(rater, np.int64),
            np.asarray(value, np.float64),
            np.asarray(day, np.int64),
        )

    def arrays(self) -> tuple[IntArray, IntArray, FloatArray, IntArray]:
        self.ratings()
        return self.unit, self.rater, self.value, self.day

    def ratings(self) -> Ratings:
        if self._ratings is None:
            if not _one_per_cell(self.unit, self.rater):
                # The schema allows one live annotation per rater and item, but a figure must never fail
                # on a stray duplicate: the last one read wins.
                self.unit, self.rater, self.value, self.day = _latest_per_cell(
                    self.unit, self.rater, self.value, self.day
                )
            self._ratings = _dense_ratings(self.unit, self.rater, self.value)
        return self._ratings


def _one_per_cell(unit: IntArray, rater: IntArray) -> bool:
    """Whether no rater rated a unit twice, by hashing: Ratings.from_long sorts every rating to find out
    once the unit x rater table is large, which dominates at a million annotations."""
    if unit.size == 0:
        return True
    cells = pa.array(unit * (int(rater.max()) + 1) + rater)
    return bool(pc.count_distinct(cells).as_py() == unit.size)


def _dense_ratings(unit: IntArray, rater: IntArray, value: FloatArray) -> Ratings:
    """Ratings from codes already checked to be one per (unit, rater); units renumbered in linear time."""
    present = np.bincount(unit) > 0 if unit.size else np.zeros(0, dtype=bool)
    renumber = np.cumsum(present) - 1
    n_raters = int(rater.max()) + 1 if rater.size else 0
    return Ratings(
        renumber[unit].astype(np.int64),
        rater,
        value,
        int(present.sum()),
        n_raters,
        np.flatnonzero(present),
        np.arange(n_raters),
    )


def _latest_per_cell(
    unit: IntArray, rater: IntArray, value: FloatArray, day: IntArray
) -> tuple[IntArray, IntArray, FloatArray, IntArray]:
    """One rating per (unit, rater), the last one read."""
    key = unit * (int(rater.max()) + 1) + rater
    _, last = np.unique(key[::-1], return_index=True)
    keep = np.sort(key.size - 1 - last)
    return unit[keep], rater[keep], value[keep], day[keep]


@dataclass
class Collector:
    """One question's counted answers: `annotations` is how many annotations answered it."""

    question: Question
    long: LongAnswers
    annotations: int

    @property
    def kind(self) -> str:
        return self.question.kind


@dataclass
class PreferenceCollector(Collector):
    """Choices coded by the response's stored position (0: stored first, 1: second), never by screen side,
    so raters who saw an item in different orders agree when they chose the same response."""

    choices: dict[str, int]
    strengths: dict[int, int]
    # Per answer that chose a response: its rater, and 1 when that response was shown first.
    decisive_rater: IntArray
    first_shown: IntArray


@dataclass
class Ranked:
    item: int
    rater: int
    ids: tuple[str, ...]
    ranks: tuple[float, ...]
    ties: float


@dataclass
class RankingCollector(Collector):
    rankings: list[Ranked]


@dataclass
class _Rows:
    """The per-annotation columns every question shares, with items and raters already coded."""

    table: pa.Table
    item: IntArray
    rater: IntArray
    day: IntArray
    positions: int

    def long(self, mask: BoolArray, value: Any) -> LongAnswers:
        return LongAnswers.of(self.item[mask], self.rater[mask], np.asarray(value)[mask], self.day[mask])


def dense_codes(column: pa.ChunkedArray) -> tuple[IntArray, pa.Array]:
    encoded = pc.dictionary_encode(column).combine_chunks()
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary


def bools(array: Any) -> BoolArray:
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


def ints(array: Any, missing: int = -1) -> IntArray:
    return np.asarray(pc.fill_null(array, missing).to_numpy(zero_copy_only=False), dtype=np.int64)


def bare_ids(ids: Any) -> Any:
    # SQLite stores UUIDs as 32 hex digits, answers name them with hyphens: compare without.
    return pc.replace_substring(ids, "-", "")


def _preference(question: PreferenceQuestion, rows: _Rows) -> PreferenceCollector:
    choice = rows.table[f"{question.name}.choice"]
    tie, bad = bools(pc.equal(choice, TIE)), bools(pc.equal(choice, BOTH_BAD))
    answered = bools(pc.is_valid(choice))
    decisive = answered & ~tie & ~bad
    stored_first = bools(pc.equal(bare_ids(choice), bare_ids(rows.table["first"])))
    code = np.select([tie, bad, stored_first], [TIE_CODE, BOTH_BAD_CODE, 0.0], 1.0)
    strength = ints(rows.table[f"{question.name}.strength"])[decisive]
    levels, counts = np.unique(strength[strength > 0], return_counts=True)
    return PreferenceCollector(
        question=question,
        long=rows.long(answered, code),
        annotations=int(answered.sum()),
        choices={"response": int(decisive.sum()), TIE: int(tie.sum()), BOTH_BAD: int(bad.sum())},
        strengths=dict(zip(levels.tolist(), counts.tolist(), strict=True)),
        decisive_rater=rows.rater[decisive],
        first_shown=bools(pc.equal(choice, rows.table["shown.0"]))[decisive].astype(np.int64),
    )


def _label(question: LabelQuestion, rows: _Rows) -> Collector:
    code = ints(pc.index_in(rows.table[question.name], value_set=pa.array(question.options)))
    known = code >= 0
    return Collector(question, rows.long(known, code), int(known.sum()))


def _multi_label(question: MultiLabelQuestion, rows: _Rows) -> Collector:
    """One bit per option. Answers come as JSON text; an option is selected when its JSON string occurs in
    it (the database may or may not escape non-ASCII characters, so both spellings are looked for)."""
    text = rows.table[question.name]
    answered = bools(pc.is_valid(text))
    mask = np.zeros(len(text), dtype=np.int64)
    for bit, option in enumerate(question.options):
        found = np.zeros(len(text), dtype=bool)
        for spelling in {json.dumps(option), json.dumps(option, ensure_ascii=False)}:
            found |= bools(pc.match_substring(text, spelling))
        mask |= found.astype(np.int64) << bit
    return Collector(question, rows.long(answered, mask), int(answered.sum()))


def _rating(question: RatingQuestion, rows: _Rows) -> Collector:
    """Units are (item, response): a response id belongs to one item, so it names the unit. Each screen
    position contributes the score of the response shown there."""
    answered = int(ints(rows.table[question.name], 0).sum())
    scored, ids, score, rater, day = [], [], [], [], []
    for position in range(rows.positions):
        values = rows.table[f"{question.name}@{position}"]
        given = bools(pc.is_valid(values))
        if given.any():
            scored.append(position)
            ids.append(rows.table[f"shown.{position}"].filter(pa.array(given)))
            score.append(ints(values)[given])
            rater.append(rows.rater[given])
            day.append(rows.day[given])
    if not scored:
        return Collector(question, LongAnswers.of([], [], [], []), answered)
    unit, _ = dense_codes(pa.chunked_array([chunk for column in ids for chunk in column.chunks], pa.string()))
    long = LongAnswers.of(unit, np.concatenate(rater), np.concatenate(score), np.concatenate(day))
    return Collector(question, long, answered)


def _ranking(question: RankingQuestion, rows: _Rows) -> RankingCollector:
    """Mid-ranks per response in sorted-id order, so every rater of an item lines up. Rankings are read
    one by one: each is a nested list."""
    rankings = []
    texts = rows.table[question.name].to_pylist()
    for index in np.flatnonzero(bools(pc.is_valid(rows.table[question.name]))).tolist():
        ranked = _mid_ranks(json.loads(texts[index]))
        if ranked is not None:
            ids, ranks, ties = ranked
            rankings.append(Ranked(int(rows.item[index]), int(rows.rater[index]), ids, ranks, ties))
    empty = LongAnswers.of([], [], [], [])
    return RankingCollector(question, empty, len(rankings), rankings)


def _mid_ranks(answer: Any) -> tuple[tuple[str, ...], tuple[float, ...], float] | None:
    if not isinstance(answer, list):
        return None
    rank: dict[str, float] = {}
    position, ties = 0, 0.0
    for group in answer:
        members = group if isinstance(group, list) else [group]
        for response_id in members:
            rank[str(response_id)] = position + (len(members) + 1) / 2.0
        position += len(members)
        ties += len(members) ** 3 - len(members)
    if len(rank) != position:
        return None
    ids = tuple(sorted(rank))
    return ids, tuple(rank[r] for r in ids), ties


def _fields(question: Question, positions: int) -> list[repo.AnswerField]:
    if isinstance(question, PreferenceQuestion):
        return [
            repo.AnswerField((question.name, "choice"), "text"),
            repo.AnswerField((question.name, "strength"), "integer"),
        ]
    if isinstance(question, LabelQuestion | MultiLabelQuestion | RankingQuestion):
        return [repo.AnswerField((question.name,), "text")]
    present = [repo.AnswerField((question.name,), "present")]
    if isinstance(question, RatingQuestion):
        return present + [repo.AnswerField((question.name,), "score", i) for i in range(positions)]
    return present


@dataclass
class Collected:
    collectors: list[Collector]
    raters: list[str]
    n_items: int
    n_annotations: int


def _collector(question: Question, rows: _Rows) -> Collector:
    match question:
        case PreferenceQuestion():
            return _preference(question, rows)
        case LabelQuestion():
            return _label(question, rows)
        case RatingQuestion():
            return _rating(question, rows)
        case MultiLabelQuestion():
            return _multi_label(question, rows)
        case RankingQuestion():
            return _ranking(question, rows)
    # Free text is never graded; only whether it was given is counted.
    answered = int(ints(rows.table[question.name], 0).sum())
    return Collector(question, LongAnswers.of([], [], [], []), answered)


def collect_answers(session: Session, project: Project, questions: list[Question]) -> Collected:
    """Read the counted annotations once and arrange every question's answers."""
    has_rating = any(isinstance(q, RatingQuestion) for q in questions)
    positions = repo.count_response_positions(session, project.id) if has_rating else 1
    fields = [f for q in questions for f in _fields(q, positions)]
    has_preference = any(isinstance(q, PreferenceQuestion) for q in questions)
    table = repo.read_counted_answers(
        session, project.id, fields, stored_first=has_preference, positions=positions
    )
    item, item_keys = dense_codes(table["item"])
    rater, rater_keys = dense_codes(table["rater"])
    rows = _Rows(table, item, rater, ints(table["day"]), positions)
    return Collected(
        collectors=[_collector(q, rows) for q in questions],
        raters=rater_keys.to_pylist(),
        n_items=len(item_keys),
        n_annotations=table.num_rows,
    )
