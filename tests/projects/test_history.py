"""Progress over time on the project page: judgments per UTC day and the days left at the recent pace."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.annotation.models import Annotation
from app.db import utcnow
from tests.factories import Persona, add_members, create_project, import_lines, pair_lines
from tests.projects.test_pages import _logged_in


def _judge(client: TestClient, project_id: str, persona: Persona) -> str:
    assignment = client.post(
        f"/api/v1/projects/{project_id}/assignments/next", headers=persona.headers
    ).json()
    choice = assignment["item"]["responses"][0]["id"]
    submitted = client.post(
        f"/api/v1/assignments/{assignment['assignment_id']}/annotation",
        json={"answers": {"overall": {"choice": choice}}},
        headers=persona.headers,
    )
    assert submitted.status_code == 201, submitted.text
    return str(submitted.json()["annotation_id"])


def _backdate(session: Session, annotation_id: str, days: int) -> None:
    session.execute(
        sa.update(Annotation)
        .where(Annotation.id == uuid.UUID(annotation_id))
        .values(created_at=utcnow() - timedelta(days=days))
    )
    session.flush()


def _bars(html: str) -> dict[str, int]:
    return {
        day: int(n) for day, n in re.findall(r"<title>(\d{4}-\d\d-\d\d) — judgments: (\d+)</title>", html)
    }


def test_judgments_per_day_and_the_days_left_at_the_last_weeks_pace(
    client: TestClient, session: Session, admin: Persona, annotator: Persona, second_annotator: Persona
) -> None:
    project = create_project(client, admin, gold_rate=0, annotations_per_item=2)
    add_members(client, admin, project["id"], annotator, second_annotator)
    import_lines(client, admin, project["id"], pair_lines(4))
    first, second, third, _today = (_judge(client, project["id"], annotator) for _ in range(4))
    _judge(client, project["id"], second_annotator)
    _backdate(session, first, 3)
    _backdate(session, second, 3)
    _backdate(session, third, 10)
    _logged_in(client, "admin")

    page = client.get(f"/projects/{project['id']}").text
    assert f'hx-get="/projects/{project["id"]}/progress/history"' in page
    html = client.get(f"/projects/{project['id']}/progress/history").text

    today = utcnow().date()
    assert _bars(html) == {
        (today - timedelta(days=10)).isoformat(): 1,
        (today - timedelta(days=3)).isoformat(): 2,
        today.isoformat(): 2,
    }
    # 8 judgments wanted, 5 given: 3 left. The last 7 days hold 4 of them: 4/7 a day, so 3 take 6 days.
    text = re.sub(r"\s+", " ", html.split("</svg>", 1)[1])
    assert "pace of 0.6 judgments a day, the 3 still needed take about 6 more days" in text
    assert 'class="pace"' in html


def test_a_finished_project_says_so_and_an_idle_one_shows_no_bars(
    client: TestClient, admin: Persona, annotator: Persona
) -> None:
    idle = create_project(client, admin, gold_rate=0, annotations_per_item=1)
    import_lines(client, admin, idle["id"], pair_lines(2))
    done = create_project(client, admin, gold_rate=0, annotations_per_item=1)
    add_members(client, admin, done["id"], annotator)
    import_lines(client, admin, done["id"], pair_lines(1))
    _judge(client, done["id"], annotator)
    _logged_in(client, "admin")

    idle_html = client.get(f"/projects/{idle['id']}/progress/history").text
    assert _bars(idle_html) == {} and "No judgments in the last 30 days." in idle_html
    assert "No judgments in the last 7 days; 2 judgments are still needed." in re.sub(r"\s+", " ", idle_html)

    done_html = client.get(f"/projects/{done['id']}/progress/history").text
    assert list(_bars(done_html).values()) == [1]
    assert "Every live item has all the judgments it needs." in done_html


def test_the_api_gives_the_same_history_and_what_is_left_is_never_stale(
    client: TestClient, admin: Persona, annotator: Persona
) -> None:
    project = create_project(client, admin, gold_rate=0, annotations_per_item=1)
    add_members(client, admin, project["id"], annotator)
    import_lines(client, admin, project["id"], pair_lines(3))
    _judge(client, project["id"], annotator)
    url = f"/api/v1/projects/{project['id']}/progress"
    body = client.get(url, headers=admin.headers).json()
    assert body["judgments_left"] == 2 and body["items_left"] == 2
    assert len(body["judgments_per_day"]) == 30
    assert body["judgments_per_day"][-1] == {"day": utcnow().date().isoformat(), "judgments": 1}
    assert body["pace_per_day"] == round(1 / 7, 3) and body["days_left"] == 14

    # The day counts may be a minute old; the judgments left follow every submission at once.
    _judge(client, project["id"], annotator)
    again = client.get(url, headers=admin.headers).json()
    assert again["judgments_left"] == 1 and again["items_left"] == 1
