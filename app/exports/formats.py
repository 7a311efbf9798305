"""Dataset row layouts (TRL preference, implicit, KTO, ratings, raw) and the JSONL, Parquet and CSV writers."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

FILE_SUFFIX = {"jsonl": ".jsonl", "parquet": ".parquet", "csv": ".csv"}
MEDIA_TYPE = {"jsonl": "application/x-ndjson", "parquet": "application/vnd.apache.parquet", "csv": "text/csv"}
# Rows per Parquet row group: a few megabytes of text each, so memory stays flat while writing.
PARQUET_ROW_GROUP = 2_000
# A row group is also cut when its text reaches this size: answers of 30k characters made a 2,000-row group
# hundreds of megabytes, held twice while Arrow copies it (a 472 MiB peak, 173 MiB with this cut).
PARQUET_ROW_GROUP_BYTES = 8 * 2**20

MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: pa.DataType
    # JSON text in Parquet and CSV: values whose shape differs from row to row (answers, display order).
    as_json: bool = False


@dataclass(frozen=True, slots=True)
class Layout:
    columns: tuple[Column, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, pa.string() if c.as_json else c.type) for c in self.columns])


def _text_or_chat(chat: bool) -> pa.DataType:
    return MESSAGES if chat else pa.string()


def pair_layout(kind: str, *, chat: bool, scores: bool, outcome: bool, split: bool) -> Layout:
    """Columns of the preference, preference-implicit and kto formats."""
    text = _text_or_chat(chat)
    columns: list[Column] = []
    if kind == "kto":
        columns += [Column("prompt", text), Column("completion", text), Column("label", pa.bool_())]
    else:
        if kind == "preference":
            columns.append(Column("prompt", text))
        columns += [Column("chosen", text), Column("rejected", text), Column("margin", pa.float64())]
        if scores:
            columns += [Column("score_chosen", pa.float64()), Column("score_rejected", pa.float64())]
    if outcome:
        columns.append(Column("outcome", pa.string()))
    columns += _item_columns(split)
    return Layout(tuple(columns))


def _item_columns(split: bool) -> list[Column]:
    columns = [
        Column("item_id", pa.string()),
        Column("external_id", pa.string()),
        Column("n_annotations", pa.int64()),
        Column("agreement", pa.float64()),
    ]
    return columns + ([Column("split", pa.string())] if split else [])


def ratings_layout(criteria: Sequence[str], *, chat: bool, split: bool) -> Layout:
    columns = [
        Column("item_id", pa.string()),
        Column("external_id", pa.string()),
        Column("response_id", pa.string()),
        Column("model", pa.string()),
        Column("prompt", _text_or_chat(chat)),
        Column("response", pa.string()),
    ]
    for name in criteria:
        columns += [
            Column(f"{name}_mean", pa.float64()),
            Column(f"{name}_std", pa.float64()),
            Column(f"{name}_count", pa.int64()),
        ]
    columns.append(Column("n_annotations", pa.int64()))
    return Layout(tuple(columns + ([Column("split", pa.string())] if split else [])))


def raw_layout(*, split: bool) -> Layout:
    columns = [
        Column("item_id", pa.string()),
        Column("external_id", pa.string()),
        Column("annotation_id", pa.string()),
        Column("rater", pa.string()),
        Column("shown", pa.string(), as_json=True),
        Column("answers", pa.string(), as_json=True),
        Column("flags", pa.list_(pa.string())),
        Column("rationale", pa.string()),
        Column("time_spent_ms", pa.int64()),
        Column("guidelines_version", pa.int64()),
        Column("created_at", pa.string()),
    ]
    return Layout(tuple(columns + ([Column("split", pa.string())] if split else [])))


# ------------------------------------------------------------------------------------------ row values


def chat_prompt(prompt: Any) -> list[dict[str, str]]:
    """A text prompt becomes one user turn, so a file mixing both kinds keeps one column type."""
    if isinstance(prompt, list):
        return [{"role": str(m["role"]), "content": str(m["content"])} for m in prompt]
    return [{"role": "user", "content": str(prompt)}]


def prompt_value(prompt: Any, chat: bool) -> Any:
    return chat_prompt(prompt) if chat else str(prompt)


def reply_value(text: str, chat: bool) -> Any:
    return [{"role": "assistant", "content": text}] if chat else text


def with_prompt(prompt: Any, text: str, chat: bool) -> Any:
    """The implicit-prompt form: the conversation including the reply, or the prompt text followed by it."""
    if chat:
        return [*chat_prompt(prompt), {"role": "assistant", "content": text}]
    prompt_text = str(prompt)
    separator = "" if not prompt_text or prompt_text[-1].isspace() else "\n\n"
    return prompt_text + separator + text


# -------------------------------------------------------------------------------------------- writers


class ByteSink(Protocol):
    def write(self, data: bytes, /) -> Any: ...

    def flush(self) -> None: ...


class RowWriter(Protocol):
    def write(self, row: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class JsonlWriter:
    """Compact UTF-8 JSON lines; orjson escapes long texts many times faster than the standard library."""

    def __init__(self, sink: ByteSink, layout: Layout) -> None:
        self.sink = sink

    def write(self, row: dict[str, Any]) -> None:
        try:
            line = orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)
        except orjson.JSONEncodeError:
            # Values orjson refuses, such as integers wider than 64 bits inside free-form answers.
            line = (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        self.sink.write(line)

    def close(self) -> None:
        self.sink.flush()


class CsvWriter:
    def __init__(self, sink: ByteSink, layout: Layout) -> None:
        self.sink = sink
        self.names = layout.names
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\n")
        self._emit(self.names)

    def _emit(self, values: list[Any]) -> None:
        self._csv.writerow(values)
        self.sink.write(self._buffer.getvalue().encode())
        self._buffer.seek(0)
        self._buffer.truncate()

    def write(self, row: dict[str, Any]) -> None:
        self._emit([_csv_cell(row[name]) for name in self.names])

    def close(self) -> None:
        self.sink.flush()


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return value


def _text_size(value: Any) -> int:
    """Characters of a text, or of a chat's messages."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(len(str(m.get("content", ""))) for m in value if isinstance(m, dict))
    return 0


class ParquetWriter:
    """Rows are buffered column by column into row groups, so memory holds one group at a time."""

    def __init__(
        self,
        sink: ByteSink,
        layout: Layout,
        row_group: int = PARQUET_ROW_GROUP,
        row_group_bytes: int = PARQUET_ROW_GROUP_BYTES,
    ) -> None:
        self.schema = layout.schema()
        self.names = layout.names
        self.json_columns = {c.name for c in layout.columns if c.as_json}
        self.row_group = row_group
        self.row_group_bytes = row_group_bytes
        self.columns: list[list[Any]] = [[] for _ in self.names]
        self.buffered = 0
        self.buffered_chars = 0
        self._writer = pq.ParquetWriter(pa.PythonFile(sink, mode="w"), self.schema, compression="zstd")

    def write(self, row: dict[str, Any]) -> None:
        for name, column in zip(self.names, self.columns, strict=True):
            value = row[name]
            if name in self.json_columns:
                value = json.dumps(value, ensure_ascii=False)
            self.buffered_chars += _text_size(value)
            column.append(value)
        self.buffered += 1
        # Characters stand in for bytes: counting UTF-8 bytes would encode every text once more.
        if self.buffered >= self.row_group or self.buffered_chars >= self.row_group_bytes:
            self.flush()

    def flush(self) -> None:
        if self.buffered:
            arrays = [
                pa.array(column, type=field.type)
                for column, field in zip(self.columns, self.schema, strict=True)
            ]
            self._writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))
            self.columns = [[] for _ in self.names]
            self.buffered = self.buffered_chars = 0

    def close(self) -> None:
        self.flush()
        self._writer.close()


def open_writer(file_type: str, sink: ByteSink, layout: Layout) -> RowWriter:
    if file_type == "parquet":
        return ParquetWriter(sink, layout)
    if file_type == "csv":
        return CsvWriter(sink, layout)
    return JsonlWriter(sink, layout)


class ChunkSink(io.RawIOBase):
    """A write-only file whose bytes are taken out in chunks, to stream a file while it is written."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._size = 0
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._size += len(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    @property
    def pending(self) -> int:
        return self._size

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts, self._size = [], 0
        return data
