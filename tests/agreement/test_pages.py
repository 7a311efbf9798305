"""The agreement dashboard: who may see it, what it shows, its SVG and CSV downloads, and real Chromium."""

from __future__ import annotations

import csv
import io
import re
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.accounts import service as accounts_service
from app.accounts.models import User
from app.agreement import service
from app.projects.models import Project
from tests.agreement.test_service import annotate, make_item, make_project
from tests.factories import PASSWORD, Persona, add_members, create_project, import_lines, pair_lines

_CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
MODELS = ("gpt4_1106_preview", "claude-2", "Mistral-7B-Instruct-v0.2", "llama-2-70b-chat-hf")
STRENGTH = (1200.0, 1120.0, 1040.0, 980.0)
RATERS = ("amara", "bo", "chen_wei", "dmitri", "esther", "farid", "grace")
DASHBOARD_QUESTIONS: list[dict[str, Any]] = [
    {
        "name": "overall",
        "kind": "preference",
        "title": "Which response is better overall?",
        "strength": {"labels": ["negligibly better", "slightly better", "better", "significantly better"]},
    },
    {"name": "helpfulness", "kind": "rating", "title": "Helpfulness", "min": 1, "max": 7},
    {"name": "topic", "kind": "label", "title": "Topic", "options": ["coding", "writing", "facts", "advice"]},
    {"name": "rationale", "kind": "text", "title": "Why?", "required": False},
]
PLOT_NAMES = ("agreement", "by-week", "rater-kappa", "position-bias", "leaderboard", "distribution-overall")


def log_in(client: TestClient, persona: Persona) -> None:
    token = _CSRF_RE.search(client.get("/login").text)
    assert token is not None
    response = client.post(
        "/login",
        data={"username": persona.user.username, "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def seed_dashboard(session: Session, admin: User, *, n_items: int = 90, seed: int = 0) -> Project:
    """A project with three raters per item over four weeks: models of known strength, one rater who
    favours the left side, one who guesses, and a topic label most raters agree on."""
    rng = np.random.default_rng(seed)
    project = make_project(session, admin, DASHBOARD_QUESTIONS, name="Helpfulness pairs, March")
    raters = [accounts_service.create_user(session, name, PASSWORD, "annotator") for name in RATERS]
    start = datetime(2025, 3, 3, 9, tzinfo=UTC)
    for i in range(n_items):
        a, b = rng.choice(len(MODELS), size=2, replace=False)
        item, ids = make_item(session, project, models=(MODELS[a], MODELS[b]))
        p_first = 1 / (1 + 10 ** ((STRENGTH[b] - STRENGTH[a]) / 400))
        truth = 0 if rng.random() < p_first else 1
        topic = ["coding", "writing", "facts", "advice"][i % 4]
        for rater in rng.choice(raters, size=3, replace=False):
            order = ids if rng.random() < 0.5 else ids[::-1]
            answers = _answers(rng, rater.username, ids, order, truth, topic, STRENGTH[a] - STRENGTH[b])
            when = start + timedelta(days=int(i * 28 / n_items), hours=int(rng.integers(0, 9)))
            annotate(session, item, rater, answers, order=order, created_at=when)
    return project


def _answers(
    rng: np.random.Generator, rater: str, ids: list[str], order: list[str], truth: int, topic: str, gap: float
) -> dict[str, Any]:
    draw = rng.random()
    if rater == "farid" and draw < 0.5:  # leans to whatever is on the left
        choice = order[0]
    elif rater == "grace" and draw < 0.6:  # guesses
        choice = ids[int(rng.integers(0, 2))]
    elif draw < 0.08:
        choice = "tie"
    else:
        choice = ids[truth] if rng.random() < 0.85 else ids[1 - truth]
    overall: dict[str, Any] = {"choice": choice}
    if choice not in ("tie", "both_bad"):
        overall["strength"] = int(rng.integers(1, 5))
    base = 4 + gap / 100
    scores = {ids[0]: base + 1, ids[1]: base - 1}
    helpfulness = {rid: int(np.clip(round(s + rng.normal(0, 0.9)), 1, 7)) for rid, s in scores.items()}
    label = topic if rng.random() < 0.8 else ["coding", "writing", "facts", "advice"][int(rng.integers(0, 4))]
    return {"overall": overall, "helpfulness": helpfulness, "topic": label}


def _page(client: TestClient, project_id: Any, suffix: str = "", **params: Any) -> Any:
    return client.get(f"/projects/{project_id}/agreement{suffix}", params=params, follow_redirects=False)


class TestPermissions:
    def test_anonymous_is_sent_to_log_in(self, client: TestClient, admin: Persona) -> None:
        project = create_project(client, admin)
        response = _page(client, project["id"])
        assert response.status_code == 303 and response.headers["location"].startswith("/login")

    @pytest.mark.parametrize("who", ["annotator", "outsider"])
    def test_annotators_are_refused(
        self, who: str, request: pytest.FixtureRequest, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        project = create_project(client, admin)
        add_members(client, admin, project["id"], annotator)
        log_in(client, request.getfixturevalue(who))
        assert _page(client, project["id"]).status_code == 403
        assert _page(client, project["id"], "/plots/agreement.svg").status_code == 403

    def test_admin_sees_it_and_an_unknown_project_is_404(self, client: TestClient, admin: Persona) -> None:
        project = create_project(client, admin)
        log_in(client, admin)
        assert _page(client, project["id"]).status_code == 200
        assert _page(client, uuid.uuid4()).status_code == 404
        detail = client.get(f"/projects/{project['id']}").text
        assert f'href="/projects/{project["id"]}/agreement"' in detail


class TestDashboard:
    def test_shows_every_section_with_plots_and_download_links(
        self, client: TestClient, session: Session, admin: Persona
    ) -> None:
        project = seed_dashboard(session, admin.user, n_items=40)
        session.commit()
        log_in(client, admin)
        response = _page(client, project.id, n_boot=100)
        assert response.status_code == 200
        html = response.text
        for section in (
            "per-question",
            "by-week",
            "rater-pairs",
            "distributions",
            "leaderboard",
            "position-bias",
        ):
            assert f'id="{section}"' in html
        for name in PLOT_NAMES:
            assert f"/agreement/plots/{name}.svg?n_boot=100&amp;seed=0" in html
            assert f"/agreement/plots/{name}.csv?n_boot=100&amp;seed=0" in html
        assert html.count("<svg") >= len(PLOT_NAMES) + 3
        assert "Which response is better overall?" in html and "gpt4_1106_preview" in html
        assert "farid" in html and "2025-W10" in html
        assert " style=" not in html and "<script>" not in html.split("</head>", 1)[1]

    def test_svg_download_is_a_standalone_svg_document(
        self, client: TestClient, session: Session, admin: Persona
    ) -> None:
        project = seed_dashboard(session, admin.user, n_items=30)
        session.commit()
        log_in(client, admin)
        for name in PLOT_NAMES:
            response = _page(client, project.id, f"/plots/{name}.svg", n_boot=50)
            assert response.status_code == 200, name
            assert response.headers["content-type"].startswith("image/svg+xml")
            root = ET.fromstring(response.content)
            assert root.tag == "{http://www.w3.org/2000/svg}svg"
            assert not [e for e in root.iter() if "style" in e.attrib], name
        assert _page(client, project.id, "/plots/no-such-plot.svg").status_code == 404

    def test_csv_download_holds_the_plotted_numbers(
        self, client: TestClient, session: Session, admin: Persona
    ) -> None:
        project = seed_dashboard(session, admin.user, n_items=30)
        session.commit()
        log_in(client, admin)
        response = _page(client, project.id, "/plots/leaderboard.csv", n_boot=50)
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert {row["model"] for row in rows} == set(MODELS)
        assert all(float(row["lower"]) <= float(row["score"]) <= float(row["upper"]) for row in rows)
        week_rows = list(csv.DictReader(io.StringIO(_page(client, project.id, "/plots/by-week.csv").text)))
        assert [r["week"] for r in week_rows if r["question"] == "overall"] == [
            "2025-W10",
            "2025-W11",
            "2025-W12",
            "2025-W13",
        ]

    def test_untrusted_names_are_escaped_in_page_svg_and_csv(
        self, client: TestClient, session: Session, admin: Persona
    ) -> None:
        hostile = '<script>alert("x")</script>'
        title = {"name": "overall", "kind": "preference", "title": f"Pick {hostile}"}
        project = make_project(session, admin.user, [title])
        raters = [accounts_service.create_user(session, f"r{i}<b>", PASSWORD, "annotator") for i in range(2)]
        for k in range(4):
            item, ids = make_item(session, project, models=(f"=HYPERLINK({k})", f"{hostile}{k}"))
            for rater in raters:
                annotate(session, item, rater, {"overall": {"choice": ids[k % 2]}}, order=ids)
        session.commit()
        log_in(client, admin)
        pages = [_page(client, project.id, n_boot=20).text]
        pages += [
            _page(client, project.id, f"/plots/{n}.svg", n_boot=20).text
            for n in ("leaderboard", "rater-kappa")
        ]
        for body in pages:
            assert "<script>alert" not in body and "<b>" not in body
        assert "&lt;script&gt;" in pages[0]
        leaderboard_csv = _page(client, project.id, "/plots/leaderboard.csv", n_boot=20).text
        assert "'=HYPERLINK(" in leaderboard_csv and "\n=HYPERLINK" not in leaderboard_csv

    def test_empty_project_renders_with_messages(self, client: TestClient, admin: Persona) -> None:
        project = create_project(client, admin)
        log_in(client, admin)
        html = _page(client, project["id"]).text
        assert "No two raters share an item yet." in html
        assert "No battles between named models yet." in html


class TestProjectListGlance:
    """The project list shows admins each project's agreement and who is on an item now."""

    def test_the_glance_gives_the_first_questions_alpha_as_the_dashboard_does(
        self, client: TestClient, session: Session, admin: Persona, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(service.GLANCES, "ttl_s", 0.0)
        project = seed_dashboard(session, admin.user, n_items=40)
        session.commit()
        log_in(client, admin)
        figures = client.get(
            f"/api/v1/projects/{project.id}/agreement", params={"n_boot": 0}, headers=admin.headers
        ).json()
        overall = figures["questions"][0]
        alpha = overall["krippendorff_alpha"]["nominal"]
        html = _page(client, project.id, "/glance").text
        assert f"α nominal {alpha:.2f}" in html
        assert f"{round(overall['percent_agreement'] * 100)}% agree" in html
        assert "Which response is better overall?" in html
        assert f'href="/projects/{project.id}/agreement"' in html
        home = client.get("/").text
        assert f'hx-get="/projects/{project.id}/agreement/glance"' in home

    def test_a_project_without_answers_says_so_and_counts_raters_on_an_item(
        self,
        client: TestClient,
        admin: Persona,
        annotator: Persona,
        second_annotator: Persona,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setattr(service.GLANCES, "ttl_s", 0.0)
        project = create_project(client, admin, gold_rate=0)
        add_members(client, admin, project["id"], annotator, second_annotator)
        import_lines(client, admin, project["id"], pair_lines(3))
        for rater in (annotator, second_annotator):
            leased = client.post(f"/api/v1/projects/{project['id']}/assignments/next", headers=rater.headers)
            assert leased.status_code == 200
        log_in(client, admin)
        assert "agreement: not yet" in _page(client, project["id"], "/glance").text
        assert "Raters on an item now: 2" in client.get("/").text

    def test_annotators_see_neither(self, client: TestClient, admin: Persona, annotator: Persona) -> None:
        project = create_project(client, admin)
        add_members(client, admin, project["id"], annotator)
        log_in(client, annotator)
        home = client.get("/").text
        assert project["name"] in home
        assert "Raters on an item now" not in home and "/agreement/glance" not in home
        assert _page(client, project["id"], "/glance").status_code == 403


@pytest.mark.browser
def test_dashboard_in_chromium_draws_every_plot_without_errors(live_server, page) -> None:  # type: ignore[no-untyped-def]
    sessions: sessionmaker[Session] = live_server.sessions
    with sessions() as session:
        boss = accounts_service.create_user(session, "chief", PASSWORD, "admin")
        project = seed_dashboard(session, boss, n_items=60)
        session.commit()
        project_id = project.id
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    # The browser asks for /favicon.ico on its own, which the app does not serve.
    page.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    page.goto(f"{live_server.url}/login")
    page.fill("input[name=username]", "chief")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url(lambda url: "/login" not in url)
    page.goto(f"{live_server.url}/projects/{project_id}/agreement?n_boot=200")
    assert page.locator("h1").first.inner_text().startswith("Agreement")
    for name in PLOT_NAMES:
        plot = page.locator(f"#plot-{name} svg")
        assert plot.is_visible(), name
        box = plot.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 40, name
    assert page.locator("#plot-rater-kappa svg rect.cell").count() > 10
    download = page.request.get(f"{live_server.url}/projects/{project_id}/agreement/plots/by-week.svg")
    assert download.ok and download.headers["content-type"].startswith("image/svg+xml")
    # Failed loads and Content-Security-Policy violations both surface as console errors.
    assert errors == []
