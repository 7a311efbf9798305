"""The export preview counts exactly what a build keeps, duplicates included, without building rows.

On PostgreSQL the preview reads text lengths instead of texts and checks only rows that share a prompt and
lengths with another row; these projects are made of such near misses and true repeats.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.exports import service
from app.exports.pipeline import Tally, iter_rows
from app.exports.preview import prompt_hash
from app.exports.schemas import ExportOptions
from app.items.models import Item, Response
from app.projects.models import Project
from tests.exports.helpers import insert_vote, jsonl_rows, new_project, raters
from tests.factories import Persona

X, Y = "Rayleigh scattering.", "The ocean's colour."
# The same lengths in bytes as X and Y, other texts: they may only look like a repeat.
X_SAME_LENGTH, Y_SAME_LENGTH = "Rayleigh Scattering.", "The ocean's colour!"
CAFE, CAFE_ASCII = "Un café, s'il vous plaît.", "Un cafe, s'il vous plait."

# (external id, prompt, responses, vote): the vote names the chosen text, "both_bad" or "tie".
ITEMS: list[tuple[str, Any, list[str], str]] = [
    ("original", "Why is the sky blue?", [X, Y], X),
    ("repeat", "Why is the sky blue?", [X, Y], X),
    ("swapped", "Why is the sky blue?", [Y, X], X),
    ("near-miss", "Why is the sky blue?", [X_SAME_LENGTH, Y_SAME_LENGTH], X_SAME_LENGTH),
    # The same chat prompt as the text above: one user turn.
    ("as-chat", [{"role": "user", "content": "Why is the sky blue?"}], [X, Y], X),
    ("other-prompt", "Why is the sea blue?", [X, Y], X),
    ("twin-answers", "Say something.", ["Same.", "Same."], "both_bad"),
    ("accents", "Order a coffee in French.", [CAFE, CAFE_ASCII], CAFE),
    ("accents-again", "Order a coffee in French.", [CAFE, CAFE_ASCII], CAFE),
    ("tied", "Pick one.", ["One.", "Two."], "tie"),
]

OPTION_SETS: list[dict[str, Any]] = [
    {},
    {"include_ties": True},
    {"format": "preference-implicit"},
    {"format": "kto"},
    {"format": "kto", "include_ties": True},
    {"split": "train=0.5,test=0.5", "seed": 7},
    {"aggregation": "dawid-skene"},
    {"format": "ratings"},
    {"format": "raw"},
]


@pytest.fixture
def repeats(client: TestClient, session: Session, admin: Persona) -> str:
    (rater,) = raters(session, "repeat_rater")
    lines = [{"external_id": key, "prompt": prompt, "responses": texts} for key, prompt, texts, _ in ITEMS]
    questions = [
        {"name": "overall", "kind": "preference", "allow_tie": True, "allow_both_bad": True},
        {"name": "helpfulness", "kind": "rating", "min": 1, "max": 5, "required": False},
    ]
    project_id = new_project(client, admin, [rater], lines, questions=questions)
    votes = {key: vote for key, _, _, vote in ITEMS}
    for item in session.query(Item).filter(Item.project_id == uuid.UUID(project_id)):
        responses = (
            session.query(Response).filter(Response.item_id == item.id).order_by(Response.position).all()
        )
        ids = [str(r.id) for r in responses]
        vote = votes[str(item.external_id)]
        choice = vote if vote in ("tie", "both_bad") else ids[[r.text for r in responses].index(vote)]
        answers = {"overall": {"choice": choice}, "helpfulness": {ids[0]: 4, ids[1]: 2}}
        insert_vote(session, item.project_id, item.id, rater.id, ids, answers)
    session.commit()
    return project_id


def _preview(session: Session, project_id: str, options: dict[str, Any]) -> dict[str, Any]:
    project = session.get_one(Project, uuid.UUID(project_id))
    plan = service.plan_export(session, project, ExportOptions.model_validate(options))
    return service.preview_export(plan).model_dump()


def _build(session: Session, project_id: str, options: dict[str, Any]) -> dict[str, Any]:
    project = session.get_one(Project, uuid.UUID(project_id))
    plan = service.plan_export(session, project, ExportOptions.model_validate(options))
    tally = Tally()
    for _ in iter_rows(session, plan, tally):
        pass
    return tally.to_dict()


def test_preference_preview_finds_each_true_repeat_and_only_those(
    session: Session, repeats: str, client: TestClient, admin: Persona
) -> None:
    preview = _preview(session, repeats, {})
    # Eight items give a pair (the tie and both-bad items are left out). The repeat, the swapped item (whose
    # chosen and rejected texts are the original's) and the chat form of the prompt repeat the original, and
    # the second accents item the first; the near miss and the other prompt do not.
    assert {s["key"]: s["count"] for s in preview["steps"]}["rows_before_dedup"] == 8
    assert preview["dropped"]["duplicates"] == 4
    assert preview["rows"] == {"all": 4}
    kept = {r["external_id"] for r in jsonl_rows(client, admin, repeats)}
    # Rows go out by item id, so which of the repeats comes first (and stays) is any of them.
    assert len(kept & {"original", "repeat", "swapped", "as-chat"}) == 1
    assert len(kept & {"accents", "accents-again"}) == 1
    assert {"near-miss", "other-prompt"} <= kept and len(kept) == 4


def test_kto_preview_counts_a_repeat_inside_one_item(session: Session, repeats: str) -> None:
    preview = _preview(session, repeats, {"format": "kto", "include_ties": True})
    # Two rows per pair. The twin answers judged both bad give two equal rows; the tie gives none in kto.
    assert {s["key"]: s["count"] for s in preview["steps"]}["rows_before_dedup"] == 18
    assert preview["dropped"]["duplicates"] == 9
    assert preview["rows_total"] == 9


@pytest.mark.parametrize(
    "options", OPTION_SETS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()) or "default"
)
def test_preview_counts_equal_a_builds(
    session: Session, repeats: str, client: TestClient, admin: Persona, options: dict[str, Any]
) -> None:
    preview = _preview(session, repeats, options)
    built = _build(session, repeats, options)
    assert {s["key"]: s["count"] for s in preview["steps"] if s["key"] != "rows"} == {
        key: built["steps"].get(key, 0) for key in (s["key"] for s in preview["steps"] if s["key"] != "rows")
    }
    assert preview["dropped"] == built["dropped"]
    assert {name: n for name, n in preview["rows"].items() if n} == built["rows"]
    assert (preview["items"], preview["annotations"], preview["raters"]) == (10, 10, 1)
    streamed = jsonl_rows(client, admin, repeats, **options)
    assert preview["rows_total"] == len(streamed)


def test_prompts_written_alike_hash_alike() -> None:
    # The preview only sends rows with equal hashes to the exact check, so prompts that an export writes the
    # same way must never hash apart.
    text = "Why is the sky blue?"
    assert prompt_hash(text) == prompt_hash([{"role": "user", "content": text}])
    assert prompt_hash([{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]) != (
        prompt_hash(text)
    )
    assert prompt_hash(text) != prompt_hash(text + " ")
