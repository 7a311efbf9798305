"""A demo campaign already under way, so an admin's screens have something to show on a new database.

Five sample raters go through the real queue: they take the qualification (three training items with
feedback), then judge most of the live pairs, three raters per pair, with gold checks mixed in. Four are
careful to different degrees; the fifth passes training and then clicks the left answer at once and rates
everything 3, which the quality page should catch (position bias, speed, straight-lining, gold, agreement).
Their judgments follow the answer the demo items were written to favour, so exports and agreement figures
read sensibly. Each careful rater gets a different few live pairs wrong, never the same pair as another, so
once the careless rater is excluded no pair's majority is wrong (tests rely on it). Timestamps are spread over the last four working days, as a campaign's would be.
"""

from __future__ import annotations

import random
import secrets
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.accounts import service as accounts_service
from app.accounts.models import User
from app.annotation import service as annotation_service
from app.annotation.models import Annotation, Assignment
from app.annotation.schemas import AnnotationSubmit
from app.db import utcnow
from app.demo.content import DEMO_GUIDELINES, HELPFULNESS_QUESTION, OVERALL_QUESTION
from app.items import service as items_service
from app.items.models import Item, Response
from app.projects import service as projects_service
from app.projects.models import Project, ProjectMembership
from app.projects.questions import TIE
from app.projects.schemas import ProjectCreate
from app.training.models import QualificationAttempt

CAMPAIGN_SLUG = "demo-campaign"
# Positions of each demo item's answers, best first, as the items were written; None where the two answers
# differ only in wording, so that careful raters split between them and a tie.
BEST_FIRST: dict[str, list[int] | None] = {
    "demo-01": [0, 1],
    "demo-02": [1, 0],
    "demo-03": [1, 0],
    "demo-04": [0, 1],
    "demo-05": [1, 0],
    "demo-06": [1, 0],
    "demo-07": None,
    "demo-08": [1, 0],
    "demo-09": [1, 0],
    "demo-10": [0, 1],
    "demo-11": [1, 0],
    "demo-12": [1, 0],
    "demo-13": [0, 1],
    "demo-14": [1, 0],
    "demo-15": [0, 1],
    "demo-16": [0, 1],
    "demo-17": [1, 0],
    "demo-18": [1, 0],
    "demo-19": [1, 0],
    "demo-20": [0, 1],
    "demo-21": [1, 3, 0, 2],
    "demo-22": [1, 2, 0],
    "demo-24": [2, 1, 0],
}
# The qualification: (better, worse, explanation) by position; these items are not in the live queue.
TRAINING: dict[str, tuple[int, int, str]] = {
    "demo-25": (
        1,
        0,
        "40 + 35 minutes is 75 minutes, which is 1 hour 15 minutes, not 1 hour 25: the train arrives at 17:15. "
        "A correct answer beats a confident wrong one, however well the wrong one is laid out.",
    ),
    "demo-26": (
        2,
        1,
        "`sort -r` sorts the lines in reverse alphabetical order; it does not reverse the file. "
        "Check what a command really does before preferring the answer that uses it.",
    ),
    "demo-23": (
        1,
        2,
        "The sky is not blue because it reflects the sea. A simple explanation only wins when it is also true.",
    ),
}
# Live pairs turned into gold checks, with what the rater is told after answering one.
GOLD: dict[str, str] = {
    "demo-02": "COUNT(o.total) counts orders; the question asks for money spent, which is SUM(o.total).",
    "demo-04": "`rm -rf $(find ...)` with an unquoted glob and `-mtime 7` deletes the wrong files, "
    "or none; the other answer previews first and deletes safely.",
    "demo-15": "The user asked for next Friday; the longer email asks for Monday off.",
    "demo-17": "Divisible by 4 is not the whole rule: 1900 was not a leap year.",
}


@dataclass(frozen=True)
class SampleRater:
    username: str
    # The live pairs this rater judges wrong: those whose key falls on one of these residues modulo
    # MISTAKE_MODULUS. Careful raters' residues do not overlap.
    mistakes: frozenset[int] = frozenset()
    # Passes training, then always takes the answer on the left within seconds and rates everything 3.
    careless: bool = False
    # Skips the items in Chinese: not every rater reads every language.
    reads_chinese: bool = True


SAMPLE_RATERS = (
    SampleRater("sample-ana", frozenset({0})),
    SampleRater("sample-ben", frozenset({1}), reads_chinese=False),
    SampleRater("sample-chen", frozenset({3, 7})),
    SampleRater("sample-dana", frozenset({2, 8})),
    SampleRater("sample-eli", careless=True),
)
MISTAKE_MODULUS = 20
ANNOTATIONS_PER_ITEM = 3
# The share of the live judgments the sample raters give, leaving the rest for the demo's own raters.
SHARE_DONE = 0.75
DAYS = 4


def seed_campaign(
    session: Session, admin: User, demo_raters: list[User], records: list[dict[str, Any]]
) -> Project:
    """Create the campaign project and play the sample raters' work through the annotation service."""
    project = projects_service.create_project(
        session,
        ProjectCreate.model_validate(
            {
                "name": "Demo: a campaign under way (sample raters)",
                "slug": CAMPAIGN_SLUG,
                "description": "Five sample raters have trained and judged most pairs, one of them carelessly. "
                "See its agreement, rater quality, training and export pages.",
                "guidelines": DEMO_GUIDELINES,
                "annotations_per_item": ANNOTATIONS_PER_ITEM,
                "require_qualification": True,
                "qualification_threshold": 0.66,
                "gold_rate": 0.2,
                "gold_min_answers": 3,
                "gold_pause_threshold": 0.7,
                "min_seconds_per_item": 5,
                "questions": [OVERALL_QUESTION, HELPFULNESS_QUESTION],
            }
        ),
        admin,
    )
    by_id = {record["external_id"]: record for record in records}
    items_service.import_items(
        session,
        project,
        enumerate((_training_line(by_id[ext], *rule) for ext, rule in TRAINING.items()), start=1),
        admin,
        options=items_service.import_options(project),
        purpose="training",
    )
    live = [by_id[ext] for ext in BEST_FIRST]
    items_service.import_items(
        session,
        project,
        enumerate(live, start=1),
        admin,
        options=items_service.import_options(project, "all"),
    )
    origin = {
        response["text"]: (record["external_id"], position)
        for record in records
        for position, response in enumerate(record["responses"])
    }
    _mark_gold(session, project, admin, origin)
    raters = [
        accounts_service.create_user(session, r.username, secrets.token_urlsafe(12)) for r in SAMPLE_RATERS
    ]
    for user in [*raters, *demo_raters]:
        projects_service.add_member(session, project, admin, user_id=user.id)
    _play(session, project, list(zip(SAMPLE_RATERS, raters, strict=True)), origin)
    _spread_over_days(session, project, {user.id for user in raters})
    return project


def _training_line(record: dict[str, Any], better: int, worse: int, explanation: str) -> dict[str, Any]:
    return {
        "external_id": f"{record['external_id']}-training",
        "prompt": record["prompt"],
        "responses": [record["responses"][better], record["responses"][worse]],
        "gold": {"answers": {"overall": {"choice": 0}}, "explanation": explanation},
    }


def _mark_gold(session: Session, project: Project, admin: User, origin: dict[str, tuple[str, int]]) -> None:
    live = session.scalars(sa.select(Item).where(Item.project_id == project.id, Item.purpose == "live"))
    for item in list(live):
        responses = _responses(session, item.id)
        external_id = origin[responses[0].text][0]
        better = _better(responses, origin)
        if external_id in GOLD and better is not None:
            answers = {"overall": {"choice": str(better.id)}}
            items_service.set_gold(session, project, item, answers, GOLD[external_id], admin)


def _responses(session: Session, item_id: uuid.UUID) -> list[Response]:
    return list(
        session.scalars(sa.select(Response).where(Response.item_id == item_id).order_by(Response.position))
    )


def _better(responses: list[Response], origin: dict[str, tuple[str, int]]) -> Response | None:
    """The better of a pair by the demo's intent; None when neither is."""
    external_id = origin[responses[0].text][0]
    if external_id in TRAINING:
        order: list[int] | None = list(TRAINING[external_id][:2])
    else:
        order = BEST_FIRST[external_id]
    if order is None:
        return None
    ranked = order
    return min(responses, key=lambda r: ranked.index(origin[r.text][1]))


def _play(
    session: Session,
    project: Project,
    raters: list[tuple[SampleRater, User]],
    origin: dict[str, tuple[str, int]],
) -> None:
    """Raters take turns asking for work, as they would at their desks, until the share is done."""
    rng = random.Random(20261125)
    live_items = session.scalar(
        sa.select(sa.func.count(Item.id)).where(Item.project_id == project.id, Item.purpose == "live")
    )
    target = int((live_items or 0) * ANNOTATIONS_PER_ITEM * SHARE_DONE)
    done, active = 0, list(raters)
    while active and done < target:
        for turn in list(active):
            if done == target:
                break
            rater, user = turn
            leased = annotation_service.next_assignment(session, project.id, user)
            if leased is None:
                active.remove(turn)
                continue
            assignment_id = leased.assignment.id
            if not rater.reads_chinese and _has_chinese(leased.item.prompt):
                annotation_service.skip_assignment(
                    session, assignment_id, user, "needs_expertise", "I don't read Chinese."
                )
                continue
            body = _judge(rater, leased, origin, rng)
            annotation_service.submit_annotation(session, assignment_id, user, body)
            done += leased.assignment.purpose == "live"


def _judge(
    rater: SampleRater,
    leased: annotation_service.LeasedItem,
    origin: dict[str, tuple[str, int]],
    rng: random.Random,
) -> AnnotationSubmit:
    shown = leased.responses
    better = _better(shown, origin)
    careful = not rater.careless or leased.training
    if not careful:
        choice: str = str(shown[0].id)
        scores = {str(r.id): 3 for r in shown}
        spent = rng.randint(1_500, 3_500)
    else:
        if better is None:
            choice = TIE if rng.random() < 0.6 else str(rng.choice(shown).id)
        elif leased.assignment.purpose != "live" or _pair_key(shown, origin) not in rater.mistakes:
            # Training and gold items are the clear cases; careful raters get them right.
            choice = str(better.id)
        else:
            choice = str(next(r.id for r in shown if r.id != better.id))
        scores = {str(r.id): rng.randint(4, 5) if str(r.id) == choice else rng.randint(1, 3) for r in shown}
        if choice == TIE:
            scores = {str(r.id): 4 for r in shown}
        spent = rng.randint(25_000, 150_000)
    overall: dict[str, Any] = {"choice": choice}
    if choice != TIE:
        overall["strength"] = 1 if not careful else rng.choice([2, 3, 3, 4])
    return AnnotationSubmit(answers={"overall": overall, "helpfulness": scores}, time_spent_ms=spent)


def _pair_key(shown: list[Response], origin: dict[str, tuple[str, int]]) -> int:
    """A number for the pair that does not depend on the order it was shown in."""
    name = "|".join(sorted(f"{origin[r.text][0]}:{origin[r.text][1]}" for r in shown))
    return zlib.crc32(name.encode()) % MISTAKE_MODULUS


def _has_chinese(prompt: str | list[dict[str, str]]) -> bool:
    text = prompt if isinstance(prompt, str) else " ".join(turn.get("content", "") for turn in prompt)
    return any("\u4e00" <= character <= "\u9fff" for character in text)


def _spread_over_days(session: Session, project: Project, rater_ids: set[uuid.UUID]) -> None:
    """Move the sample raters' work to working hours of the last few days: training on the first morning,
    then the judgments in the order they were given."""
    session.flush()
    today = utcnow().replace(hour=9, minute=0, second=0, microsecond=0)
    first_day = today - timedelta(days=DAYS)
    trained_at = first_day - timedelta(minutes=30)
    session.execute(
        sa.update(QualificationAttempt)
        .where(QualificationAttempt.project_id == project.id, QualificationAttempt.user_id.in_(rater_ids))
        .values(created_at=trained_at - timedelta(minutes=20), finished_at=trained_at)
    )
    session.execute(
        sa.update(ProjectMembership)
        .where(
            ProjectMembership.project_id == project.id,
            ProjectMembership.user_id.in_(rater_ids),
            ProjectMembership.qualified_at.is_not(None),
        )
        .values(qualified_at=trained_at)
    )
    rows = session.execute(
        sa.select(Assignment.id, Annotation.id, Annotation.time_spent_ms, Assignment.purpose)
        .outerjoin(Annotation, Annotation.assignment_id == Assignment.id)
        .where(Assignment.project_id == project.id, Assignment.user_id.in_(rater_ids))
        .order_by(Assignment.created_at, Assignment.id)
    ).all()
    work = [row for row in rows if row.purpose != "training"]
    for moment, row in zip(_working_moments(first_day, len(work)), work, strict=True):
        started = moment - timedelta(milliseconds=row.time_spent_ms or 20_000)
        session.execute(
            sa.update(Assignment)
            .where(Assignment.id == row[0])
            .values(created_at=started, finished_at=moment, expires_at=started + timedelta(hours=1))
        )
        if row[1] is not None:
            session.execute(sa.update(Annotation).where(Annotation.id == row[1]).values(created_at=moment))
    session.execute(
        sa.update(Assignment)
        .where(Assignment.project_id == project.id, Assignment.purpose == "training")
        .values(created_at=trained_at - timedelta(minutes=10), finished_at=trained_at)
    )


def _working_moments(first_day: datetime, count: int) -> Iterator[datetime]:
    """count moments, evenly through 09:00 to 17:00 of DAYS days from first_day."""
    per_day = max(1, -(-count // DAYS))
    for index in range(count):
        day, slot = divmod(index, per_day)
        yield first_day + timedelta(days=day, minutes=8 * 60 * slot / per_day)
