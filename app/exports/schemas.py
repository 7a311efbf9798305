"""Pydantic shapes of the exports API: export options, snapshot records and the filter funnel."""

from __future__ import annotations

import math
import re
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Format = Literal["preference", "preference-implicit", "kto", "ratings", "raw"]
FileType = Literal["jsonl", "parquet", "csv"]
Aggregation = Literal["majority", "dawid-skene"]

SPLIT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_SPLITS = 5
# Fractions are typed by hand ("0.9"), so a little rounding slack is allowed in their sum.
SPLIT_SUM_TOLERANCE = 1e-6


def parse_margin_map(text: str) -> dict[int, float]:
    """ "1:0,2:1,3:2,4:3" → {1: 0.0, 2: 1.0, 3: 2.0, 4: 3.0}; raises ValueError with the faulty entry."""
    mapping: dict[int, float] = {}
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        strength, sep, margin = entry.partition(":")
        try:
            key, value = int(strength.strip()), float(margin.strip())
        except ValueError:
            key, value = 0, math.nan
        if not sep or not math.isfinite(value) or not 1 <= key <= 7:
            raise ValueError(
                f"margin_map entry {entry[:20]!r} is not STRENGTH:MARGIN with a strength from 1 to 7, "
                'e.g. "1:0,2:1,3:2,4:3"'
            )
        if key in mapping:
            raise ValueError(f"margin_map gives strength {key} twice")
        mapping[key] = value
    if not mapping:
        raise ValueError('margin_map is empty; write it like "1:0,2:1,3:2,4:3"')
    return mapping


def parse_split(text: str) -> list[tuple[str, float]]:
    """ "train=0.9,test=0.1" → [("train", 0.9), ("test", 0.1)]; the fractions must add up to 1."""
    parts: list[tuple[str, float]] = []
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        name, sep, fraction = entry.partition("=")
        name = name.strip()
        try:
            value = float(fraction)
        except ValueError:
            value = math.nan
        if not sep or not SPLIT_NAME.match(name) or not (math.isfinite(value) and 0 < value <= 1):
            raise ValueError(
                f"split entry {entry[:40]!r} is not NAME=FRACTION with a lowercase name and a fraction "
                'above 0 and at most 1, e.g. "train=0.9,test=0.1"'
            )
        if any(name == seen for seen, _ in parts):
            raise ValueError(f"split {name!r} is named twice")
        parts.append((name, value))
    if not parts:
        raise ValueError('split is empty; write it like "train=0.9,test=0.1"')
    if len(parts) > MAX_SPLITS:
        raise ValueError(f"at most {MAX_SPLITS} splits are allowed")
    total = sum(value for _, value in parts)
    if abs(total - 1.0) > SPLIT_SUM_TOLERANCE:
        raise ValueError(f"split fractions must add up to 1, got {total:g}")
    return parts


class ExportOptions(BaseModel):
    """What to export and how to clean it; the same options drive the stream, snapshots and the CLI."""

    model_config = ConfigDict(extra="forbid")

    format: Format = "preference"
    file: FileType = "jsonl"
    aggregation: Aggregation = "majority"
    question: str | None = Field(default=None, max_length=40)
    min_annotations: int = Field(default=1, ge=1, le=1000)
    min_agreement: float = Field(default=0.0, ge=0.0, le=1.0)
    include_ties: bool = False
    include_flagged: bool = False
    pairs: Literal["all", "best"] = "all"
    margin_map: str | None = Field(default=None, max_length=200)
    score_question: str | None = Field(default=None, max_length=40)
    split: str | None = Field(default=None, max_length=200)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)

    @field_validator("question", "score_question", "margin_map", "split", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        # HTML forms send empty fields as "", which means "not given".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("margin_map")
    @classmethod
    def _check_margin_map(cls, value: str | None) -> str | None:
        if value is not None:
            parse_margin_map(value)
        return value

    @field_validator("split")
    @classmethod
    def _check_split(cls, value: str | None) -> str | None:
        if value is not None:
            parse_split(value)
        return value

    @property
    def margins(self) -> dict[int, float] | None:
        return parse_margin_map(self.margin_map) if self.margin_map else None

    @property
    def splits(self) -> list[tuple[str, float]] | None:
        return parse_split(self.split) if self.split else None


class StreamOptions(ExportOptions):
    """The streamed download can pick one split instead of all rows with a split column."""

    split_name: str | None = Field(default=None, max_length=32)

    @model_validator(mode="after")
    def _split_name_is_a_split(self) -> StreamOptions:
        if self.split_name is not None:
            names = [name for name, _ in self.splits or []]
            if self.split_name not in names:
                known = ", ".join(names) if names else "none: give split first"
                raise ValueError(f"split_name {self.split_name!r} is not one of the splits ({known})")
        return self


class FunnelStep(BaseModel):
    """One step of the cleaning funnel: how many items or rows are left after it, and how many it took."""

    key: str
    count: int
    unit: Literal["items", "rows"]
    removed: int


class ExportPreview(BaseModel):
    """What an export with these options would keep, step by step, without writing anything."""

    items: int = Field(description="items with at least one counted annotation")
    annotations: int = Field(description="counted annotations: excluded raters, gold and training left out")
    raters: int
    steps: list[FunnelStep]
    dropped: dict[str, int] = Field(description="items (or rows, for duplicates) each filter removed")
    rows: dict[str, int] = Field(description="rows per split; 'all' when there is no split")
    rows_total: int


class ExportRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    project_id: uuid.UUID
    status: str
    progress: float
    params: dict[str, Any]
    counts: dict[str, Any]
    content_hash: str | None
    size_bytes: int | None
    file_name: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ExportList(BaseModel):
    items: list[ExportRead]
    total: int
