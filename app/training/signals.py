"""Quality signals of raters computed from plain answer records, and the rules that flag low quality."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from app.projects.questions import (
    BOTH_BAD,
    TIE,
    LabelQuestion,
    PreferenceQuestion,
    Question,
    RatingQuestion,
)

VOLUME_DAYS = 14


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class AnswerRecord:
    """One non-training annotation reduced to what the signals need; `vote` is what agreement compares."""

    rater: Hashable
    item: Hashable
    created_at: datetime
    choice: str | None = None
    first_shown: str | None = None
    vote: Hashable | None = None
    ratings: tuple[tuple[float, ...], ...] = ()
    time_ms: int | None = None
    gold_result: Mapping[str, Any] | None = None
    is_gold: bool = False


def primary_question(questions: Sequence[Question]) -> Question | None:
    """The question agreement is measured on: the first preference question, else the first label one."""
    for kind in (PreferenceQuestion, LabelQuestion):
        for question in questions:
            if isinstance(question, kind):
                return question
    return None


def answer_record(
    questions: Sequence[Question],
    *,
    rater: Hashable,
    item: Hashable,
    created_at: datetime,
    answers: Mapping[str, Any],
    display_order: Sequence[str],
    time_ms: int | None = None,
    gold_result: Mapping[str, Any] | None = None,
    is_gold: bool = False,
) -> AnswerRecord:
    primary = primary_question(questions)
    choice = vote = None
    if isinstance(primary, PreferenceQuestion):
        value = answers.get(primary.name)
        choice = value.get("choice") if isinstance(value, Mapping) else None
        vote = choice
    elif isinstance(primary, LabelQuestion):
        label = answers.get(primary.name)
        vote = label if isinstance(label, str) else None
    ratings = []
    for question in questions:
        value = answers.get(question.name)
        if isinstance(question, RatingQuestion) and isinstance(value, Mapping):
            scores = [v for v in value.values() if isinstance(v, int | float) and not isinstance(v, bool)]
            ratings.append(tuple(float(v) for v in scores))
    return AnswerRecord(
        rater=rater,
        item=item,
        created_at=created_at,
        choice=choice,
        first_shown=str(display_order[0]) if display_order else None,
        vote=vote,
        ratings=tuple(ratings),
        time_ms=time_ms,
        gold_result=gold_result,
        is_gold=is_gold,
    )


# ---------------------------------------------------------------------------------------------------
# Single signals


@dataclass(frozen=True)
class GoldAccuracy:
    answered: int = 0
    matched: int = 0

    @property
    def share(self) -> float | None:
        return _share(self.matched, self.answered)


def gold_accuracy(results: Iterable[Mapping[str, Any] | None]) -> GoldAccuracy:
    """An answer counts when the gold graded at least one question, and matches when it matched all of them."""
    answered = matched = 0
    for result in results:
        if result and result.get("graded"):
            answered += 1
            matched += int(result.get("matched") == result["graded"])
    return GoldAccuracy(answered, matched)


@dataclass(frozen=True)
class PositionBias:
    """How often the response shown first was chosen, among answers that chose a response."""

    n: int = 0
    first: int = 0
    p_value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None

    @property
    def share(self) -> float | None:
        return _share(self.first, self.n)


def position_bias(pairs: Iterable[tuple[str | None, str | None]]) -> PositionBias:
    """(choice, first shown response id) pairs; ties, both-bad and missing orders say nothing about sides."""
    n = first = 0
    for choice, shown_first in pairs:
        if choice is None or choice in (TIE, BOTH_BAD) or shown_first is None:
            continue
        n += 1
        first += int(str(choice) == str(shown_first))
    if n == 0:
        return PositionBias()
    # Screen sides are drawn at random per assignment, so an unbiased rater picks the first one half the time.
    # (scipy.stats costs tens of MiB in every process; imported where first used.)
    from scipy.stats import binomtest

    test = binomtest(first, n, 0.5)
    interval = test.proportion_ci(confidence_level=0.95)
    return PositionBias(n, first, float(test.pvalue), float(interval.low), float(interval.high))


@dataclass(frozen=True)
class ChoiceRates:
    n: int = 0
    ties: int = 0
    both_bad: int = 0

    @property
    def tie_rate(self) -> float | None:
        return _share(self.ties, self.n)

    @property
    def both_bad_rate(self) -> float | None:
        return _share(self.both_bad, self.n)


def choice_rates(choices: Iterable[str | None]) -> ChoiceRates:
    picked = [c for c in choices if c is not None]
    return ChoiceRates(len(picked), sum(c == TIE for c in picked), sum(c == BOTH_BAD for c in picked))


@dataclass(frozen=True)
class Agreement:
    """Items where the rater's answer was compared with the most common answer of the other raters."""

    n: int = 0
    matched: int = 0

    @property
    def share(self) -> float | None:
        return _share(self.matched, self.n)


def leave_one_out_agreement(
    votes: Iterable[tuple[Hashable, Hashable, Hashable]],
    *,
    reference_raters: Iterable[Hashable] | None = None,
    min_others: int = 2,
) -> dict[Hashable, Agreement]:
    """(item, rater, vote) triples to each rater's agreement with the majority of the rest.

    An item counts for a rater when at least `min_others` other raters answered it and their most common
    answer is unique: a split among the others names no majority to agree with. Only raters in
    `reference_raters` (when given) make up "the rest", so excluded raters do not set the standard.
    """
    allowed = None if reference_raters is None else set(reference_raters)
    by_item: dict[Hashable, dict[Hashable, Hashable]] = defaultdict(dict)
    for item, rater, vote in votes:
        if vote is not None:
            by_item[item][rater] = vote
    counts: dict[Hashable, list[int]] = defaultdict(lambda: [0, 0])
    for item_votes in by_item.values():
        voters = {r: v for r, v in item_votes.items() if allowed is None or r in allowed}
        tally = Counter(voters.values())
        for rater, vote in item_votes.items():
            rest = tally.copy()
            if rater in voters:
                rest[vote] -= 1
            if rest.total() < min_others:
                continue
            ranked = rest.most_common(2)
            if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
                continue
            counts[rater][0] += 1
            counts[rater][1] += int(ranked[0][0] == vote)
    return {rater: Agreement(n, matched) for rater, (n, matched) in counts.items()}


def reference_agreement(agreements: Iterable[Agreement], min_n: int, min_raters: int = 3) -> float | None:
    """The project's typical agreement: the median over raters with enough items, if there are enough raters.

    A median is what a few bad raters cannot drag down; below `min_raters` it would mostly describe the rater
    being judged, so there is no reference then.
    """
    shares = [a.share for a in agreements if a.n >= min_n and a.share is not None]
    return float(np.median(shares)) if len(shares) >= min_raters else None


@dataclass(frozen=True)
class Speed:
    n: int = 0
    median_ms: float | None = None
    fast: int = 0

    @property
    def fast_share(self) -> float | None:
        return _share(self.fast, self.n)


def speed(times_ms: Iterable[int | None], floor_ms: float) -> Speed:
    timed = np.array([t for t in times_ms if t is not None], dtype=float)
    if timed.size == 0:
        return Speed()
    return Speed(int(timed.size), float(np.median(timed)), int(np.count_nonzero(timed < floor_ms)))


@dataclass(frozen=True)
class StraightLining:
    """Rating answers that gave every response the same score; only answers scoring two or more count."""

    n: int = 0
    flat: int = 0
    score_variance: float | None = None

    @property
    def share(self) -> float | None:
        return _share(self.flat, self.n)


def straight_lining(rating_answers: Iterable[Sequence[float]]) -> StraightLining:
    answers = [tuple(a) for a in rating_answers]
    multi = [a for a in answers if len(a) >= 2]
    scores = np.array([s for a in answers for s in a], dtype=float)
    variance = float(np.var(scores)) if scores.size >= 2 else None
    return StraightLining(len(multi), sum(len(set(a)) == 1 for a in multi), variance)


@dataclass(frozen=True)
class DayCount:
    day: date
    count: int


def daily_volume(timestamps: Iterable[datetime], today: date, days: int = VOLUME_DAYS) -> list[DayCount]:
    """Answers per calendar day (UTC), oldest first, ending today; days without answers count zero."""
    start = today - timedelta(days=days - 1)
    counts = Counter(t.date() for t in timestamps if start <= t.date() <= today)
    return [
        DayCount(start + timedelta(days=i), counts.get(start + timedelta(days=i), 0)) for i in range(days)
    ]


# ---------------------------------------------------------------------------------------------------
# All signals of a project's raters, and the low-quality flag


@dataclass(frozen=True)
class QualityRules:
    """Thresholds of the low-quality flag; the project's own settings come first, the rest are defaults."""

    gold_min_answers: int
    gold_threshold: float
    min_seconds_per_item: float
    min_n: int = 20
    alpha: float = 0.01
    position_low: float = 0.25
    position_high: float = 0.75
    agreement_margin: float = 0.10
    fast_share: float = 0.30
    min_timed: int = 10
    straight_share: float = 0.80
    min_rating_answers: int = 10


@dataclass(frozen=True)
class Reason:
    """Why a rater is flagged; `template` is an English sentence with %(name)s fields, translatable as is."""

    code: str
    template: str
    params: dict[str, str]

    @property
    def message(self) -> str:
        return self.template % self.params


@dataclass(frozen=True)
class RaterSignals:
    n_live: int = 0
    n_gold: int = 0
    gold: GoldAccuracy = GoldAccuracy()
    agreement: Agreement = Agreement()
    position: PositionBias = PositionBias()
    choices: ChoiceRates = ChoiceRates()
    speed: Speed = Speed()
    straight: StraightLining = StraightLining()
    volume: list[DayCount] = field(default_factory=list)
    reasons: list[Reason] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return bool(self.reasons)


def _pct(value: float) -> str:
    return f"{value:.0%}"


def p_text(p_value: float) -> str:
    """A p-value as people read it; a tiny one is only ever 'below 0.001', never a misleading 0."""
    return "< 0.001" if p_value < 0.001 else f"= {p_value:.2g}"


def _gold_reason(gold: GoldAccuracy, rules: QualityRules) -> Reason | None:
    if gold.answered < rules.gold_min_answers or gold.share is None or gold.share >= rules.gold_threshold:
        return None
    return Reason(
        "gold_accuracy",
        "gold accuracy %(share)s (%(matched)s of %(answered)s) is below %(threshold)s",
        {
            "share": _pct(gold.share),
            "matched": str(gold.matched),
            "answered": str(gold.answered),
            "threshold": _pct(rules.gold_threshold),
        },
    )


def _position_reason(bias: PositionBias, rules: QualityRules) -> Reason | None:
    # Significance alone flags tiny leanings once n is large, a lopsided share alone flags small samples
    # by chance: both must hold.
    share = bias.share
    if bias.n < rules.min_n or share is None or bias.p_value is None or bias.p_value >= rules.alpha:
        return None
    if rules.position_low <= share <= rules.position_high:
        return None
    return Reason(
        "position_bias",
        "chose the response shown first in %(share)s of %(n)s answers (p %(p)s)",
        {"share": _pct(share), "n": str(bias.n), "p": p_text(bias.p_value)},
    )


def _agreement_reason(agreement: Agreement, reference: float | None, rules: QualityRules) -> Reason | None:
    # Chance agreement depends on the task (about 0.5 for a clean binary choice, less with ties allowed), so
    # the yardstick is the project's own median rater rather than a fixed number. The one-sided binomial
    # test keeps small samples from being flagged by bad luck; the margin keeps a rater who is only a little
    # below the median from being flagged once thousands of items make any difference significant.
    share = agreement.share
    if reference is None or agreement.n < rules.min_n or share is None:
        return None
    if share > reference - rules.agreement_margin:
        return None
    from scipy.stats import binomtest

    p_value = float(binomtest(agreement.matched, agreement.n, reference, alternative="less").pvalue)
    if p_value >= rules.alpha:
        return None
    return Reason(
        "low_agreement",
        "agrees with the other raters on %(share)s of %(n)s items; the project's median rater agrees on %(reference)s (p %(p)s)",
        {"share": _pct(share), "n": str(agreement.n), "reference": _pct(reference), "p": p_text(p_value)},
    )


def _speed_reason(pace: Speed, rules: QualityRules) -> Reason | None:
    share = pace.fast_share
    if pace.n < rules.min_timed or share is None or share <= rules.fast_share:
        return None
    return Reason(
        "too_fast",
        "%(share)s of %(n)s answers took less than %(floor)s seconds",
        {"share": _pct(share), "n": str(pace.n), "floor": f"{rules.min_seconds_per_item:g}"},
    )


def _straight_reason(straight: StraightLining, rules: QualityRules) -> Reason | None:
    share = straight.share
    if straight.n < rules.min_rating_answers or share is None or share <= rules.straight_share:
        return None
    return Reason(
        "straight_lining",
        "gave every response the same score in %(share)s of %(n)s ratings",
        {"share": _pct(share), "n": str(straight.n)},
    )


def quality_reasons(signals: RaterSignals, rules: QualityRules, reference: float | None) -> list[Reason]:
    """The reasons to suspect a rater of low quality; the rater is flagged when there is at least one.

    - gold accuracy below the project's pause threshold once the rater answered at least gold_min_answers
      live gold items;
    - position bias: at least min_n answers that chose a side, a two-sided binomial test against 0.5 with
      p < alpha, and a share of first-shown choices above position_high or below position_low;
    - agreement: at least min_n items with two or more other raters, a share at least agreement_margin below
      the project's median rater (`reference`) and a one-sided binomial test against that median with
      p < alpha (no rule when there are fewer than three raters with min_n items to take a median of);
    - speed: more than fast_share of at least min_timed timed answers below min_seconds_per_item;
    - straight-lining: more than straight_share of at least min_rating_answers rating answers that gave
      every response the same score.
    """
    checks = (
        _gold_reason(signals.gold, rules),
        _position_reason(signals.position, rules),
        _agreement_reason(signals.agreement, reference, rules),
        _speed_reason(signals.speed, rules),
        _straight_reason(signals.straight, rules),
    )
    return [reason for reason in checks if reason is not None]


@dataclass(frozen=True)
class ProjectSignals:
    raters: dict[Hashable, RaterSignals]
    reference_agreement: float | None


def project_signals(
    records: Iterable[AnswerRecord],
    rules: QualityRules,
    *,
    today: date,
    raters: Iterable[Hashable] = (),
    reference_raters: Iterable[Hashable] | None = None,
    gold_since: Mapping[Hashable, datetime | None] | None = None,
) -> ProjectSignals:
    """Every rater's signals and flag; `raters` adds members who have not answered anything yet.

    Gold accuracy counts a rater's gold answers from `gold_since[rater]` on, when given: the same window
    the pause rule uses, so a rater who re-qualified starts with a clean slate.
    """
    by_rater: dict[Hashable, list[AnswerRecord]] = defaultdict(list)
    for record in records:
        by_rater[record.rater].append(record)
    for rater in raters:
        by_rater.setdefault(rater, [])
    everyone = [r for rows in by_rater.values() for r in rows]
    agreements = leave_one_out_agreement(
        ((r.item, r.rater, r.vote) for r in everyone), reference_raters=reference_raters
    )
    allowed = None if reference_raters is None else set(reference_raters)
    reference = reference_agreement(
        (a for rater, a in agreements.items() if allowed is None or rater in allowed), rules.min_n
    )
    result: dict[Hashable, RaterSignals] = {}
    for rater, rows in by_rater.items():
        since = (gold_since or {}).get(rater)
        signals = _rater_signals(rows, agreements.get(rater, Agreement()), rules, today, since)
        result[rater] = replace(signals, reasons=quality_reasons(signals, rules, reference))
    return ProjectSignals(result, reference)


def _rater_signals(
    rows: Sequence[AnswerRecord],
    agreement: Agreement,
    rules: QualityRules,
    today: date,
    gold_since: datetime | None,
) -> RaterSignals:
    gold_rows = [r for r in rows if r.is_gold and (gold_since is None or r.created_at >= gold_since)]
    return RaterSignals(
        n_live=sum(not r.is_gold for r in rows),
        n_gold=sum(r.is_gold for r in rows),
        gold=gold_accuracy(r.gold_result for r in gold_rows),
        agreement=agreement,
        position=position_bias((r.choice, r.first_shown) for r in rows),
        choices=choice_rates(r.choice for r in rows),
        speed=speed((r.time_ms for r in rows), rules.min_seconds_per_item * 1000),
        straight=straight_lining(scores for r in rows for scores in r.ratings),
        volume=daily_volume((r.created_at for r in rows), today),
    )
