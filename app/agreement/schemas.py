"""Pydantic shapes of the agreement API: per-question figures, rater pairs, weeks, bias and the leaderboard."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict


class _Read(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IntervalRead(_Read):
    """A point estimate and its percentile bootstrap interval; low/high are None when reason is set."""

    value: float | None
    low: float | None
    high: float | None
    level: float
    n_boot: int
    n_undefined: int
    reason: str | None


class StatisticRead(_Read):
    value: float | None
    reason: str | None
    n_units: int


class CountRead(_Read):
    value: str
    label: str
    count: int
    share: float


class PreferenceAgreementRead(_Read):
    """Agreement on the chosen response id, counting tie answers as labels (with_ties) and without them."""

    with_ties: StatisticRead
    without_ties: StatisticRead
    alpha_with_ties: StatisticRead
    alpha_without_ties: StatisticRead
    n_answers: int
    n_tie_answers: int


class OptionAgreementRead(_Read):
    option: str
    alpha: float | None
    percent_agreement: float | None
    n_units: int
    reasons: dict[str, str]


class QuestionAgreementRead(_Read):
    """One question's figures; any None figure has its reason under the same key in `reasons`
    (alpha levels as "krippendorff_alpha.LEVEL")."""

    name: str
    title: str
    kind: str
    skipped: bool
    n_units: int
    n_annotations: int
    n_raters: int
    percent_agreement: float | None
    krippendorff_alpha: dict[str, float | None]
    primary_level: str | None
    fleiss_kappa: float | None
    ci: dict[str, IntervalRead]
    reasons: dict[str, str]
    distribution: list[CountRead]
    strength_distribution: list[CountRead] | None = None
    preference: PreferenceAgreementRead | None = None
    per_option: list[OptionAgreementRead] | None = None
    kendall_w: float | None = None
    mean_kendall_tau_b: float | None = None


class RaterPairRead(_Read):
    rater_a: str
    rater_b: str
    n_shared: int
    kappa: float | None
    percent_agreement: float
    reason: str | None


class WeekAgreementRead(_Read):
    question: str
    week: str
    week_start: str
    level: str
    alpha: float | None
    percent_agreement: float | None
    n_units: int
    reasons: dict[str, str]


class PositionBiasRead(_Read):
    rater: str
    n: int
    first_shown: int
    share_first: float
    p_value: float


class AgreementRead(_Read):
    project_id: uuid.UUID
    n_annotations: int
    n_items: int
    n_raters: int
    n_excluded_raters: int
    n_boot: int
    seed: int
    confidence_level: float
    questions: list[QuestionAgreementRead]
    raters: list[str]
    rater_pairs_question: str | None
    rater_pairs: list[RaterPairRead]
    by_week: list[WeekAgreementRead]
    position_bias_question: str | None
    position_bias: list[PositionBiasRead]
    reasons: dict[str, str]


class ModelScoreRead(_Read):
    model: str
    score: float
    lower: float | None
    upper: float | None
    rank: int
    wins: int
    ties: int
    losses: int
    battles: int


class LeaderboardRead(_Read):
    question: str | None
    models: list[ModelScoreRead]
    n_battles: int
    n_items: int
    n_items_ignored: int
    n_annotations_ignored: int
    n_boot: int
    seed: int
    level: float
    converged: bool | None
    reason: str | None
