"""The read-ahead thread of the export pipeline: order, errors and early stops."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

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


def test_parquet_row_groups_are_cut_by_text_size_as_well_as_rows() -> None:
    # Long answers must not make a row group (held twice while Arrow copies it) hundreds of megabytes.
    import pyarrow.parquet as pq

    from app.exports.formats import ChunkSink, ParquetWriter, pair_layout

    for chat in (False, True):
        sink = ChunkSink()
        writer = ParquetWriter(
            sink,
            pair_layout("preference", chat=chat, scores=False, outcome=False, split=False),
            row_group=1000,
            row_group_bytes=250_000,
        )
        long_text = "x" * 50_000
        for n in range(20):
            text: Any = [{"role": "assistant", "content": long_text}] if chat else long_text
            prompt: Any = [{"role": "user", "content": f"prompt {n}"}] if chat else f"prompt {n}"
            writer.write(
                {
                    "prompt": prompt,
                    "chosen": text,
                    "rejected": text,
                    "margin": None,
                    "item_id": str(n),
                    "external_id": None,
                    "n_annotations": 1,
                    "agreement": 1.0,
                }
            )
        writer.close()
        parquet = pq.ParquetFile(io.BytesIO(sink.take()))
        # 100k characters a row: a group is cut every third row (300k >= 250k), 7 groups for 20 rows.
        assert parquet.metadata.num_rows == 20
        assert parquet.metadata.num_row_groups == 7, chat


def test_chunks_of_long_texts_end_early() -> None:
    from app.exports.pipeline import CHUNK_CHARS, CHUNK_ITEMS, chunked

    short = ["a" * 10] * (CHUNK_ITEMS + 1)
    assert [len(c) for c in chunked(iter(short), weigh=len)] == [CHUNK_ITEMS, 1]
    # Texts of a quarter of the budget: four to a chunk, whatever CHUNK_ITEMS allows.
    long = ["b" * (CHUNK_CHARS // 4)] * 10
    chunks = list(chunked(iter(long), weigh=len))
    assert [len(c) for c in chunks] == [4, 4, 2]
    assert [text for chunk in chunks for text in chunk] == long
