"""Pydantic shapes of the items API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class LineErrorRead(BaseModel):
    line: int
    error: str


class ImportReport(BaseModel):
    created: int
    duplicates: int
    errors: list[LineErrorRead]
    errors_total: int = 0
    dry_run: bool = False


class ResponseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    position: int
    source_position: int
    text: str
    model: str | None
    metadata: dict[str, Any] = Field(validation_alias="meta")


class ItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    external_id: str | None
    prompt: str | list[dict[str, str]]
    purpose: str
    metadata: dict[str, Any] = Field(validation_alias="meta")
    gold: dict[str, Any] | None
    source_group: str | None
    annotation_count: int
    is_complete: bool
    created_at: datetime
    responses: list[ResponseRead] = []


class ItemList(BaseModel):
    items: list[ItemRead]
    total: int
    limit: int
    offset: int


class GoldUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answers: dict[str, Any] = Field(max_length=20)
    explanation: str | None = Field(default=None, max_length=20_000)
    purpose: str | None = Field(default=None, pattern="^(gold|training)$")
