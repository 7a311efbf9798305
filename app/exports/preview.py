"""Counting what an export would keep, without building its rows.

A build reads every prompt and response to write rows and to find repeated ones. A preview needs the texts
only for the duplicate count, and two rows can only repeat each other if they have the same prompt and
texts of the same lengths. So on PostgreSQL the preview reads the tallies with each text's length in bytes
(taken from the stored value's header, without reading the text), keys every row by its prompt and those
lengths, and reads the texts of just the rows that share a key with another row. The counts are exactly
the build's: a shared key only sends a row to the exact check.
"""

from __future__ import annotations

import uuid
from array import array
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import xxhash
from sqlalchemy.orm import Session

from app.exports import repository
from app.exports.formats import chat_prompt, prompt_value
from app.exports.pipeline import (
    ExportPlan,
    Tally,
    fit_tallied,
    iter_rows,
    keep_item,
    read_chunks,
    tallied_in_database,
    tallied_items,
    tallied_outcome,
)
from app.exports.rows import KeyParts, SeenKeys, canonical, content_key, key_parts, outcome_pairs, split_of

# Items whose texts one query reads for the exact check.
TEXT_BATCH = 1000


def count_rows(session: Session, plan: ExportPlan, tally: Tally) -> None:
    """Fill `tally` with the counts a build of `plan` would make: items, filters, duplicates, rows per split."""
    if plan.options.format != "raw" and tallied_in_database(session, plan):
        _count_tallied(session, plan, tally)
        return
    for _ in iter_rows(session, plan, tally):
        pass


def prompt_hash(prompt: Any) -> int:
    """Equal for any two prompts an export writes the same way (a text and the one user turn holding it
    are the same chat prompt); a collision only costs an exact check."""
    if isinstance(prompt, list):
        turns = chat_prompt(prompt)
        if len(turns) != 1 or turns[0]["role"] != "user":
            return xxhash.xxh3_64_intdigest(canonical(turns).encode(), seed=1)
        prompt = turns[0]["content"]
    return xxhash.xxh3_64_intdigest(str(prompt).encode())


class _Rows:
    """Every row a preview counts, in compact arrays: per item its prompt's hash, text lengths and id (36
    bytes), per row its item, key parts and split (6 bytes)."""

    def __init__(self) -> None:
        self.prompts = array("Q")
        self.lengths = array("Q")
        self.ids = bytearray()
        self.items = array("I")
        self.parts = array("B")
        self.splits = array("B")
        self.part_codes: dict[KeyParts, int] = {}
        self.split_codes: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.items)

    def add_item(self, prompt: int, item_id: uuid.UUID, lengths: tuple[int, int]) -> int:
        self.prompts.append(prompt)
        self.lengths.extend(lengths)
        self.ids += item_id.bytes
        return len(self.prompts) - 1

    def add_row(self, item: int, parts: KeyParts, split: str) -> None:
        self.items.append(item)
        self.parts.append(self.part_codes.setdefault(parts, len(self.part_codes)))
        self.splits.append(self.split_codes.setdefault(split, len(self.split_codes)))

    def per_split(self) -> Counter[str]:
        counts = np.bincount(np.frombuffer(self.splits, dtype=np.uint8), minlength=len(self.split_codes))
        return Counter({name: int(counts[code]) for name, code in self.split_codes.items()})

    def _stand_ins(self) -> np.ndarray:
        """Per row: its prompt's hash and, for each key part, the text's length or the kto label."""
        items = np.frombuffer(self.items, dtype=np.uint32)
        lengths = np.frombuffer(self.lengths, dtype=np.uint64).reshape(-1, 2)[items]
        parts = np.frombuffer(self.parts, dtype=np.uint8)
        key = np.empty((len(items), 3), dtype=np.uint64)
        key[:, 0] = np.frombuffer(self.prompts, dtype=np.uint64)[items]
        for shape, code in self.part_codes.items():
            rows = parts == code
            for column, part in enumerate(shape, start=1):
                key[rows, column] = lengths[rows, part] if isinstance(part, int) else int(part == "True")
        return key

    def sharing_a_key(self) -> Iterator[tuple[uuid.UUID, list[tuple[KeyParts, str]]]]:
        """(item id, [(key parts, split)]) of the rows whose prompt and lengths another row has, by item."""
        if not self.items:
            return
        _, inverse, counts = np.unique(self._stand_ins(), axis=0, return_inverse=True, return_counts=True)
        chosen = np.flatnonzero(counts[inverse.reshape(-1)] > 1)
        items = np.frombuffer(self.items, dtype=np.uint32)[chosen]
        # By item id, as two big-endian halves: the order of the ids' bytes.
        halves = np.frombuffer(bytes(self.ids), dtype=">u8").reshape(-1, 2)[items]
        chosen = chosen[np.lexsort((halves[:, 1], halves[:, 0]))]
        parts_of = {code: parts for parts, code in self.part_codes.items()}
        split_named = {code: name for name, code in self.split_codes.items()}
        current = -1
        rows: list[tuple[KeyParts, str]] = []
        for i in chosen.tolist():
            if self.items[i] != current:
                if current >= 0:
                    yield uuid.UUID(bytes=bytes(self.ids[16 * current : 16 * current + 16])), rows
                current, rows = self.items[i], []
            rows.append((parts_of[self.parts[i]], split_named[self.splits[i]]))
        if current >= 0:
            yield uuid.UUID(bytes=bytes(self.ids[16 * current : 16 * current + 16])), rows


def _count_tallied(session: Session, plan: ExportPlan, tally: Tally) -> None:
    options = plan.options
    fitted = fit_tallied(session, plan, tally, None) if options.aggregation == "dawid-skene" else None
    rows = _Rows()
    for chunk in read_chunks(session, tallied_items(session, plan, content="lengths", with_votes=False)):
        for row in chunk:
            item_id, prompt, n_counted = row[0], row[2], row[7]
            tally.items += 1
            tally.annotations += n_counted
            outcome = tallied_outcome(item_id, row[8:12], row[12:14], fitted)
            if not keep_item(plan, outcome, row[14], tally):
                continue
            split = "all"
            if plan.splits:
                split = split_of(canonical(prompt_value(prompt, plan.chat)), plan.splits, options.seed)
            item = rows.add_item(prompt_hash(prompt), item_id, (row[4], row[6]))
            for a, b, result in outcome_pairs(plan, outcome):
                for parts in key_parts(options.format, a, b, result):
                    rows.add_row(item, parts, split)
    if rows:
        tally.steps["rows_before_dedup"] = len(rows)
    tally.rows.update(rows.per_split())
    _drop_duplicates(session, plan, rows, tally)


def _drop_duplicates(session: Session, plan: ExportPlan, rows: _Rows, tally: Tally) -> None:
    """Read the texts of rows that may repeat another and take the true repeats off the counts."""
    seen = SeenKeys()
    batch: list[tuple[uuid.UUID, list[tuple[KeyParts, str]]]] = []

    def check() -> None:
        wanted = dict(batch)
        keys: list[int] = []
        splits: list[str] = []
        for item_id, prompt, first, second in repository.stream_pair_texts(session, list(wanted)):
            prompt_key, texts = canonical(prompt_value(prompt, plan.chat)), (first, second)
            for parts, split in wanted[item_id]:
                keys.append(content_key(prompt_key, texts, parts))
                splits.append(split)
        fresh = seen.add_new(np.array(keys, dtype=np.uint64))
        for split, first_seen in zip(splits, fresh.tolist(), strict=True):
            if not first_seen:
                tally.dropped["duplicates"] += 1
                tally.rows[split] -= 1
        batch.clear()

    for entry in rows.sharing_a_key():
        batch.append(entry)
        if len(batch) >= TEXT_BATCH:
            check()
    if batch:
        check()
