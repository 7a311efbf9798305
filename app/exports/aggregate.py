"""From the counted votes on an item to one outcome: majority or Dawid-Skene choice, mean-rank order, margins."""

from __future__ import annotations

import hashlib
import io
import tempfile
import threading
import uuid
from array import array
from collections import OrderedDict
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Literal

import numpy as np

from app.agreement.aggregation import VoteBlock, dawid_skene_blocks, majority_vote, rating_summary
from app.projects.questions import BOTH_BAD, TIE

# Preference classes: the response at item position 0 or 1, a tie, or both bad.
TIE_CLASS, BOTH_BAD_CLASS, N_PREFERENCE_CLASSES = 2, 3, 4
# Mean ranks closer than this are equal: they are means of small fractions, never far from exact.
RANK_EPSILON = 1e-9

Status = Literal["pairs", "tie", "both_bad", "unresolved", "none"]


@dataclass(slots=True)
class Vote:
    """One counted annotation as the export reads it: a preference choice and strength, or a ranking."""

    # The rater as an opaque key (a UUID, or its text where the database grouped the votes).
    user_id: Hashable
    blocked: bool
    guidelines_version: int
    choice: str | None = None
    strength: int | None = None
    ranking: Any = None
    scores: tuple[Any, ...] = ()


@dataclass(slots=True)
class ItemGroup:
    """One live item with its responses (by position) and its counted votes."""

    item_id: uuid.UUID
    external_id: str | None
    prompt: Any
    response_ids: list[str]
    texts: list[str]
    models: list[str | None]
    votes: list[Vote]


@dataclass(slots=True)
class Outcome:
    """What the raters decided on one item; pairs are (chosen, rejected) response indices."""

    status: Status
    n_votes: int
    agreement: float | None = None
    pairs: list[tuple[int, int]] = field(default_factory=list)
    # Pairs of equal standing: the tie or both-bad pair, or tied places of a ranking.
    level_pairs: list[tuple[int, int]] = field(default_factory=list)
    margin: float | None = None


def preference_class(choice: str | None, response_ids: Sequence[str]) -> int | None:
    if choice is None:
        return None
    if choice == TIE:
        return TIE_CLASS
    if choice == BOTH_BAD:
        return BOTH_BAD_CLASS
    try:
        return response_ids.index(choice)
    except ValueError:
        return None


class PackedIds:
    """Item ids in order, 16 bytes each: a list of UUID objects costs about 100 bytes per id, which at a
    million-vote export is tens of megabytes."""

    def __init__(self) -> None:
        self._data = bytearray()

    def append(self, item_id: uuid.UUID) -> None:
        self._data += item_id.bytes

    def extend_packed(self, packed: bytes) -> None:
        """Add ids given as their 16 bytes each, one after another."""
        self._data += packed

    def __len__(self) -> int:
        return len(self._data) // 16

    def __getitem__(self, index: int) -> uuid.UUID:
        if not 0 <= index < len(self):
            raise IndexError(index)
        return uuid.UUID(bytes=bytes(self._data[16 * index : 16 * index + 16]))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PackedIds) and self._data == other._data

    __hash__ = None  # type: ignore[assignment]


# Votes kept in memory before they go to a temporary file as one block (6 MB there): Dawid-Skene then reads
# the votes a block at a time, so an export's memory does not grow with the number of votes.
SPILL_VOTES = 250_000


@dataclass
class LabelArrays:
    """Every counted preference vote as (unit, rater, class) indices, units in export order.

    Past `spill_votes` votes, whole units go to a temporary file in blocks.
    """

    unit: array[int] = field(default_factory=lambda: array("q"))
    rater: array[int] = field(default_factory=lambda: array("q"))
    # Preference classes, or for rankings each response's place (units are then item x response).
    value: array[float] = field(default_factory=lambda: array("d"))
    unit_items: PackedIds = field(default_factory=PackedIds)
    raters: dict[Hashable, int] = field(default_factory=dict)
    n_units: int = 0
    spill_votes: int = field(default_factory=lambda: SPILL_VOTES)
    # (first unit, unit after the last, byte offset, votes) of each block in the file.
    _blocks: list[tuple[int, int, int, int]] = field(default_factory=list)
    _file: IO[bytes] | None = None
    _first_unit: int = 0

    def add_vote(self, unit: int, user_id: Hashable, value: float) -> None:
        self.unit.append(unit)
        self.rater.append(self.raters.setdefault(user_id, len(self.raters)))
        self.value.append(value)

    def end_item(self, item_id: uuid.UUID) -> None:
        """Close the unit of one preference item whose votes were added."""
        self.unit_items.append(item_id)
        self.n_units += 1
        self._spill_when_full()

    def add_votes(self, items: np.ndarray, raters: np.ndarray, classes: np.ndarray) -> None:
        """Votes of whole items at once, by item and in the order they were given: each vote's item and rater
        as 16-byte ids, and its preference class. The arrays and blocks are those of adding the votes an item
        at a time: raters are numbered as they first appear, and a block spills after the item that fills it.
        """
        if not len(items):
            return
        is_start = np.concatenate(([True], items[1:] != items[:-1]))
        starts = np.flatnonzero(is_start)
        ends = np.append(starts[1:], len(items))
        item_of_vote = np.cumsum(is_start) - 1
        first_seen, inverse = np.unique(raters, return_index=True, return_inverse=True)[1:]
        numbers = np.empty(len(first_seen), dtype=np.int64)
        for distinct in np.argsort(first_seen, kind="stable"):
            key = raters[first_seen[distinct]].tobytes()
            numbers[distinct] = self.raters.setdefault(key, len(self.raters))
        rater_of_vote = numbers[inverse.reshape(-1)]
        done = 0
        while done < len(starts):
            first_vote = int(starts[done])
            room = self.spill_votes - len(self.unit)
            last = min(int(np.searchsorted(ends, first_vote + room)), len(starts) - 1)
            after = int(ends[last])
            units = self.n_units + item_of_vote[first_vote:after] - done
            self.unit.frombytes(units.astype(np.int64).tobytes())
            self.rater.frombytes(rater_of_vote[first_vote:after].tobytes())
            self.value.frombytes(classes[first_vote:after].astype(np.float64).tobytes())
            self.unit_items.extend_packed(items[starts[done : last + 1]].tobytes())
            self.n_units += last + 1 - done
            self._spill_when_full()
            done = last + 1

    def add_preference(self, group: ItemGroup) -> None:
        added = False
        for vote in group.votes:
            label = preference_class(vote.choice, group.response_ids)
            if label is not None:
                self.add_vote(self.n_units, vote.user_id, label)
                added = True
        if added:
            self.end_item(group.item_id)

    def add_ranking(self, group: ItemGroup) -> None:
        added = False
        for vote in group.votes:
            places = ranking_positions(vote.ranking, group.response_ids)
            for offset, place in enumerate(places or ()):
                self.add_vote(self.n_units + offset, vote.user_id, place)
                added = True
        if added:
            self.n_units += len(group.response_ids)
            self._spill_when_full()

    def _spill_when_full(self) -> None:
        if len(self.unit) < self.spill_votes:
            return
        if self._file is None:
            # Unlinked on creation: it goes with this object, or with the process if that dies first.
            self._file = tempfile.TemporaryFile(prefix="prefhub-votes-")  # noqa: SIM115
        offset = self._file.seek(0, io.SEEK_END)
        for values in (self.unit, self.rater, self.value):
            values.tofile(self._file)
        self._blocks.append((self._first_unit, self.n_units, offset, len(self.unit)))
        self._first_unit = self.n_units
        self.unit, self.rater, self.value = array("q"), array("q"), array("d")

    def _read(self, dtype: type[np.generic], count: int) -> np.ndarray:
        assert self._file is not None
        return np.frombuffer(self._file.read(8 * count), dtype=dtype)

    def blocks(self) -> Iterator[tuple[int, int, np.ndarray, np.ndarray, np.ndarray]]:
        """(first unit, unit after the last, unit, rater, value) of each block, the one in memory last."""
        for first, after, offset, count in self._blocks:
            assert self._file is not None
            self._file.seek(offset)
            yield (
                first,
                after,
                self._read(np.int64, count),
                self._read(np.int64, count),
                self._read(np.float64, count),
            )
        if self.n_units > self._first_unit or not self._blocks:
            # Read-only views of the votes in memory; no vote can be added while one lives.
            yield (
                self._first_unit,
                self.n_units,
                np.frombuffer(self.unit, dtype=np.int64),
                np.frombuffer(self.rater, dtype=np.int64),
                np.frombuffer(self.value, dtype=np.float64),
            )

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every vote at once: views without copying while nothing was spilled."""
        parts = list(self.blocks())
        if len(parts) == 1:
            return parts[0][2], parts[0][3], parts[0][4]
        return tuple(np.concatenate([part[i] for part in parts]) for i in (2, 3, 4))  # type: ignore[return-value]

    def vote_blocks(self) -> Iterator[VoteBlock]:
        for first, after, unit, rater, value in self.blocks():
            yield VoteBlock(first, after, unit, rater, value.astype(np.int64))

    def digest(self) -> bytes:
        """A hash of every vote and of the counts a fit depends on; item ids are not part of a fit."""
        hashed = hashlib.blake2b(digest_size=20)
        hashed.update(np.array([self.n_units, len(self.raters)], dtype=np.int64).tobytes())
        for first, after, unit, rater, value in self.blocks():
            hashed.update(np.array([first, after, unit.size], dtype=np.int64).tobytes())
            for values in (unit, rater, value):
                hashed.update(values.tobytes())
        return hashed.digest()


class RecentFits:
    """The last few Dawid-Skene fits, by a digest of their votes, within a budget of bytes.

    The export page previews the same votes again at every change of its options, and an export often
    follows its preview. The fit depends on the votes alone (the options filter its labels afterwards) and
    costs about a third of a Dawid-Skene preview. A fit is only reused for exactly the same votes.
    """

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self._fits: OrderedDict[bytes, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> tuple[np.ndarray, np.ndarray] | None:
        with self._lock:
            found = self._fits.get(key)
            if found is not None:
                self._fits.move_to_end(key)
            return found

    def put(self, key: bytes, label: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keep a fit, read-only, and return it as kept (as given when it is over the budget)."""
        # Four classes fit in a byte: a fit costs 9 bytes per item.
        kept = (label.astype(np.int8), confidence.copy())
        if sum(a.nbytes for a in kept) > self.budget_bytes:
            return label, confidence
        for values in kept:
            values.setflags(write=False)
        with self._lock:
            self._fits[key] = kept
            self._fits.move_to_end(key)
            while sum(a.nbytes for fit in self._fits.values() for a in fit) > self.budget_bytes:
                self._fits.popitem(last=False)
        return kept

    def clear(self) -> None:
        with self._lock:
            self._fits.clear()


# 48 MB: fits of up to about 5M items (15M annotations at three per item), well inside an export's memory target.
RECENT_FITS = RecentFits(48 * 2**20)


@dataclass
class DawidSkeneLabels:
    """Per unit of LabelArrays: the Dawid-Skene class and its posterior probability."""

    unit_items: PackedIds
    label: np.ndarray
    confidence: np.ndarray
    next_unit: int = 0

    @classmethod
    def fit(cls, labels: LabelArrays) -> DawidSkeneLabels:
        if labels.n_units == 0:
            return cls(PackedIds(), np.zeros(0, dtype=np.int64), np.zeros(0))
        key = labels.digest()
        known = RECENT_FITS.get(key)
        if known is not None:
            return cls(labels.unit_items, *known)
        result = dawid_skene_blocks(
            labels.vote_blocks, labels.n_units, len(labels.raters), N_PREFERENCE_CLASSES
        )
        return cls(labels.unit_items, *RECENT_FITS.put(key, result.label, result.confidence))

    def take(self, item_id: uuid.UUID) -> tuple[int, float] | None:
        # Both passes walk the items in the same order within one snapshot, so units come in turn.
        unit = self.next_unit
        if unit >= len(self.unit_items) or self.unit_items[unit] != item_id:
            return None
        self.next_unit += 1
        return int(self.label[unit]), float(self.confidence[unit])


def _margin(
    votes: Sequence[tuple[int, int | None]], winner: int, margins: Mapping[int, float] | None
) -> float | None:
    values: list[float] = []
    for label, strength in votes:
        if label == winner and strength is not None:
            mapped = margins.get(strength) if margins is not None else float(strength)
            if mapped is not None:
                values.append(mapped)
    return sum(values) / len(values) if values else None


def decided_outcome(winner: int, n_votes: int, agreement: float, margin: float | None) -> Outcome:
    """The outcome of a preference item whose winning class is known; margin counts for a chosen response."""
    if winner == TIE_CLASS:
        return Outcome("tie", n_votes, agreement, level_pairs=[(0, 1)])
    if winner == BOTH_BAD_CLASS:
        return Outcome("both_bad", n_votes, agreement, level_pairs=[(0, 1)])
    return Outcome("pairs", n_votes, agreement, pairs=[(winner, 1 - winner)], margin=margin)


def _preference_outcome(
    votes: Sequence[tuple[int, int | None]],
    winner: int,
    agreement: float,
    margins: Mapping[int, float] | None,
) -> Outcome:
    margin = _margin(votes, winner, margins) if winner not in (TIE_CLASS, BOTH_BAD_CLASS) else None
    return decided_outcome(winner, len(votes), agreement, margin)


def aggregate_preferences(
    groups: Sequence[ItemGroup],
    margins: Mapping[int, float] | None,
    dawid_skene_labels: DawidSkeneLabels | None = None,
) -> list[Outcome]:
    """Outcomes of a chunk of preference items; a tied majority vote leaves the item unresolved."""
    per_item = [
        [
            (label, v.strength)
            for v in g.votes
            if (label := preference_class(v.choice, g.response_ids)) is not None
        ]
        for g in groups
    ]
    units = [i for i, votes in enumerate(per_item) for _ in votes]
    labels = [lab for votes in per_item for lab, _ in votes]
    vote = majority_vote(
        np.asarray(units, dtype=np.int64),
        np.asarray(labels, dtype=np.int64),
        len(groups),
        N_PREFERENCE_CLASSES,
    )
    outcomes: list[Outcome] = []
    for i, (group, votes) in enumerate(zip(groups, per_item, strict=True)):
        if not votes:
            outcomes.append(Outcome("none", 0))
        elif dawid_skene_labels is not None:
            taken = dawid_skene_labels.take(group.item_id)
            if taken is None:
                outcomes.append(Outcome("unresolved", len(votes)))
            else:
                outcomes.append(_preference_outcome(votes, taken[0], taken[1], margins))
        elif vote.tied[i]:
            outcomes.append(Outcome("unresolved", len(votes), float(vote.share[i])))
        else:
            outcomes.append(_preference_outcome(votes, int(vote.label[i]), float(vote.share[i]), margins))
    return outcomes


def ranking_positions(answer: Any, response_ids: Sequence[str]) -> list[float] | None:
    """Each response's place in one rater's ranking, tied groups sharing the mean of their places."""
    if not isinstance(answer, list):
        return None
    index = {rid: i for i, rid in enumerate(response_ids)}
    places: list[float | None] = [None] * len(response_ids)
    start = 1
    for entry in answer:
        members = entry if isinstance(entry, list) else [entry]
        place = start + (len(members) - 1) / 2
        for rid in members:
            if rid in index:
                places[index[rid]] = place
        start += len(members)
    if any(p is None for p in places):
        return None
    return [float(p) for p in places if p is not None]


def _ranking_agreement(ranks: Sequence[Sequence[float]], pairs: Sequence[tuple[int, int]]) -> float | None:
    if not pairs:
        return None
    shares = [sum(1 for r in ranks if r[a] < r[b]) / len(ranks) for a, b in pairs]
    return sum(shares) / len(shares)


def aggregate_ranking(group: ItemGroup, best_only: bool) -> Outcome:
    """Order by mean rank position; pairs from that order (all of them, or the best against each other)."""
    ranks = [r for v in group.votes if (r := ranking_positions(v.ranking, group.response_ids)) is not None]
    if not ranks:
        return Outcome("none", 0)
    mean = [sum(r[i] for r in ranks) / len(ranks) for i in range(len(group.response_ids))]
    order = sorted(range(len(mean)), key=lambda i: (mean[i], i))
    candidates = (
        [(order[0], other) for other in order[1:]]
        if best_only
        else [(a, b) for n, a in enumerate(order) for b in order[n + 1 :]]
    )
    decided = [(a, b) for a, b in candidates if mean[b] - mean[a] > RANK_EPSILON]
    level = [(a, b) for a, b in candidates if mean[b] - mean[a] <= RANK_EPSILON]
    if best_only and level:
        # Several responses share the best place: there is no single best one to pair against the rest.
        return Outcome("tie", len(ranks), None, level_pairs=level)
    if not decided:
        return Outcome("tie", len(ranks), None, level_pairs=level)
    return Outcome("pairs", len(ranks), _ranking_agreement(ranks, decided), pairs=decided, level_pairs=level)


@dataclass(frozen=True, slots=True)
class ResponseScore:
    count: int
    mean: float | None
    std: float | None


def rating_scores(groups: Sequence[ItemGroup], score_index: int) -> list[list[ResponseScore]]:
    """Per item and response: count, mean and sample std of one rating question's scores."""
    offsets, response_idx, values = [], [], []
    total = 0
    for group in groups:
        offsets.append(total)
        position = {rid: i for i, rid in enumerate(group.response_ids)}
        for vote in group.votes:
            answer = vote.scores[score_index] if score_index < len(vote.scores) else None
            if not isinstance(answer, Mapping):
                continue
            for rid, score in answer.items():
                if rid in position and isinstance(score, int | float) and not isinstance(score, bool):
                    response_idx.append(total + position[rid])
                    values.append(float(score))
        total += len(group.response_ids)
    summary = rating_summary(np.asarray(response_idx, dtype=np.int64), np.asarray(values), total)
    records = summary.records()
    return [
        [
            ResponseScore(r["count"], r["mean"], r["std"])
            for r in records[offset : offset + len(group.response_ids)]
        ]
        for offset, group in zip(offsets, groups, strict=True)
    ]
