"""Pydantic shapes of the projects API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.projects.questions import Question, QuestionSchema

Status = Literal["draft", "active", "paused", "archived"]
SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,78}[a-z0-9]$|^[a-z0-9]$"


class _ProjectSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str | None = Field(default=None, max_length=10_000)
    guidelines: str | None = Field(default=None, max_length=200_000)
    annotations_per_item: int | None = Field(default=None, ge=1, le=50)
    status: Status | None = None
    lease_minutes: int | None = Field(default=None, ge=1, le=24 * 60)
    require_qualification: bool | None = None
    qualification_threshold: float | None = Field(default=None, ge=0, le=1)
    qualification_cooldown_minutes: int | None = Field(default=None, ge=0, le=60 * 24 * 30)
    gold_rate: float | None = Field(default=None, ge=0, le=0.5)
    gold_min_answers: int | None = Field(default=None, ge=1, le=1000)
    gold_pause_threshold: float | None = Field(default=None, ge=0, le=1)
    min_seconds_per_item: float | None = Field(default=None, ge=0, le=3600)


class ProjectCreate(_ProjectSettings):
    name: str = Field(min_length=1, max_length=200)
    slug: str | None = Field(default=None, pattern=SLUG_PATTERN)
    questions: list[Question] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _unique_question_names(self) -> ProjectCreate:
        QuestionSchema(self.questions)
        return self


class ProjectUpdate(_ProjectSettings):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    questions: list[Question] | None = Field(default=None, min_length=1, max_length=20)

    @model_validator(mode="after")
    def _unique_question_names(self) -> ProjectUpdate:
        if self.questions is not None:
            QuestionSchema(self.questions)
        return self


class ProjectRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    name: str
    slug: str
    description: str
    guidelines: str
    guidelines_version: int
    questions: list[dict[str, Any]]
    annotations_per_item: int
    status: str
    lease_minutes: int
    require_qualification: bool
    qualification_threshold: float
    qualification_cooldown_minutes: int
    gold_rate: float
    gold_min_answers: int
    gold_pause_threshold: float
    min_seconds_per_item: float
    created_at: datetime


class ProjectList(BaseModel):
    items: list[ProjectRead]
    total: int


class MemberAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str | None = Field(default=None, max_length=64)
    user_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _one_of(self) -> MemberAdd:
        if (self.username is None) == (self.user_id is None):
            raise ValueError("give exactly one of username or user_id")
        return self


class MemberRead(BaseModel):
    user_id: uuid.UUID
    username: str
    role: str
    status: str
    qualified_at: datetime | None
    excluded: bool
    joined_at: datetime


class DayJudgments(BaseModel):
    day: date
    judgments: int


class ProjectProgress(BaseModel):
    """Live items only: gold checks and training items are not part of the work to finish."""

    items_total: int
    items_complete: int
    items_in_progress: int
    items_left: int
    percent_complete: float
    annotations: int
    annotations_per_item: int
    judgments_left: int = Field(
        description="judgments the live items still need to reach annotations_per_item"
    )
    judgments_per_day: list[DayJudgments] = Field(
        description="the last 30 UTC days, oldest first, today last"
    )
    pace_per_day: float = Field(description="mean judgments per day over the last 7 days")
    days_left: int | None = Field(description="days to finish at that pace; null when nothing moved")
