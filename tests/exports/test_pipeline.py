"""The read-ahead thread of the export pipeline: order, errors and early stops."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.exports.pipeline import read_ahead


def test_values_arrive_in_order() -> None:
    assert list(read_ahead(iter(range(100)), 2)) == list(range(100))


def test_an_error_in_the_source_reaches_the_consumer() -> None:
    def source() -> Iterator[int]:
        yield 1
        raise ValueError("broken stream")

    values = read_ahead(source(), 2)
    assert next(values) == 1
    with pytest.raises(ValueError, match="broken stream"):
        next(values)


def test_a_consumer_that_stops_early_ends_the_thread_and_closes_the_source() -> None:
    closed = []

    def source() -> Iterator[int]:
        try:
            yield from range(1000)
        finally:
            closed.append(True)

    values = read_ahead(source(), 2)
    assert next(values) == 0
    values.close()  # type: ignore[attr-defined]
    assert closed == [True]
