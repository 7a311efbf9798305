"""Votes collected for Dawid-Skene go to a temporary file in blocks of whole items, and read back the same."""

from __future__ import annotations

import uuid

import numpy as np

from app.exports.aggregate import DawidSkeneLabels, LabelArrays


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
