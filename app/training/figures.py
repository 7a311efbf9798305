"""Figures of a project's raters for the quality screens and API: signals, qualification state and history."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.db import utcnow
from app.items import service as items_service
from app.projects import service as projects_service
from app.projects.exceptions import MemberNotFound
from app.projects.models import Project
from app.projects.questions import Question, describe_answer
from app.training import repository as repo
from app.training import signals
from app.training.forms import gold_form_values, letters
from app.training.signals import QualityRules, RaterSignals, Reason

HISTORY_LIMIT = 50
# Graded answers scanned for mistakes; older ones are not listed.
GRADED_SCAN_LIMIT = 500


def screen_labels(order: Sequence[Any]) -> dict[str, str]:
    """Response id to the letter it was shown under (A, B, ...)."""
    return {str(rid): chr(ord("A") + i) if i < 26 else str(i + 1) for i, rid in enumerate(order)}


@dataclass(frozen=True)
class AttemptView:
    attempt: int
    answered: int
    matched: int
    graded: int
    passed: bool | None
    started_at: datetime
    finished_at: datetime | None

    @property
    def accuracy(self) -> float | None:
        return self.matched / self.graded if self.graded else None


@dataclass(frozen=True)
class RaterFigures:
    user_id: uuid.UUID
    username: str
    status: str
    paused_reason: str | None
    qualified_at: datetime | None
    excluded_at: datetime | None
    exclusion_reason: str | None
    attempts: list[AttemptView]
    signals: RaterSignals

    @property
    def excluded(self) -> bool:
        return self.excluded_at is not None

    @property
    def flagged(self) -> bool:
        return self.signals.flagged

    @property
    def reasons(self) -> list[Reason]:
        return self.signals.reasons


@dataclass(frozen=True)
class RaterReport:
    project_id: uuid.UUID
    raters: list[RaterFigures]
    reference_agreement: float | None
    rules: QualityRules


def quality_rules(project: Project) -> QualityRules:
    return QualityRules(
        gold_min_answers=project.gold_min_answers,
        gold_threshold=project.gold_pause_threshold,
        min_seconds_per_item=project.min_seconds_per_item,
    )


def rater_figures(session: Session, project: Project) -> RaterReport:
    """Every member's quality signals, flag, qualification and exclusion state; training answers never count."""
    members = projects_service.list_members(session, project.id)
    questions = projects_service.project_questions(project)
    rules = quality_rules(project)
    records = [
        signals.answer_record(
            questions,
            rater=row.user_id,
            item=row.item_id,
            created_at=row.created_at,
            answers=row.answers or {},
            display_order=row.display_order or [],
            time_ms=row.time_spent_ms,
            gold_result=row.gold_result,
            is_gold=row.purpose == "gold",
        )
        for row in repo.quality_answers(session, project.id)
    ]
    excluded = {m.user_id for m, _ in members if m.excluded_at is not None}
    computed = signals.project_signals(
        records,
        rules,
        today=utcnow().date(),
        raters=[m.user_id for m, _ in members],
        # Excluded raters are left out of agreement, so they do not set the majority others are held to.
        reference_raters={r.rater for r in records} - excluded,
        gold_since={m.user_id: m.qualified_at for m, _ in members},
    )
    attempts: dict[uuid.UUID, list[AttemptView]] = defaultdict(list)
    for a in repo.attempts(session, project.id):
        attempts[a.user_id].append(
            AttemptView(
                a.attempt, a.n_answered, a.n_matched, a.n_graded, a.passed, a.created_at, a.finished_at
            )
        )
    raters = [
        RaterFigures(
            user_id=user.id,
            username=user.username,
            status=membership.status,
            paused_reason=membership.paused_reason,
            qualified_at=membership.qualified_at,
            excluded_at=membership.excluded_at,
            exclusion_reason=membership.exclusion_reason,
            attempts=attempts.get(user.id, []),
            signals=computed.raters.get(user.id, RaterSignals()),
        )
        for membership, user in members
    ]
    return RaterReport(project.id, raters, computed.reference_agreement, rules)


def _bias(r: RaterFigures) -> float | None:
    share = r.signals.position.share
    return None if share is None else abs(share - 0.5)


# Position bias sorts by distance from an even split, so the most lopsided raters come first either way.
SORT_KEYS: dict[str, Callable[[RaterFigures], Any]] = {
    "rater": lambda r: r.username.lower(),
    "state": lambda r: (r.excluded, r.status != "active", r.qualified_at is None),
    "annotations": lambda r: r.signals.n_live,
    "gold": lambda r: r.signals.gold.share,
    "agreement": lambda r: r.signals.agreement.share,
    "position": _bias,
    "ties": lambda r: r.signals.choices.tie_rate,
    "both_bad": lambda r: r.signals.choices.both_bad_rate,
    "time": lambda r: r.signals.speed.median_ms,
    "fast": lambda r: r.signals.speed.fast_share,
    "straight": lambda r: r.signals.straight.share,
    "flag": lambda r: len(r.reasons),
}
DEFAULT_SORT = "flag"


def sort_raters(raters: Sequence[RaterFigures], key: str, descending: bool) -> list[RaterFigures]:
    """Sorted by one figure, ties by name; raters without that figure go last in either direction."""
    getter = SORT_KEYS.get(key, SORT_KEYS[DEFAULT_SORT])
    by_name = sorted(raters, key=lambda r: r.username.lower())
    present = [r for r in by_name if getter(r) is not None]
    missing = [r for r in by_name if getter(r) is None]
    return sorted(present, key=getter, reverse=descending) + missing


# ---------------------------------------------------------------------------------------------------
# One rater's page


@dataclass(frozen=True)
class AnswerLine:
    question: str
    text: str


@dataclass(frozen=True)
class HistoryRow:
    annotation_id: uuid.UUID
    created_at: datetime
    purpose: str
    item_id: uuid.UUID
    external_id: str | None
    answers: list[AnswerLine]
    guidelines_version: int
    time_ms: int | None
    matched: bool | None


@dataclass(frozen=True)
class MistakeLine:
    question: str
    given: str
    expected: str


@dataclass(frozen=True)
class MistakeRow:
    created_at: datetime
    purpose: str
    external_id: str | None
    item_id: uuid.UUID
    lines: list[MistakeLine]
    explanation: str | None


@dataclass(frozen=True)
class ExclusionRow:
    created_at: datetime
    action: str
    reason: str | None
    decided_by: str | None


@dataclass(frozen=True)
class RaterDetail:
    figures: RaterFigures
    reference_agreement: float | None
    rules: QualityRules
    history: list[HistoryRow]
    mistakes: list[MistakeRow]
    exclusions: list[ExclusionRow]


def _matched(result: dict[str, Any] | None) -> bool | None:
    if not result or not result.get("graded"):
        return None
    return bool(result.get("matched") == result["graded"])


def _summary(
    questions: Sequence[Question], answers: dict[str, Any], order: Sequence[Any]
) -> list[AnswerLine]:
    labels = screen_labels(order)
    return [
        AnswerLine(q.title, describe_answer(q, answers[q.name], labels))
        for q in questions
        if q.name in answers
    ]


def _mistake_lines(
    questions: Sequence[Question], result: dict[str, Any], order: Sequence[Any]
) -> list[MistakeLine]:
    labels = screen_labels(order)
    by_name = {q.name: q for q in questions}
    lines = []
    for detail in result.get("details") or []:
        question = by_name.get(detail.get("question"))
        if question is None or detail.get("matched") is not False:
            continue
        lines.append(
            MistakeLine(
                question.title,
                describe_answer(question, detail.get("given"), labels),
                describe_answer(question, detail.get("expected"), labels),
            )
        )
    return lines


def rater_detail(session: Session, project: Project, user_id: uuid.UUID) -> RaterDetail:
    """One member's figures, recent answers in screen terms, gold mistakes and exclusion history."""
    report = rater_figures(session, project)
    figures = next((r for r in report.raters if r.user_id == user_id), None)
    if figures is None:
        raise MemberNotFound()
    questions = projects_service.project_questions(project)
    history = [
        HistoryRow(
            annotation_id=a.id,
            created_at=a.created_at,
            purpose=a.purpose,
            item_id=item.id,
            external_id=item.external_id,
            answers=_summary(questions, a.answers or {}, a.display_order or []),
            guidelines_version=a.guidelines_version,
            time_ms=a.time_spent_ms,
            matched=_matched(a.gold_result),
        )
        for a, item in repo.rater_annotations(session, project.id, user_id, limit=HISTORY_LIMIT)
    ]
    mistakes = [
        MistakeRow(
            created_at=a.created_at,
            purpose=a.purpose,
            external_id=item.external_id,
            item_id=item.id,
            lines=_mistake_lines(questions, a.gold_result or {}, a.display_order or []),
            explanation=(item.gold or {}).get("explanation"),
        )
        for a, item in repo.rater_annotations(
            session, project.id, user_id, limit=GRADED_SCAN_LIMIT, graded_only=True
        )
        if _matched(a.gold_result) is False
    ]
    exclusions = [
        ExclusionRow(row.created_at, row.action, row.reason, name)
        for row, name in repo.exclusions(session, project.id, user_id)
    ]
    return RaterDetail(figures, report.reference_agreement, report.rules, history, mistakes, exclusions)


# ---------------------------------------------------------------------------------------------------
# The training set page

TRAINING_PAGE_LIMIT = 100
PREVIEW_CHARS = 280


def _preview(text: str) -> str:
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1].rstrip() + "…"


def prompt_preview(prompt: Any) -> str:
    """A prompt as one short text: the last user turn of a conversation."""
    if isinstance(prompt, list):
        turns = [t.get("content", "") for t in prompt if isinstance(t, dict) and t.get("role") == "user"]
        return _preview(str(turns[-1] if turns else ""))
    return _preview(str(prompt or ""))


@dataclass(frozen=True)
class ResponsePreview:
    letter: str
    text: str


@dataclass(frozen=True)
class GoldItemView:
    item_id: uuid.UUID
    external_id: str | None
    purpose: str
    prompt: str
    responses: list[ResponsePreview]
    gold: list[AnswerLine]
    explanation: str | None
    form_values: dict[str, Any]
    # How raters fared on this item so far: a gold answer nobody matches may itself be wrong.
    graded: signals.GoldAccuracy


@dataclass(frozen=True)
class TrainingSet:
    questions: list[Question]
    training: list[GoldItemView]
    training_total: int
    gold: list[GoldItemView]
    gold_total: int


def training_set(session: Session, project: Project, limit: int = TRAINING_PAGE_LIMIT) -> TrainingSet:
    """Training and live gold items with their gold answers in words; responses lettered in stored order."""
    questions = projects_service.project_questions(project)
    results = repo.graded_results_by_item(session, project.id)

    def views(purpose: str) -> tuple[list[GoldItemView], int]:
        rows, total = items_service.list_items(session, project.id, limit=limit, offset=0, purpose=purpose)
        result = []
        for item, responses in rows:
            ids = [str(r.id) for r in responses]
            answers = (item.gold or {}).get("answers") or {}
            result.append(
                GoldItemView(
                    item_id=item.id,
                    external_id=item.external_id,
                    purpose=item.purpose,
                    prompt=prompt_preview(item.prompt),
                    responses=[
                        ResponsePreview(letter, _preview(r.text))
                        for letter, r in zip(letters(len(responses)), responses, strict=True)
                    ],
                    gold=_summary(questions, answers, ids),
                    explanation=(item.gold or {}).get("explanation"),
                    form_values=gold_form_values(questions, answers, ids),
                    graded=signals.gold_accuracy(results.get(item.id, [])),
                )
            )
        return result, total

    training, training_total = views("training")
    gold, gold_total = views("gold")
    return TrainingSet(questions, training, training_total, gold, gold_total)
