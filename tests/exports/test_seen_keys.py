"""The compact set of row keys answers as a Python set would, batch by batch."""

from __future__ import annotations

import random

import numpy as np

from app.exports.rows import SeenKeys


def test_only_the_first_of_each_key_is_new_across_and_within_batches() -> None:
    rng = random.Random(3)
    for _ in range(200):
        seen, reference = SeenKeys(), set()
        # A small pool makes repeats common, within a batch and across batches; 0 and 2**64 - 1 are edges.
        pool = [0, 2**64 - 1] + [rng.getrandbits(64) for _ in range(rng.randint(1, 300))]
        for _ in range(rng.randint(1, 40)):
            batch = [rng.choice(pool) for _ in range(rng.randint(0, 80))]
            expected = []
            for key in batch:
                expected.append(key not in reference)
                reference.add(key)
            assert seen.add_new(np.array(batch, dtype=np.uint64)).tolist() == expected
        assert len(seen) == len(reference)


def test_memory_is_eight_bytes_a_key() -> None:
    seen = SeenKeys()
    generator = np.random.default_rng(1)
    for _ in range(200):
        seen.add_new(generator.integers(0, 2**63, 500, dtype=np.uint64))
    assert len(seen) == 100_000
    assert sum(run.nbytes for run in seen._runs) == 8 * 100_000
