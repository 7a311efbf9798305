"""Builders for the training tests: lines with a known better response, and simulated raters."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.factories import Persona

GOOD = "Good answer"
BAD = "Weak answer"

Strategy = Callable[[dict[str, Any]], dict[str, Any]]


def judged_lines(
    n: int, *, prefix: str, good_position: int = 1, gold: bool = False, explanation: str = "B is correct"
) -> list[dict[str, Any]]:
    """Pairs whose better response is recognisable by its text; with gold, the gold answer names it."""
    lines = []
    for i in range(n):
        texts = [f"{BAD} to {prefix} {i}", f"{BAD} to {prefix} {i}"]
        texts[good_position] = f"{GOOD} to {prefix} {i}"
        line: dict[str, Any] = {
            "external_id": f"{prefix}-{i}",
            "prompt": f"{prefix} question {i}?",
            "responses": [
                {"text": texts[0], "model": "model-alpha"},
                {"text": texts[1], "model": "model-beta"},
            ],
        }
        if gold:
            line["gold"] = {"answers": {"overall": {"choice": good_position}}, "explanation": explanation}
        lines.append(line)
    return lines


def good_id(assignment: dict[str, Any]) -> str:
    return next(r["id"] for r in assignment["item"]["responses"] if r["text"].startswith(GOOD))


def bad_id(assignment: dict[str, Any]) -> str:
    return next(r["id"] for r in assignment["item"]["responses"] if not r["text"].startswith(GOOD))


def honest(assignment: dict[str, Any]) -> dict[str, Any]:
    return {"answers": {"overall": {"choice": good_id(assignment)}}, "time_spent_ms": 9000}


def wrong(assignment: dict[str, Any]) -> dict[str, Any]:
    return {"answers": {"overall": {"choice": bad_id(assignment)}}, "time_spent_ms": 9000}


def always_first(assignment: dict[str, Any]) -> dict[str, Any]:
    # Responses arrive in the order they are shown, so the first one is display_order[0].
    return {
        "answers": {"overall": {"choice": assignment["item"]["responses"][0]["id"]}},
        "time_spent_ms": 9000,
    }


def random_clicker(seed: int) -> Strategy:
    rng = random.Random(seed)

    def choose(assignment: dict[str, Any]) -> dict[str, Any]:
        picked = rng.choice(assignment["item"]["responses"])["id"]
        return {"answers": {"overall": {"choice": picked}}, "time_spent_ms": 9000}

    return choose


def next_assignment(client: TestClient, persona: Persona, project_id: str) -> Any:
    return client.post(f"/api/v1/projects/{project_id}/assignments/next", headers=persona.headers)


def submit(client: TestClient, persona: Persona, assignment: dict[str, Any], body: dict[str, Any]) -> Any:
    response = client.post(
        f"/api/v1/assignments/{assignment['assignment_id']}/annotation", json=body, headers=persona.headers
    )
    assert response.status_code == 201, response.text
    return response.json()


def work(client: TestClient, persona: Persona, project_id: str, strategy: Strategy, limit: int = 500) -> int:
    """Answer until nothing is left for this rater; the number of answers given."""
    done = 0
    while done < limit:
        response = next_assignment(client, persona, project_id)
        if response.status_code == 204:
            return done
        assert response.status_code == 200, response.text
        submit(client, persona, response.json(), strategy(response.json()))
        done += 1
    return done


def work_in_turns(client: TestClient, project_id: str, raters: list[tuple[Persona, Strategy]]) -> None:
    """Raters take one item each in turn, as a team would, until every one of them runs dry."""
    active = list(raters)
    while active:
        for entry in list(active):
            persona, strategy = entry
            response = next_assignment(client, persona, project_id)
            if response.status_code == 204:
                active.remove(entry)
                continue
            assert response.status_code == 200, response.text
            submit(client, persona, response.json(), strategy(response.json()))


def raters_by_name(client: TestClient, admin: Persona, project_id: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/api/v1/projects/{project_id}/raters", headers=admin.headers, params=params)
    assert response.status_code == 200, response.text
    return {r["username"]: r for r in response.json()["raters"]}
