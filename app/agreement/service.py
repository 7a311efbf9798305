"""Rules of the agreement domain: a project's agreement figures, its model leaderboard, item aggregation.

Only live answers of raters who are not excluded count: gold and training answers measure raters, not
items. Every figure is a finite number or None together with a reason; nothing here returns NaN.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.orm import Session

from app.agreement import figures
from app.agreement import repository as repo
from app.agreement.aggregation import bradley_terry, bradley_terry_bootstrap, dawid_skene, majority_vote
from app.agreement.collect import (
    BoolArray,
    Collector,
    FloatArray,
    IntArray,
    PreferenceCollector,
    bare_ids,
    bools,
    collect_answers,
    dense_codes,
    ints,
)
from app.caching import TtlCache
from app.errors import NotFound, Unprocessable
from app.projects import service as projects_service
from app.projects.models import Project
from app.projects.questions import BOTH_BAD, TIE, PreferenceQuestion, Question, TextQuestion

NO_PAIR_QUESTION = "the project has no preference or label question"
NO_PREFERENCE_QUESTION = "the project has no preference question"
NO_DECISIVE_ANSWERS = "no answers that chose a response (ties and 'both bad' do not count)"
NO_BATTLES = "no counted preference answers on items whose two responses name two different models"
SINGLE_CHOICE_KINDS = ("preference", "label")
WEEKLY_KINDS = ("preference", "label", "rating")


def _names(session: Session, raters: list[str]) -> list[str]:
    """Usernames in rater-code order (the streams spell user ids as text); a deleted account shows as a
    short id."""
    ids = [uuid.UUID(str(key)) for key in raters]
    found = repo.usernames(session, ids)
    return [found.get(user_id, str(user_id)[:8]) for user_id in ids]


def _first_answered(collectors: list[Collector], kinds: tuple[str, ...]) -> Collector | None:
    return next((c for c in collectors if c.kind in kinds and c.annotations), None)


def _section_reasons(
    questions: list[Question],
    pair_source: Collector | None,
    bias_source: PreferenceCollector | None,
    weekly: list[dict[str, Any]],
) -> dict[str, str]:
    """Why a project-wide section is empty: no such question, or no counted answers to it yet."""
    kinds = {q.kind for q in questions}
    reasons = {}
    if pair_source is None:
        has_kind = bool(kinds & set(SINGLE_CHOICE_KINDS))
        reasons["rater_pairs"] = figures.NO_ANSWERS if has_kind else NO_PAIR_QUESTION
    if bias_source is None:
        reasons["position_bias"] = figures.NO_ANSWERS if "preference" in kinds else NO_PREFERENCE_QUESTION
    elif not bias_source.decisive_rater.size:
        reasons["position_bias"] = NO_DECISIVE_ANSWERS
    if not weekly:
        reasons["by_week"] = figures.NO_ANSWERS
    return reasons


def project_agreement(
    session: Session, project: Project, *, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Agreement figures of every question, the rater x rater kappa table on the first preference or
    label question, agreement by ISO week and position bias. Undefined figures are None with a reason in
    the matching "reasons" entry; n_boot=0 skips the bootstrap intervals."""
    questions = projects_service.project_questions(project)
    collected = collect_answers(session, project, questions)
    names = _names(session, collected.raters)
    collectors = collected.collectors
    pair_source = _first_answered(collectors, SINGLE_CHOICE_KINDS)
    preference = _first_answered(collectors, ("preference",))
    bias_source = preference if isinstance(preference, PreferenceCollector) else None
    weekly = [
        row
        for c in collectors
        if c.kind in WEEKLY_KINDS
        for row in figures.weekly_agreement(c, figures.primary_level(c.question))
    ]
    return {
        "project_id": str(project.id),
        "n_annotations": collected.n_annotations,
        "n_items": collected.n_items,
        "n_raters": len(collected.raters),
        "n_excluded_raters": repo.count_excluded_raters(session, project.id),
        "n_boot": n_boot,
        "seed": seed,
        "confidence_level": figures.CONFIDENCE,
        "questions": [figures.question_figures(c, n_boot, seed) for c in collectors],
        "raters": sorted(names),
        "rater_pairs_question": pair_source.question.name if pair_source else None,
        "rater_pairs": figures.rater_pairs(pair_source, names) if pair_source else [],
        "by_week": weekly,
        "position_bias_question": bias_source.question.name if bias_source else None,
        "position_bias": figures.position_bias(bias_source, names) if bias_source else [],
        "reasons": _section_reasons(questions, pair_source, bias_source, weekly),
    }


# The project list shows each project's agreement at a glance. Reading a large project's answers takes
# seconds, and the list may be opened often, so each process keeps a figure for a minute: it moves slowly.
GLANCES: TtlCache[uuid.UUID, dict[str, Any] | None] = TtlCache(60.0)


def agreement_at_a_glance(session: Session, project: Project) -> dict[str, Any] | None:
    """The figures of the project's first gradable question, without intervals; None when it has none."""
    return GLANCES.get(project.id, lambda: _first_question_figures(session, project))


def _first_question_figures(session: Session, project: Project) -> dict[str, Any] | None:
    gradable = [q for q in projects_service.project_questions(project) if not isinstance(q, TextQuestion)]
    if not gradable:
        return None
    first: list[Question] = [gradable[0]]
    collected = collect_answers(session, project, first)
    return figures.question_figures(collected.collectors[0], n_boot=0, seed=0)


# -------------------------------------------------------------------------------------- leaderboard


def _preference_questions(project: Project) -> list[PreferenceQuestion]:
    return [q for q in projects_service.project_questions(project) if isinstance(q, PreferenceQuestion)]


def _stored_class(choices: pa.Table) -> IntArray:
    """Per answer: 0 the item's response stored first was chosen, 1 the second, 2 tie, 3 both bad, -1 none
    of these (no answer, or an id that is not one of the item's two responses)."""
    choice = bare_ids(choices["choice"])
    conditions = [
        bools(pc.equal(choice, bare_ids(choices["first"]))),
        bools(pc.equal(choice, bare_ids(choices["second"]))),
        bools(pc.equal(choices["choice"], TIE)),
        bools(pc.equal(choices["choice"], BOTH_BAD)),
    ]
    return np.select(conditions, [0, 1, 2, 3], -1).astype(np.int64)


def _model_rows(
    names: list[str], a: IntArray, b: IntArray, outcome: FloatArray, n_boot: int, seed: int
) -> tuple[list[dict[str, Any]], bool]:
    if n_boot < 1:
        return _point_rows(names, a, b, outcome)
    fit = bradley_terry_bootstrap(
        a, b, outcome, len(names), n_boot=n_boot, seed=seed, level=figures.CONFIDENCE
    )
    return [{**m.to_dict(), "model": names[m.model]} for m in fit.leaderboard()], fit.all_converged


def _point_rows(
    names: list[str], a: IntArray, b: IntArray, outcome: FloatArray
) -> tuple[list[dict[str, Any]], bool]:
    """Without resamples there are no intervals: ranks simply follow the point scores."""
    point = bradley_terry(a, b, outcome, len(names))
    rows: list[dict[str, Any]] = []
    for rank, m in enumerate(np.argsort(-point.score, kind="stable").tolist(), start=1):
        played = (a == m) | (b == m)
        wins = int(((a == m) & (outcome == 1.0)).sum() + ((b == m) & (outcome == 0.0)).sum())
        ties = int((played & (outcome == 0.5)).sum())
        counts = {
            "wins": wins,
            "ties": ties,
            "losses": int(played.sum()) - wins - ties,
            "battles": int(played.sum()),
        }
        rows.append(
            {
                "model": names[m],
                "score": float(point.score[m]),
                "lower": None,
                "upper": None,
                "rank": rank,
                **counts,
            }
        )
    return rows, point.converged


def leaderboard(session: Session, project: Project, *, n_boot: int = 200, seed: int = 0) -> dict[str, Any]:
    """Bradley-Terry scores of the models behind the responses, from the first preference question.

    Every counted answer is one battle between the models of the item's two responses; a tie and 'both
    bad' count half a win to each side. Items whose two responses do not name two different models are
    left out and counted (n_items_ignored, n_annotations_ignored).
    """
    questions = _preference_questions(project)
    result: dict[str, Any] = {
        "question": questions[0].name if questions else None,
        "models": [],
        "n_battles": 0,
        "n_items": 0,
        "n_items_ignored": 0,
        "n_annotations_ignored": 0,
        "n_boot": n_boot,
        "seed": seed,
        "level": figures.CONFIDENCE,
        "converged": None,
        "reason": None if questions else NO_PREFERENCE_QUESTION,
    }
    if not questions:
        return result
    choices = repo.read_preference_choices(session, project.id, questions[0].name)
    model_a, model_b = choices["model_a"], choices["model_b"]
    named = bools(
        pc.and_(pc.not_equal(model_a, model_b), pc.and_(pc.not_equal(model_a, ""), pc.not_equal(model_b, "")))
    )
    answered, stored = bools(pc.is_valid(choices["choice"])), _stored_class(choices)
    ignored, played = answered & ~named, named & (stored >= 0)
    result.update(
        n_battles=int(played.sum()),
        n_items=_distinct(choices["item"], played),
        n_items_ignored=_distinct(choices["item"], ignored),
        n_annotations_ignored=int(ignored.sum()),
    )
    if not played.any():
        result["reason"] = NO_BATTLES
        return result
    codes, names = dense_codes(pa.chunked_array([model_a.filter(played), model_b.filter(played)]))
    outcome = np.select([stored[played] == 0, stored[played] == 1], [1.0, 0.0], 0.5)
    half = int(played.sum())
    rows, converged = _model_rows(names.to_pylist(), codes[:half], codes[half:], outcome, n_boot, seed)
    result.update(models=rows, converged=converged)
    return result


def _distinct(keys: pa.ChunkedArray, mask: BoolArray) -> int:
    return int(pc.count_distinct(keys.filter(pa.array(mask))).as_py()) if mask.any() else 0


# ------------------------------------------------------------------------------ item-level aggregation

AggregationMethod = Literal["majority", "dawid-skene"]
# Classes of a preference answer: stored first response, stored second, tie, both bad.
N_CLASSES = 4


def _preference_question(project: Project, question_name: str) -> PreferenceQuestion:
    question = next((q for q in projects_service.project_questions(project) if q.name == question_name), None)
    if question is None:
        raise NotFound(f"The project has no question named {question_name!r}.")
    if not isinstance(question, PreferenceQuestion):
        raise Unprocessable(f"{question_name!r} is a {question.kind} question, not a preference question.")
    return question


def aggregate_preferences(
    session: Session, project: Project, question_name: str, method: AggregationMethod = "majority"
) -> list[dict[str, Any]]:
    """One aggregated answer per live item that has counted answers to a preference question.

    Each result: {"item_id" (UUID), "chosen_response_id" (a response id as text, "tie", "both_bad", or
    None when the majority is split), "confidence" (majority share, or the Dawid-Skene posterior of the
    chosen class), "n_annotations", "mean_strength" (None without strengths), "agreement" (share of
    agreeing rater pairs on the item, None with a single answer)}, in no particular order. Choices are
    matched by response id, never by screen side; the classes are the stored first response, the
    second, tie and both bad. Raises NotFound for an unknown question, Unprocessable for another kind
    or method.
    """
    question = _preference_question(project, question_name)
    if method not in ("majority", "dawid-skene"):
        raise Unprocessable(f"Unknown aggregation method {method!r}; use 'majority' or 'dawid-skene'.")
    choices = repo.read_preference_choices(session, project.id, question.name)
    label = _stored_class(choices)
    keep = label >= 0
    if not keep.any():
        return []
    kept = choices.filter(pa.array(keep))
    label = label[keep]
    unit, item_keys = dense_codes(kept["item"])
    n_units = len(item_keys)
    if method == "majority":
        vote = majority_vote(unit, label, n_units, N_CLASSES)
        chosen, confidence, resolved = vote.label, vote.share, ~vote.tied
    else:
        rater, rater_keys = dense_codes(kept["rater"])
        ds = dawid_skene(unit, rater, label, N_CLASSES, n_units=n_units, n_raters=len(rater_keys))
        chosen, confidence, resolved = ds.label, ds.confidence, np.ones(n_units, dtype=bool)
    return _item_results(kept, unit, item_keys, label, chosen, confidence, resolved)


def _item_results(
    kept: pa.Table,
    unit: IntArray,
    item_keys: pa.Array,
    label: IntArray,
    chosen: IntArray,
    confidence: FloatArray,
    resolved: BoolArray,
) -> list[dict[str, Any]]:
    n_units = len(item_keys)
    counts = np.bincount(unit * N_CLASSES + label, minlength=n_units * N_CLASSES).reshape(n_units, N_CLASSES)
    n, pairs = counts.sum(axis=1), (counts * (counts - 1)).sum(axis=1)
    strength = ints(kept["strength"])
    given = strength > 0
    strength_n = np.bincount(unit[given], minlength=n_units)
    strength_sum = np.bincount(unit[given], weights=strength[given], minlength=n_units)
    # Each item's two response ids, from its first row.
    _, first_row = np.unique(unit, return_index=True)
    stored = [kept["first"].take(first_row).to_pylist(), kept["second"].take(first_row).to_pylist()]
    results = []
    for code, key in enumerate(item_keys.to_pylist()):
        k = int(chosen[code])
        name = _response_id(stored[k][code]) if k < 2 else (TIE if k == 2 else BOTH_BAD)
        results.append(
            {
                "item_id": uuid.UUID(key),
                "chosen_response_id": name if resolved[code] else None,
                "confidence": float(confidence[code]),
                "n_annotations": int(n[code]),
                "mean_strength": float(strength_sum[code] / strength_n[code]) if strength_n[code] else None,
                "agreement": float(pairs[code] / (n[code] * (n[code] - 1))) if n[code] > 1 else None,
            }
        )
    return results


def _response_id(stored: str | None) -> str | None:
    """A response id spelled the way answers spell it (SQLite returns the bare 32 hex digits)."""
    return None if stored is None else str(uuid.UUID(stored))
