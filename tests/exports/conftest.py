"""A small project judged through the API by three raters and one rater the admin later excludes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.exports.helpers import judge_all, new_project, raters
from tests.factories import Persona, pair_lines

# Per item: what annotator, second_annotator, third and the spoiler answer, as
# (choice, strength, flags, helpfulness ratings {letter: score}). "A"/"B" name responses by their text.
Judgement = tuple[str, int | None, list[str], dict[str, int] | None]
PLAN: dict[int, dict[str, Judgement]] = {
    # Everyone but the spoiler prefers A, with strengths 2, 3, 4 and helpfulness ratings from two raters.
    0: {
        "annotator": ("A", 2, [], {"A": 6, "B": 3}),
        "second_annotator": ("A", 3, [], {"A": 7, "B": 2}),
        "third": ("A", 4, [], None),
        "spoiler": ("B", 4, [], {"A": 1, "B": 7}),
    },
    # B by two of three; only one B voter grades the strength.
    1: {
        "annotator": ("B", 1, [], None),
        "second_annotator": ("B", None, [], None),
        "third": ("A", 4, [], None),
        "spoiler": ("B", 4, [], None),
    },
    # One vote each for A, B and tie: unresolved. With the spoiler counted, B would win.
    2: {
        "annotator": ("A", None, [], None),
        "second_annotator": ("B", None, [], None),
        "third": ("tie", None, [], None),
        "spoiler": ("B", None, [], None),
    },
    # A majority tie.
    3: {
        "annotator": ("tie", None, [], None),
        "second_annotator": ("tie", None, [], None),
        "third": ("A", 2, [], None),
        "spoiler": ("A", None, [], None),
    },
    # Unanimous A, but one counted rater flags the prompt as unsafe.
    4: {
        "annotator": ("A", 2, [], None),
        "second_annotator": ("A", 2, [], None),
        "third": ("A", 2, ["unsafe"], None),
        "spoiler": ("A", 2, [], None),
    },
    # A by two of three counted raters; with the spoiler it would be a 2-2 tie.
    5: {
        "annotator": ("A", 3, [], None),
        "second_annotator": ("A", 4, [], None),
        "third": ("B", 1, [], None),
        "spoiler": ("B", 1, [], None),
    },
    # Unanimous A; only the excluded spoiler flags it, which must not count.
    6: {
        "annotator": ("A", 1, [], None),
        "second_annotator": ("A", 1, [], None),
        "third": ("A", 1, [], None),
        "spoiler": ("A", 1, ["unsafe"], None),
    },
    # Both bad.
    7: {
        "annotator": ("both_bad", None, [], None),
        "second_annotator": ("both_bad", None, [], None),
        "third": ("A", None, [], None),
        "spoiler": ("A", None, [], None),
    },
}

NUMBER = re.compile(r"Question number (\d+)\?")


def decide_by_plan(persona: Persona, prompt: Any, ids: dict[str, str]) -> dict[str, Any]:
    text = prompt if isinstance(prompt, str) else prompt[-1]["content"]
    match = NUMBER.search(text)
    assert match, text
    choice, strength, flags, ratings = PLAN[int(match.group(1))][persona.user.username]
    answer: dict[str, Any] = {"choice": ids.get(choice, choice)}
    if strength is not None:
        answer["strength"] = strength
    answers: dict[str, Any] = {"overall": answer}
    if ratings is not None:
        answers["helpfulness"] = {ids[letter]: score for letter, score in ratings.items()}
    return {"answers": answers, "flags": flags, "time_spent_ms": 5000}


@dataclass
class Judged:
    project_id: str
    raters: list[Persona]
    spoiler: Persona


@pytest.fixture
def judged(
    client: TestClient,
    session: Session,
    admin: Persona,
    annotator: Persona,
    second_annotator: Persona,
) -> Judged:
    """The PLAN judged through the API, then the spoiler excluded by the admin."""
    third, spoiler = raters(session, "third", "spoiler")
    members = [annotator, second_annotator, third, spoiler]
    project_id = new_project(client, admin, members, pair_lines(len(PLAN)))
    for persona in members:
        assert judge_all(client, project_id, persona, decide_by_plan) == len(PLAN)
    excluded = client.post(
        f"/api/v1/projects/{project_id}/raters/{spoiler.id}/exclude",
        json={"reason": "always disagrees"},
        headers=admin.headers,
    )
    assert excluded.status_code == 200, excluded.text
    return Judged(project_id, [annotator, second_annotator, third], spoiler)
