"""Row values of each pair and ratings format, and the hashes that split and de-duplicate rows."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import xxhash

from app.exports.aggregate import ItemGroup, Outcome, ResponseScore
from app.exports.formats import prompt_value, reply_value, with_prompt

if TYPE_CHECKING:
    from app.exports.pipeline import ExportPlan

PSEUDONYM_LENGTH = 16


def canonical(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def split_of(prompt_key: str, splits: Sequence[tuple[str, float]], seed: int) -> str:
    """The split a prompt belongs to: a hash of the prompt and seed, so one prompt is never in two."""
    digest = hashlib.sha256(f"{seed}\x00{prompt_key}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64
    total = 0.0
    for name, fraction in splits:
        total += fraction
        if point < total:
            return name
    return splits[-1][0]


def row_key(*parts: str) -> int:
    """A 64-bit digest of a row's content: de-duplication keeps these, not the text.

    XXH3 reads the gigabyte of text a large export carries about eight times faster than BLAKE2 did; the
    key guards against repeats, not against an adversary.
    """
    hasher = xxhash.xxh3_64()
    for part in parts:
        hasher.update(part.encode())
        hasher.update(b"\x00")
    return hasher.intdigest()


class SeenKeys:
    """The row keys an export has written, as sorted runs whose sizes halve like a binary counter's digits.

    A Python set of ints costs about 70 bytes a key; these runs cost 8 (16 while two merge), so removing
    duplicates from tens of millions of rows stays within an export's memory budget. A batch of keys is
    looked up with one binary search per run, and there are at most log2(keys / batch) runs.
    """

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs)

    def add_new(self, keys: np.ndarray) -> np.ndarray:
        """Mark which of `keys` were not seen before, counting only the first of repeats within the batch;
        adds them. Returns a boolean mask in the order of `keys`."""
        keys = np.asarray(keys, dtype=np.uint64)
        fresh = np.zeros(len(keys), dtype=bool)
        if len(keys) == 0:
            return fresh
        unique, first = np.unique(keys, return_index=True)
        new = np.ones(len(unique), dtype=bool)
        for run in self._runs:
            at = np.minimum(np.searchsorted(run, unique), len(run) - 1)
            new &= run[at] != unique
        fresh[first[new]] = True
        self._push(unique[new])
        return fresh

    def _push(self, run: np.ndarray) -> None:
        if len(run) == 0:
            return
        self._runs.append(run)
        while len(self._runs) > 1 and len(self._runs[-1]) >= len(self._runs[-2]):
            newer, older = self._runs.pop(), self._runs.pop()
            merged = np.concatenate((older, newer))
            # Timsort finds the two sorted halves and merges them in one pass.
            merged.sort(kind="stable")
            self._runs.append(merged)


def rater_pseudonym(secret: str, user_id: uuid.UUID) -> str:
    """Stable per installation, meaningless outside it: the same rater gets the same id in every export."""
    mac = hmac.new(secret.encode(), b"rater:" + str(user_id).encode(), hashlib.sha256)
    return mac.hexdigest()[:PSEUDONYM_LENGTH]


def round_or_none(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _score(scores: list[ResponseScore] | None, index: int) -> float | None:
    return round_or_none(scores[index].mean) if scores is not None else None


def outcome_pairs(plan: ExportPlan, outcome: Outcome) -> list[tuple[int, int, str]]:
    """(a, b, result) of each pair an outcome gives: chosen over rejected, then with include_ties the tie or
    both-bad pairs; kto has no row for a tie."""
    pairs = [(a, b, "chosen") for a, b in outcome.pairs]
    if plan.options.include_ties:
        level = "both_bad" if outcome.status == "both_bad" else "tie"
        if plan.options.format != "kto" or level != "tie":
            pairs += [(a, b, level) for a, b in outcome.level_pairs]
    return pairs


KeyParts = tuple[int | str, ...]


def key_parts(kind: str, a: int, b: int, result: str) -> list[KeyParts]:
    """For each row pair_rows writes for one pair, what its duplicate key hashes after the prompt, in order:
    an int stands for that response's text. A preview hashes the texts' lengths in their place."""
    if kind == "kto":
        return [(a, str(result == "chosen")), (b, "False")]
    return [(a, b)]


def content_key(prompt_key: str, texts: Sequence[str], parts: KeyParts) -> int:
    """The duplicate key of a row: its prompt, then each part (a response's text, or a label)."""
    return row_key(prompt_key, *(texts[p] if isinstance(p, int) else p for p in parts))


def pair_rows(
    plan: ExportPlan, group: ItemGroup, outcome: Outcome, scores: list[ResponseScore] | None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(dedup key, row) for each pair the outcome yields in the preference, implicit or kto format."""
    kind, chat = plan.options.format, plan.chat
    prompt = prompt_value(group.prompt, chat)
    prompt_key = canonical(prompt)
    texts = group.texts
    common = {
        "item_id": str(group.item_id),
        "external_id": group.external_id,
        "n_annotations": outcome.n_votes,
        "agreement": round_or_none(outcome.agreement),
    }
    for a, b, result in outcome_pairs(plan, outcome):
        keys = [content_key(prompt_key, texts, parts) for parts in key_parts(kind, a, b, result)]
        if kind == "kto":
            for key, index, good in ((keys[0], a, result == "chosen"), (keys[1], b, False)):
                row: dict[str, Any] = {
                    "prompt": prompt,
                    "completion": reply_value(texts[index], chat),
                    "label": good,
                }
                if plan.options.include_ties:
                    row["outcome"] = result
                yield key, row | common
            continue
        if kind == "preference":
            row = {
                "prompt": prompt,
                "chosen": reply_value(texts[a], chat),
                "rejected": reply_value(texts[b], chat),
            }
        else:
            row = {
                "chosen": with_prompt(group.prompt, texts[a], chat),
                "rejected": with_prompt(group.prompt, texts[b], chat),
            }
        row["margin"] = outcome.margin if result == "chosen" else None
        if plan.score_questions:
            row["score_chosen"], row["score_rejected"] = _score(scores, a), _score(scores, b)
        if plan.options.include_ties:
            row["outcome"] = result
        yield keys[0], row | common


def rating_rows(
    plan: ExportPlan, group: ItemGroup, scores: list[list[ResponseScore]]
) -> Iterator[tuple[int, dict[str, Any]]]:
    prompt = prompt_value(group.prompt, plan.chat)
    prompt_key = canonical(prompt)
    for index, response_id in enumerate(group.response_ids):
        row: dict[str, Any] = {
            "item_id": str(group.item_id),
            "external_id": group.external_id,
            "response_id": response_id,
            "model": group.models[index],
            "prompt": prompt,
            "response": group.texts[index],
        }
        for name, per_response in zip(plan.score_questions, scores, strict=True):
            score = per_response[index]
            row[f"{name}_mean"] = round_or_none(score.mean)
            row[f"{name}_std"] = round_or_none(score.std)
            row[f"{name}_count"] = score.count
        row["n_annotations"] = len(group.votes)
        yield row_key(prompt_key, group.texts[index]), row
