"""Agreement figures of one question from its collected answers: numbers or None with a reason, never NaN."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

import numpy as np

from app.agreement import rankings
from app.agreement.collect import (
    BOTH_BAD_CODE,
    TIE_CODE,
    Coder,
    Collector,
    FloatArray,
    IntArray,
    PreferenceCollector,
    RankingCollector,
)
from app.agreement.stats import (
    AlphaStatistic,
    ConfidenceInterval,
    Level,
    PercentAgreementStatistic,
    Ratings,
    Statistic,
    bootstrap_ci,
    fleiss_kappa,
    krippendorff_alpha,
    pairwise_cohen_kappa,
    percent_agreement,
    preference_agreement,
)
from app.projects.questions import (
    BOTH_BAD,
    TIE,
    LabelQuestion,
    MultiLabelQuestion,
    PreferenceQuestion,
    Question,
    RankingQuestion,
    RatingQuestion,
    TextQuestion,
)

NO_ANSWERS = "no counted answers yet: only live answers of raters who are not excluded count"
TEXT_SKIPPED = "free text is not graded for agreement"
NO_INTERVALS = "no intervals were drawn (n_boot is 0)"
RATIO_NEEDS_POSITIVE = "the scale has negative points, where ratios have no meaning"
NOT_FOR_RANKING = "rankings are compared with Kendall's W and tau-b instead"
FLEISS_NOMINAL_ONLY = "Fleiss' kappa is reported for single-choice questions"
CONFIDENCE = 0.95
LEVELS_ALL: tuple[Level, ...] = ("nominal", "ordinal", "interval", "ratio")
NOMINAL: tuple[Level, ...] = ("nominal",)


def _interval(ci: ConfidenceInterval | None, point: Statistic, n_boot: int) -> dict[str, Any]:
    if ci is None:
        return {
            "value": point.value,
            "low": None,
            "high": None,
            "level": CONFIDENCE,
            "n_boot": n_boot,
            "n_undefined": 0,
            "reason": point.reason or NO_INTERVALS,
        }
    return ci.to_dict()


def _ci(statistic: Any, ratings: Ratings, point: Statistic, n_boot: int, seed: int) -> dict[str, Any]:
    if n_boot < 1 or point.value is None:
        return _interval(None, point, n_boot)
    return _interval(
        bootstrap_ci(statistic, ratings, n_boot=n_boot, seed=seed, level=CONFIDENCE), point, n_boot
    )


def _pairable(ratings: Ratings) -> Ratings:
    """Only the units with two or more ratings, renumbered; built directly, since a subset of valid
    ratings needs no second check."""
    pairable = ratings.per_unit >= 2
    if pairable.all():
        return ratings
    keep = pairable[ratings.unit]
    renumber = np.cumsum(pairable) - 1
    kept = np.flatnonzero(pairable)
    return Ratings(
        renumber[ratings.unit[keep]].astype(np.int64),
        ratings.rater[keep],
        ratings.value[keep],
        int(kept.size),
        ratings.n_raters,
        ratings.unit_ids[kept],
        ratings.rater_ids,
    )


def _blank(question: Question, reason: str, levels: Iterable[Level] = ()) -> dict[str, Any]:
    """A question's figures with every number None for the same reason."""
    alpha: dict[str, float | None] = dict.fromkeys(levels)
    reasons = {"percent_agreement": reason, "fleiss_kappa": reason}
    reasons.update({f"krippendorff_alpha.{level}": reason for level in alpha})
    extra: dict[str, Any] = {}
    if isinstance(question, RankingQuestion):
        extra = {"kendall_w": None, "mean_kendall_tau_b": None}
        reasons.update(dict.fromkeys(extra, reason))
    return {
        **extra,
        "name": question.name,
        "title": question.title,
        "kind": question.kind,
        "n_units": 0,
        "n_annotations": 0,
        "n_raters": 0,
        "percent_agreement": None,
        "krippendorff_alpha": alpha,
        "primary_level": None,
        "fleiss_kappa": None,
        "ci": {},
        "reasons": reasons,
        "distribution": [],
    }


def _agreement(
    question: Question,
    ratings: Ratings,
    levels: tuple[Level, ...],
    primary: Level,
    *,
    n_boot: int,
    seed: int,
    skip_levels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Alpha at each level, percent agreement, Fleiss' kappa and intervals for one question's ratings."""
    figures = _blank(question, "", levels)
    skipped = skip_levels or {}
    stats = {
        f"krippendorff_alpha.{level}": krippendorff_alpha(ratings, level)
        if level not in skipped
        else Statistic.undefined(skipped[level])
        for level in levels
    }
    agreement = stats["percent_agreement"] = percent_agreement(ratings)
    fleiss = stats["fleiss_kappa"] = fleiss_kappa(_pairable(ratings))
    reasons = {key: stat.reason for key, stat in stats.items() if stat.reason}
    figures["krippendorff_alpha"] = {level: stats[f"krippendorff_alpha.{level}"].value for level in levels}
    primary_alpha = stats[f"krippendorff_alpha.{primary}"]
    figures.update(
        n_units=agreement.n_units,
        n_raters=int(np.unique(ratings.rater).size),
        percent_agreement=agreement.value,
        primary_level=primary,
        fleiss_kappa=fleiss.value,
        reasons=reasons,
        ci={
            "alpha": _ci(AlphaStatistic(primary), ratings, primary_alpha, n_boot, seed),
            "percent_agreement": _ci(PercentAgreementStatistic(), ratings, agreement, n_boot, seed),
        },
    )
    return figures


def _distribution(values: FloatArray, labelled: list[tuple[float, str, str]]) -> list[dict[str, Any]]:
    """Counts of each (code, value, label) among the values, in the given order."""
    total = int(values.size)
    codes, counts = np.unique(values, return_counts=True)
    found = dict(zip(codes.tolist(), counts.tolist(), strict=True))
    return (
        [
            {"value": value, "label": label, "count": found.get(code, 0), "share": found.get(code, 0) / total}
            for code, value, label in labelled
        ]
        if total
        else []
    )


def _rating_figures(collector: Collector, n_boot: int, seed: int) -> dict[str, Any]:
    question = collector.question
    assert isinstance(question, RatingQuestion)
    ratings = collector.long.ratings()
    skip = {"ratio": RATIO_NEEDS_POSITIVE} if question.min < 0 else None
    figures = _agreement(
        question, ratings, LEVELS_ALL, question.level, n_boot=n_boot, seed=seed, skip_levels=skip
    )
    points = range(question.min, question.max + 1)
    figures["distribution"] = _distribution(
        ratings.value, [(float(p), str(p), question.label_for(p) or str(p)) for p in points]
    )
    return figures


def _label_figures(collector: Collector, n_boot: int, seed: int) -> dict[str, Any]:
    question = collector.question
    assert isinstance(question, LabelQuestion)
    ratings = collector.long.ratings()
    figures = _agreement(question, ratings, NOMINAL, "nominal", n_boot=n_boot, seed=seed)
    figures["distribution"] = _distribution(
        ratings.value, [(float(i), option, option) for i, option in enumerate(question.options)]
    )
    return figures


def _preference_figures(collector: Collector, n_boot: int, seed: int) -> dict[str, Any]:
    question = collector.question
    assert isinstance(question, PreferenceQuestion) and isinstance(collector, PreferenceCollector)
    ratings = collector.long.ratings()
    figures = _agreement(question, ratings, NOMINAL, "nominal", n_boot=n_boot, seed=seed)
    labels = ratings.value.astype(np.int64).astype(str)
    labels[ratings.value == TIE_CODE], labels[ratings.value == BOTH_BAD_CODE] = TIE, BOTH_BAD
    both = preference_agreement(ratings.unit, ratings.rater, labels, tie_labels=(TIE, BOTH_BAD))
    figures["preference"] = both.to_dict()
    total = sum(collector.choices.values())
    figures["distribution"] = (
        [
            {"value": key, "label": label, "count": n, "share": n / total}
            for key, label, n in (
                ("response", "a response chosen", collector.choices["response"]),
                (TIE, "tie", collector.choices[TIE]),
                (BOTH_BAD, "both bad", collector.choices[BOTH_BAD]),
            )
        ]
        if total
        else []
    )
    figures["strength_distribution"] = _strength_distribution(question, collector.strengths)
    return figures


def _strength_distribution(question: PreferenceQuestion, strengths: dict[int, int]) -> list[dict[str, Any]]:
    if question.strength is None:
        return []
    total = sum(strengths.values())
    return (
        [
            {
                "value": str(i),
                "label": label,
                "count": strengths.get(i, 0),
                "share": strengths.get(i, 0) / total,
            }
            for i, label in enumerate(question.strength.labels, start=1)
        ]
        if total
        else []
    )


def _multi_label_figures(collector: Collector, n_boot: int, seed: int) -> dict[str, Any]:
    """Each option's presence (0/1) is a nominal question of its own; the pooled figures treat every
    (item, option) as a unit."""
    question = collector.question
    assert isinstance(question, MultiLabelQuestion)
    unit, rater, mask, _ = collector.long.arrays()
    bits = mask.astype(np.int64)
    n_options = len(question.options)
    present = [((bits >> j) & 1).astype(np.float64) for j in range(n_options)]
    pooled = Ratings.from_long(
        np.concatenate([unit * n_options + j for j in range(n_options)]),
        np.tile(rater, n_options),
        np.concatenate(present),
    )
    figures = _agreement(question, pooled, NOMINAL, "nominal", n_boot=n_boot, seed=seed)
    figures["n_units"] = percent_agreement(Ratings.from_long(unit, rater, mask)).n_units
    figures["per_option"] = [
        _option_figures(option, unit, rater, values)
        for option, values in zip(question.options, present, strict=True)
    ]
    total = int(unit.size)
    figures["distribution"] = (
        [
            {
                "value": option,
                "label": option,
                "count": int(values.sum()),
                "share": float(values.sum()) / total,
            }
            for option, values in zip(question.options, present, strict=True)
        ]
        if total
        else []
    )
    return figures


def _option_figures(option: str, unit: IntArray, rater: IntArray, values: FloatArray) -> dict[str, Any]:
    ratings = Ratings.from_long(unit, rater, values)
    alpha, agreement = krippendorff_alpha(ratings, "nominal"), percent_agreement(ratings)
    reasons = {key: s.reason for key, s in (("alpha", alpha), ("percent_agreement", agreement)) if s.reason}
    return {
        "option": option,
        "alpha": alpha.value,
        "percent_agreement": agreement.value,
        "n_units": agreement.n_units,
        "reasons": reasons,
    }


def _mean_with_ci(
    values: FloatArray, n_boot: int, seed: int, reason: str
) -> tuple[Statistic, dict[str, Any]]:
    point, ci = rankings.mean_with_interval(values, n_boot, seed, CONFIDENCE, reason)
    return point, _interval(ci, point, n_boot)


def _ranking_figures(collector: Collector, n_boot: int, seed: int) -> dict[str, Any]:
    assert isinstance(collector, RankingCollector)
    question = collector.question
    w, tau = rankings.per_item_concordance(collector.rankings)
    w_stat, w_ci = _mean_with_ci(
        w, n_boot, seed, "fewer than two rankings on every item, or every ranking tied all"
    )
    tau_stat, _ = _mean_with_ci(tau, 0, seed, "no pair of raters ordered any two responses of a shared item")
    orders = Coder()
    same = Ratings.from_long(
        [r.item for r in collector.rankings],
        [r.rater for r in collector.rankings],
        [orders[r.ranks] for r in collector.rankings],
    )
    agreement = percent_agreement(same)
    figures = _blank(question, "")
    reasons = {
        key: s.reason
        for key, s in (
            ("kendall_w", w_stat),
            ("mean_kendall_tau_b", tau_stat),
            ("percent_agreement", agreement),
        )
        if s.reason
    }
    figures.update(
        n_units=int(w.size),
        n_raters=len({r.rater for r in collector.rankings}),
        kendall_w=w_stat.value,
        mean_kendall_tau_b=tau_stat.value,
        percent_agreement=agreement.value,
        reasons={**reasons, "krippendorff_alpha": NOT_FOR_RANKING, "fleiss_kappa": FLEISS_NOMINAL_ONLY},
        ci={
            "kendall_w": w_ci,
            "percent_agreement": _ci(PercentAgreementStatistic(), same, agreement, n_boot, seed),
        },
    )
    return figures


_FIGURES = {
    "preference": _preference_figures,
    "label": _label_figures,
    "rating": _rating_figures,
    "multi_label": _multi_label_figures,
    "ranking": _ranking_figures,
}


def _levels_of(question: Question) -> tuple[Level, ...]:
    if isinstance(question, RatingQuestion):
        return LEVELS_ALL
    return () if isinstance(question, RankingQuestion | TextQuestion) else NOMINAL


def question_figures(collector: Collector, n_boot: int, seed: int) -> dict[str, Any]:
    question = collector.question
    if isinstance(question, TextQuestion):
        figures = _blank(question, TEXT_SKIPPED)
        figures.update(skipped=True, n_annotations=collector.annotations)
        return figures
    if collector.annotations == 0:
        figures = _blank(question, NO_ANSWERS, _levels_of(question))
    else:
        figures = _FIGURES[question.kind](collector, n_boot, seed)
    figures.update(skipped=False, n_annotations=collector.annotations)
    return figures


# ----------------------------------------------------------------------------- raters, weeks, bias


def weekly_agreement(collector: Collector, primary: Level) -> list[dict[str, Any]]:
    """Agreement of the units completed in each ISO week: a unit counts in the week of its last answer."""
    unit, rater, value, day = collector.long.arrays()
    if unit.size == 0:
        return []
    last_day = np.full(int(unit.max()) + 1, np.iinfo(np.int64).min)
    np.maximum.at(last_day, unit, day)
    # Day 0 (1970-01-01) is a Thursday, so weeks counted from the Monday three days before are ISO weeks.
    week = (last_day[unit] + 3) // 7
    first_week = int(week.min())
    offset = week - first_week
    counts = np.bincount(offset)
    # Few distinct weeks: a stable sort of 16-bit offsets is numpy's linear-time radix sort.
    order = np.argsort(offset.astype(np.int16) if counts.size < 2**15 else offset, kind="stable")
    ends = np.cumsum(counts)
    rows = []
    for index in np.flatnonzero(counts).tolist():
        part = order[ends[index] - counts[index] : ends[index]]
        w = first_week + index
        ratings = Ratings.from_long(unit[part], rater[part], value[part])
        alpha, agreement = krippendorff_alpha(ratings, primary), percent_agreement(ratings)
        monday = date(1970, 1, 1) + timedelta(days=w * 7 - 3)
        iso = monday.isocalendar()
        rows.append(
            {
                "question": collector.question.name,
                "week": f"{iso.year}-W{iso.week:02d}",
                "week_start": monday.isoformat(),
                "level": primary,
                "alpha": alpha.value,
                "percent_agreement": agreement.value,
                "n_units": agreement.n_units,
                "reasons": {
                    k: s.reason for k, s in (("alpha", alpha), ("percent_agreement", agreement)) if s.reason
                },
            }
        )
    return rows


def primary_level(question: Question) -> Level:
    return question.level if isinstance(question, RatingQuestion) else "nominal"


def rater_pairs(collector: Collector, names: list[str]) -> list[dict[str, Any]]:
    """Cohen's kappa and raw agreement for every pair of raters who share items."""
    ratings = collector.long.ratings()
    pairs = pairwise_cohen_kappa(ratings).pairs
    rows = [
        {
            "rater_a": names[int(p.rater_a)],
            "rater_b": names[int(p.rater_b)],
            "n_shared": p.n_shared,
            "kappa": p.kappa,
            "percent_agreement": p.percent_agreement,
            "reason": p.reason,
        }
        for p in pairs
    ]
    return sorted(rows, key=lambda row: (row["rater_a"], row["rater_b"]))


def position_bias(collector: PreferenceCollector, names: list[str]) -> list[dict[str, Any]]:
    """Per rater: how often the first response on their screen was chosen, with a binomial test vs 0.5."""
    rater, first = collector.decisive_rater, collector.first_shown
    n = np.bincount(rater, minlength=len(names))
    k = np.bincount(rater, weights=first, minlength=len(names)).astype(np.int64)
    # scipy.stats costs tens of MiB in every process; imported where first used.
    from scipy import stats as sps

    rows = [
        {
            "rater": names[r],
            "n": int(n[r]),
            "first_shown": int(k[r]),
            "share_first": float(k[r] / n[r]),
            "p_value": float(sps.binomtest(int(k[r]), int(n[r]), 0.5).pvalue),
        }
        for r in np.flatnonzero(n).tolist()
    ]
    return sorted(rows, key=lambda row: row["rater"])
