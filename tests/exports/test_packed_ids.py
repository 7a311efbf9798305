"""Dawid-Skene's item ids, packed 16 bytes each, come back whole and in order."""

from __future__ import annotations

import uuid

import pytest

from app.exports.aggregate import PackedIds


def test_packed_item_ids_give_back_each_id_in_order() -> None:
    ids = [uuid.uuid4() for _ in range(3)]
    packed = PackedIds()
    for item_id in ids:
        packed.append(item_id)
    assert len(packed) == 3
    assert [packed[i] for i in range(3)] == ids
    with pytest.raises(IndexError):
        packed[3]
