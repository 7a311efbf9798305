"""Pydantic shapes of the annotation API: what a rater receives and sends."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FLAGS = ("unsafe", "pii", "broken_prompt", "low_quality_prompt", "other")
SKIP_REASONS = ("cannot_judge", "needs_expertise", "broken", "offensive", "other")


class ResponseForRater(BaseModel):
    id: uuid.UUID
    text: str


class ItemForRater(BaseModel):
    """An item as a rater may see it: no model names, metadata, gold answers or other raters' answers."""

    id: uuid.UUID
    prompt: str | list[dict[str, str]]
    responses: list[ResponseForRater]


class AssignmentRead(BaseModel):
    assignment_id: uuid.UUID
    expires_at: datetime
    training: bool = False
    item: ItemForRater


class AnnotationSubmit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answers: dict[str, Any] = Field(max_length=20)
    rationale: str | None = Field(default=None, max_length=20_000)
    flags: list[Literal["unsafe", "pii", "broken_prompt", "low_quality_prompt", "other"]] = Field(
        default_factory=list, max_length=5
    )
    time_spent_ms: int | None = Field(default=None, ge=0, le=24 * 3600 * 1000)


class SkipRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Literal["cannot_judge", "needs_expertise", "broken", "offensive", "other"] = "other"
    note: str | None = Field(default=None, max_length=500)


class GoldFeedback(BaseModel):
    matched: bool | None
    n_matched: int
    n_graded: int
    details: list[dict[str, Any]]
    explanation: str | None = None
    qualification: dict[str, Any] | None = None


class SubmitResult(BaseModel):
    annotation_id: uuid.UUID
    assignment_id: uuid.UUID
    item_id: uuid.UUID
    revision: int
    created_at: datetime
    feedback: GoldFeedback | None = None


class AnnotationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    assignment_id: uuid.UUID
    item_id: uuid.UUID
    answers: dict[str, Any]
    rationale: str | None
    flags: list[str]
    time_spent_ms: int | None
    display_order: list[str]
    guidelines_version: int
    revision: int
    created_at: datetime
    updated_at: datetime | None


class AnnotationCorrection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answers: dict[str, Any] = Field(max_length=20)
    rationale: str | None = Field(default=None, max_length=20_000)
    flags: list[Literal["unsafe", "pii", "broken_prompt", "low_quality_prompt", "other"]] = Field(
        default_factory=list, max_length=5
    )


class SkipResult(BaseModel):
    assignment_id: uuid.UUID
    status: Literal["skipped"] = "skipped"
