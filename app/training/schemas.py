"""Pydantic shapes of the training API: raters' quality figures, exclusions and qualification state."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SortKey = Literal[
    "rater",
    "state",
    "annotations",
    "gold",
    "agreement",
    "position",
    "ties",
    "both_bad",
    "time",
    "fast",
    "straight",
    "flag",
]


class ExclusionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=500)


class RaterState(BaseModel):
    user_id: uuid.UUID
    status: str
    qualified: bool
    excluded: bool


class GoldFigures(BaseModel):
    answered: int
    matched: int
    share: float | None


class AgreementFigures(BaseModel):
    """Leave-one-out: items with two or more other raters whose most common answer the rater matched."""

    n: int
    matched: int
    share: float | None


class PositionBiasFigures(BaseModel):
    """Share of side-choosing answers that picked the response shown first; p from a binomial test vs 0.5."""

    n: int
    first: int
    share: float | None
    p_value: float | None
    ci_low: float | None
    ci_high: float | None


class ChoiceFigures(BaseModel):
    n: int
    ties: int
    both_bad: int
    tie_rate: float | None
    both_bad_rate: float | None


class SpeedFigures(BaseModel):
    n: int
    median_seconds: float | None
    fast: int
    fast_share: float | None
    floor_seconds: float


class StraightLiningFigures(BaseModel):
    n: int
    flat: int
    share: float | None
    score_variance: float | None


class DayVolume(BaseModel):
    day: date
    count: int


class AttemptRead(BaseModel):
    attempt: int
    answered: int
    matched: int
    graded: int
    accuracy: float | None
    passed: bool | None
    started_at: datetime
    finished_at: datetime | None


class ReasonRead(BaseModel):
    code: str
    message: str


class RaterRead(BaseModel):
    user_id: uuid.UUID
    username: str
    status: str
    paused_reason: str | None
    excluded: bool
    excluded_at: datetime | None
    exclusion_reason: str | None
    qualified: bool
    qualified_at: datetime | None
    attempts: list[AttemptRead]
    annotations: int = Field(description="Live annotations (gold items not included).")
    gold_annotations: int
    gold: GoldFigures
    agreement: AgreementFigures
    position_bias: PositionBiasFigures
    choices: ChoiceFigures
    speed: SpeedFigures
    straight_lining: StraightLiningFigures
    volume: list[DayVolume]
    flagged: bool
    reasons: list[ReasonRead]


class RaterList(BaseModel):
    project_id: uuid.UUID
    reference_agreement: float | None = Field(
        description="The median rater's leave-one-out agreement, the yardstick of the agreement rule."
    )
    raters: list[RaterRead]
