"""Votes collected for Dawid-Skene go to a temporary file in blocks of whole items, and read back the same."""

from __future__ import annotations

import uuid
from itertools import pairwise

import numpy as np

from app.exports.aggregate import RECENT_FITS, DawidSkeneLabels, LabelArrays, RecentFits


def _collect(labels: LabelArrays, n_items: int) -> LabelArrays:
    rng = np.random.default_rng(4)
    for item in range(n_items):
        truth = item % 2
        for rater in range(4):
            # Two careful raters, two who answer at random.
            label = truth if rater < 2 else int(rng.integers(0, 4))
            labels.add_vote(labels.n_units, f"rater-{rater}", label)
        labels.end_item(uuid.UUID(int=item + 1))
    return labels


def test_spilled_votes_read_back_as_the_votes_kept_in_memory() -> None:
    kept = _collect(LabelArrays(), 300)
    spilled = _collect(LabelArrays(spill_votes=50), 300)

    blocks = list(spilled.blocks())
    assert len(blocks) == 24  # 23 full blocks of 13 items (52 votes), then the 1 item still in memory
    assert [(first, after) for first, after, *_ in blocks][:2] == [(0, 13), (13, 26)]
    assert blocks[-1][:2] == (299, 300)
    for mine, theirs in zip(spilled.arrays(), kept.arrays(), strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_dawid_skene_over_spilled_blocks_gives_the_labels_of_one_block() -> None:
    kept = DawidSkeneLabels.fit(_collect(LabelArrays(), 300))
    spilled = DawidSkeneLabels.fit(_collect(LabelArrays(spill_votes=50), 300))

    np.testing.assert_array_equal(spilled.label, kept.label)
    np.testing.assert_allclose(spilled.confidence, kept.confidence, rtol=1e-9)
    assert spilled.unit_items == kept.unit_items
    assert len(set(kept.label.tolist())) > 1


def _unanimous(first_item_label: int) -> LabelArrays:
    """Ten items whose three raters agree: label 0 or 1 by turns, the first item's label given."""
    labels = LabelArrays()
    for item in range(10):
        label = first_item_label if item == 0 else item % 2
        for rater in range(3):
            labels.add_vote(labels.n_units, f"rater-{rater}", label)
        labels.end_item(uuid.UUID(int=item + 1))
    return labels


def test_a_second_fit_of_the_same_votes_is_the_kept_one() -> None:
    RECENT_FITS.clear()
    votes = _collect(LabelArrays(), 300)
    first = DawidSkeneLabels.fit(votes)
    assert RECENT_FITS.get(votes.digest()) is not None

    again = DawidSkeneLabels.fit(_collect(LabelArrays(), 300))
    assert again.label is first.label and again.confidence is first.confidence
    # Kept fits are shared between exports, so nobody may change them.
    assert not first.label.flags.writeable and not first.confidence.flags.writeable


def test_votes_that_differ_in_one_item_are_fitted_again() -> None:
    RECENT_FITS.clear()
    before = DawidSkeneLabels.fit(_unanimous(first_item_label=0))
    after = DawidSkeneLabels.fit(_unanimous(first_item_label=1))

    assert _unanimous(0).digest() != _unanimous(1).digest()
    assert int(before.label[0]) == 0 and int(after.label[0]) == 1
    np.testing.assert_array_equal(before.label[1:], after.label[1:])


def test_recent_fits_keep_the_newest_within_their_budget() -> None:
    fits = RecentFits(budget_bytes=2 * 9 * 100)  # two fits of 100 units
    for key in (b"a", b"b", b"c"):
        fits.put(key, np.zeros(100, dtype=np.int64), np.ones(100))
    assert fits.get(b"a") is None
    assert fits.get(b"b") is not None and fits.get(b"c") is not None

    # A fit larger than the whole budget is handed back as it is, and not kept.
    label, confidence = np.zeros(1000, dtype=np.int64), np.ones(1000)
    handed_back = fits.put(b"large", label, confidence)
    assert handed_back[0] is label and handed_back[1] is confidence
    assert fits.get(b"large") is None and fits.get(b"c") is not None


def test_votes_added_in_blocks_are_the_votes_added_an_item_at_a_time() -> None:
    rng = np.random.default_rng(7)
    rater_ids = [uuid.uuid4() for _ in range(9)]
    items = []
    for n in range(200):
        voters = rng.choice(9, size=int(rng.integers(1, 6)), replace=False)
        items.append((uuid.UUID(int=n + 1), [(rater_ids[r], int(rng.integers(0, 4))) for r in voters]))

    one_by_one = LabelArrays(spill_votes=40)
    for item_id, votes in items:
        for rater, label in votes:
            one_by_one.add_vote(one_by_one.n_units, rater.bytes, label)
        one_by_one.end_item(item_id)

    in_blocks = LabelArrays(spill_votes=40)
    # Blocks of whole items, of uneven sizes, as the database's stream hands them over.
    cuts = [0, 1, 30, 31, 90, 200]
    for start, stop in pairwise(cuts):
        flat = [(item_id, rater, label) for item_id, votes in items[start:stop] for rater, label in votes]
        in_blocks.add_votes(
            np.frombuffer(b"".join(i.bytes for i, _, _ in flat), dtype="V16"),
            np.frombuffer(b"".join(r.bytes for _, r, _ in flat), dtype="V16"),
            np.array([label for _, _, label in flat], dtype=np.int16),
        )

    assert [b[:2] for b in in_blocks.blocks()] == [b[:2] for b in one_by_one.blocks()]
    assert len(list(in_blocks.blocks())) > 5
    for mine, theirs in zip(in_blocks.arrays(), one_by_one.arrays(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert in_blocks.unit_items == one_by_one.unit_items
    assert in_blocks.raters == one_by_one.raters
    assert in_blocks.digest() == one_by_one.digest()
