"""JSON the database hands back is read exactly as the standard library reads it, only faster."""

from __future__ import annotations

import json

import pytest

from app.json_codec import load_stored_json

SAMPLES = [
    b'{"answers": {"overall": {"choice": "tie", "strength": 2}}, "flags": ["unsafe"]}',
    b'{"wide": 123456789012345678901234567890, "negative": -98765432109876543210}',
    b'[1.5, 1e300, -0.0, "\\u00e9\\ud83d\\ude00", null, true]',
    '{"text": "\u4e2d\u6587"}'.encode(),
]


@pytest.mark.parametrize("raw", SAMPLES)
def test_values_equal_the_standard_decoders(raw: bytes) -> None:
    expected = json.loads(raw)
    assert load_stored_json(raw) == expected
    assert load_stored_json(memoryview(raw)) == expected
    assert load_stored_json(raw.decode()) == expected


def test_integers_wider_than_64_bits_stay_exact_integers() -> None:
    value = load_stored_json(b'{"n": 123456789012345678901234567890}')["n"]
    assert value == 123456789012345678901234567890 and isinstance(value, int)
