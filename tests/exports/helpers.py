"""Builders for export tests: projects judged through the API, crowds written straight to the database."""

from __future__ import annotations

import io
import json
import re
import uuid
import zipfile
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pyarrow.parquet as pq
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.annotation.models import Annotation, Assignment
from app.db import utcnow
from tests.factories import Persona, add_members, create_project, import_lines, make_persona

# decide(persona, prompt, {"A"|"B"|...: response id}) → the submission body, or None to skip the item.
Decide = Callable[[Persona, Any, dict[str, str]], dict[str, Any] | None]

ANSWER_TEXT = re.compile(r"^Answer ([A-Z]) to")


def raters(session: Session, *names: str) -> list[Persona]:
    return [make_persona(session, name, "annotator") for name in names]


def new_project(
    client: TestClient, admin: Persona, members: list[Persona], lines: list[dict[str, Any]], **overrides: Any
) -> str:
    body = {"gold_rate": 0, "annotations_per_item": len(members), **overrides}
    project = create_project(client, admin, **body)
    add_members(client, admin, project["id"], *members)
    import_lines(client, admin, project["id"], lines)
    return str(project["id"])


def by_letter(item: dict[str, Any]) -> dict[str, str]:
    """Response ids keyed by the letter in their text ("Answer B to 3" → "B"), whatever the screen order."""
    letters = {}
    for response in item["responses"]:
        match = ANSWER_TEXT.match(response["text"])
        letters[match.group(1) if match else response["text"]] = response["id"]
    return letters


def judge_all(client: TestClient, project_id: str, persona: Persona, decide: Decide) -> int:
    """Let one rater take and answer every item the engine hands out; returns how many were submitted."""
    submitted = 0
    for _ in range(500):
        lease = client.post(f"/api/v1/projects/{project_id}/assignments/next", headers=persona.headers)
        if lease.status_code == 204:
            return submitted
        assert lease.status_code == 200, lease.text
        assignment = lease.json()
        body = decide(persona, assignment["item"]["prompt"], by_letter(assignment["item"]))
        url = f"/api/v1/assignments/{assignment['assignment_id']}"
        if body is None:
            skipped = client.post(f"{url}/skip", json={"reason": "other"}, headers=persona.headers)
            assert skipped.status_code == 200, skipped.text
            continue
        response = client.post(f"{url}/annotation", json=body, headers=persona.headers)
        assert response.status_code == 201, response.text
        submitted += 1
    raise AssertionError("the engine kept handing out items")


def insert_vote(
    session: Session,
    project_id: uuid.UUID,
    item_id: uuid.UUID,
    user_id: uuid.UUID,
    order: list[str],
    answers: Any,
) -> None:
    """A live annotation written directly, for crowds too large to click through the API."""
    now = utcnow()
    assignment = Assignment(
        project_id=project_id,
        item_id=item_id,
        user_id=user_id,
        purpose="live",
        status="submitted",
        display_order=order,
        expires_at=now + timedelta(minutes=30),
        finished_at=now,
    )
    session.add(assignment)
    session.flush()
    session.add(
        Annotation(
            assignment_id=assignment.id,
            project_id=project_id,
            item_id=item_id,
            user_id=user_id,
            purpose="live",
            answers=answers,
            display_order=order,
        )
    )


def stream(client: TestClient, admin: Persona, project_id: str, **params: Any) -> Any:
    return client.get(f"/api/v1/projects/{project_id}/export", params=params, headers=admin.headers)


def jsonl_rows(client: TestClient, admin: Persona, project_id: str, **params: Any) -> list[dict[str, Any]]:
    response = stream(client, admin, project_id, **params)
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines() if line]


def parquet_rows(content: bytes) -> list[dict[str, Any]]:
    return pq.read_table(io.BytesIO(content)).to_pylist()


def zip_members(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def pair_letters(row: dict[str, Any]) -> tuple[str, str]:
    """("A", "B") for a row whose chosen text is "Answer A to …" and rejected "Answer B to …"."""

    def letter(value: Any) -> str:
        text = value if isinstance(value, str) else value[-1]["content"]
        match = ANSWER_TEXT.search(text.split("\n\n")[-1])
        assert match, text
        return match.group(1)

    return letter(row["chosen"]), letter(row["rejected"])
