"""The quality, rater and training-set pages: what admins see, forms with CSRF, and who is turned away."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.projects.models import Project, ProjectMembership
from app.training.models import RaterExclusion
from tests.factories import PASSWORD, Persona, add_members, create_project, import_lines
from tests.training.helpers import (
    always_first,
    honest,
    judged_lines,
    next_assignment,
    submit,
    work,
    wrong,
)

STYLE_ATTRIBUTE = re.compile(r"<[^>]+\sstyle\s*=", re.IGNORECASE)


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def _log_in(client: TestClient, persona: Persona) -> None:
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"username": persona.user.username, "password": PASSWORD, "csrf_token": _csrf(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def _project(client: TestClient, admin: Persona, *members: Persona, **settings: Any) -> str:
    body = {"gold_rate": 0, "annotations_per_item": 3, **settings}
    project_id = str(create_project(client, admin, **body)["id"])
    add_members(client, admin, project_id, *members)
    import_lines(client, admin, project_id, judged_lines(3, prefix="train", gold=True), purpose="training")
    import_lines(client, admin, project_id, judged_lines(6, prefix="live"))
    return project_id


# Each page and a text only that page shows.
PAGES = {"quality": "How raters are flagged", "training": "Training items", "raters/{user}": "Gold mistakes"}


def _url(project_id: str, page: str, user: Persona) -> str:
    return f"/projects/{project_id}/" + page.format(user=user.id)


class TestWhoMaySee:
    @pytest.mark.parametrize("page", PAGES)
    def test_admin_sees_the_page(
        self, client: TestClient, admin: Persona, annotator: Persona, page: str
    ) -> None:
        project_id = _project(client, admin, annotator)
        _log_in(client, admin)
        response = client.get(_url(project_id, page, annotator))
        assert response.status_code == 200
        assert PAGES[page] in response.text

    @pytest.mark.parametrize("page", PAGES)
    def test_anonymous_is_sent_to_log_in(
        self, client: TestClient, admin: Persona, annotator: Persona, page: str
    ) -> None:
        project_id = _project(client, admin, annotator)
        response = client.get(_url(project_id, page, annotator), follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")

    @pytest.mark.parametrize("page", PAGES)
    def test_raters_are_turned_away_without_seeing_models(
        self, client: TestClient, admin: Persona, annotator: Persona, outsider: Persona, page: str
    ) -> None:
        project_id = _project(client, admin, annotator)
        work(client, annotator, project_id, honest)
        for persona in (annotator, outsider):
            _log_in(client, persona)
            response = client.get(_url(project_id, page, annotator))
            assert response.status_code == 403
            assert "model-alpha" not in response.text and "Good answer" not in response.text

    def test_unknown_project_and_non_member_are_404(
        self, client: TestClient, admin: Persona, annotator: Persona, outsider: Persona
    ) -> None:
        project_id = _project(client, admin, annotator)
        _log_in(client, admin)
        assert client.get("/projects/00000000-0000-0000-0000-000000000000/quality").status_code == 404
        assert client.get(f"/projects/{project_id}/raters/{outsider.id}").status_code == 404


class TestQualityPage:
    def test_table_shows_signals_flag_reasons_and_plots_without_style_attributes(
        self, client: TestClient, admin: Persona, annotator: Persona, second_annotator: Persona
    ) -> None:
        project_id = _project(client, admin, annotator, second_annotator, annotations_per_item=2)
        import_lines(client, admin, project_id, judged_lines(20, prefix="more"))
        work(client, annotator, project_id, always_first)
        work(client, second_annotator, project_id, honest)
        _log_in(client, admin)
        html = client.get(f"/projects/{project_id}/quality").text
        assert "Suspected low quality:" in html
        assert "chose the response shown first in 100% of 26 answers" in html
        assert html.count('class="bias-plot"') == 2
        assert STYLE_ATTRIBUTE.search(html) is None
        assert "<script" not in html.split("</head>")[1]
        assert "model-alpha" not in html and "model-beta" not in html
        flagged_row = html.index('id="rater-' + str(annotator.id))
        assert flagged_row < html.index('id="rater-' + str(second_annotator.id))

    def test_sorting_by_name_in_both_directions(
        self, client: TestClient, admin: Persona, annotator: Persona, second_annotator: Persona
    ) -> None:
        project_id = _project(client, admin, annotator, second_annotator)
        _log_in(client, admin)
        up = client.get(f"/projects/{project_id}/quality", params={"sort": "rater", "dir": "asc"}).text
        down = client.get(f"/projects/{project_id}/quality", params={"sort": "rater", "dir": "desc"}).text
        assert up.index(f"rater-{annotator.id}") < up.index(f"rater-{second_annotator.id}")
        assert down.index(f"rater-{annotator.id}") > down.index(f"rater-{second_annotator.id}")
        assert 'href="?sort=rater&amp;dir=desc"' in up
        assert 'aria-sort="ascending"' in up

    def test_exclude_needs_the_csrf_token_and_include_undoes_it(
        self, client: TestClient, session: Session, admin: Persona, annotator: Persona
    ) -> None:
        project_id = _project(client, admin, annotator)
        _log_in(client, admin)
        token = _csrf(client.get(f"/projects/{project_id}/quality").text)
        url = f"/projects/{project_id}/raters/{annotator.id}"
        refused = client.post(f"{url}/exclude", data={"reason": "test"}, follow_redirects=False)
        assert refused.status_code == 403
        forged = client.post(f"{url}/exclude", data={"csrf_token": "x" * 40}, follow_redirects=False)
        assert forged.status_code == 403
        assert session.scalars(sa.select(RaterExclusion)).all() == []
        done = client.post(f"{url}/exclude", data={"csrf_token": token}, follow_redirects=False)
        assert done.status_code == 303
        assert done.headers["location"] == f"/projects/{project_id}/quality#rater-{annotator.id}"
        page = client.get(f"/projects/{project_id}/quality").text
        assert ">excluded</span>" in page and f"{url}/include" in page
        back = client.post(
            f"{url}/include", data={"csrf_token": token, "back": "rater"}, follow_redirects=False
        )
        assert back.headers["location"] == url
        membership = session.scalar(
            sa.select(ProjectMembership).where(ProjectMembership.user_id == annotator.id)
        )
        assert membership is not None
        session.refresh(membership)
        assert membership.excluded_at is None
        actions = session.scalars(sa.select(RaterExclusion.action).order_by(RaterExclusion.created_at)).all()
        assert actions == ["exclude", "include"]

    def test_retrain_button_sends_the_rater_back_to_training(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        project_id = _project(client, admin, annotator, require_qualification=True)
        work(client, annotator, project_id, honest, limit=3)
        assert next_assignment(client, annotator, project_id).json()["training"] is False
        _log_in(client, admin)
        token = _csrf(client.get(f"/projects/{project_id}/quality").text)
        reset = client.post(
            f"/projects/{project_id}/raters/{annotator.id}/reset-qualification",
            data={"csrf_token": token},
            follow_redirects=False,
        )
        assert reset.status_code == 303
        # The live lease handed out above is still the rater's; the one after it is training again.
        lease = next_assignment(client, annotator, project_id).json()
        submit(client, annotator, lease, honest(lease))
        assert next_assignment(client, annotator, project_id).json()["training"] is True


class TestRaterPage:
    def test_history_mistakes_attempts_and_guidelines_versions(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        project_id = _project(
            client, admin, annotator, require_qualification=True, qualification_threshold=0.5
        )
        work(client, annotator, project_id, wrong, limit=1)
        work(client, annotator, project_id, honest, limit=3)
        client.patch(
            f"/api/v1/projects/{project_id}", json={"guidelines": "Prefer sources."}, headers=admin.headers
        )
        work(client, annotator, project_id, honest, limit=1)
        client.post(
            f"/api/v1/projects/{project_id}/raters/{annotator.id}/exclude",
            json={"reason": "checking <b>bold</b>"},
            headers=admin.headers,
        )
        _log_in(client, admin)
        html = client.get(f"/projects/{project_id}/raters/{annotator.id}").text
        mistakes = html[html.index('id="mistakes"') : html.index('id="history"')]
        assert "train-" in mistakes and "B is correct" in mistakes
        assert "A is better" in mistakes and "B is better" in mistakes
        history = html[html.index('id="history"') : html.index('id="exclusions"')]
        assert "v1" in history and "v2" in history
        assert history.split("<tbody>")[1].count("<tr>") == 5
        attempts = html[html.index('id="attempts"') : html.index('id="mistakes"')]
        assert "passed" in attempts and "67%" in attempts
        exclusions = html[html.index('id="exclusions"') :]
        assert "checking &lt;b&gt;bold&lt;/b&gt;" in exclusions and "admin" in exclusions
        assert "model-alpha" not in html


class TestTrainingPage:
    def test_lists_training_items_with_gold_in_words_and_escapes_explanations(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        project_id = _project(client, admin, annotator)
        lines = judged_lines(1, prefix="risky", gold=True, explanation="<script>alert(1)</script>")
        import_lines(client, admin, project_id, lines)
        _log_in(client, admin)
        html = client.get(f"/projects/{project_id}/training").text
        training = html[html.index('id="training-items"') : html.index('id="gold-items"')]
        assert training.count("B is better</strong>") == 3
        gold = html[html.index('id="gold-items"') :]
        assert "risky-0" in gold and "&lt;script&gt;alert(1)&lt;/script&gt;" in gold
        assert "<script>alert" not in html
        assert "purpose=training" in html

    def test_training_set_is_uploaded_from_the_page_with_a_dry_run_first(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        project_id = _project(client, admin, annotator)
        _log_in(client, admin)
        page = client.get(f"/projects/{project_id}/training").text
        form = page[
            page.index('id="training-import-result"') - 900 : page.index('id="training-import-result"')
        ]
        assert 'name="purpose" value="training"' in form and 'type="file"' in form
        lines = judged_lines(2, prefix="uploaded", gold=True)
        files = {"file": ("training.jsonl", "\n".join(json.dumps(x) for x in lines).encode(), "text/plain")}

        def training_total() -> int:
            listed = client.get(
                f"/api/v1/projects/{project_id}/items",
                params={"purpose": "training", "limit": 1},
                headers=admin.headers,
            )
            return int(listed.json()["total"])

        data = {"csrf_token": _csrf(page), "purpose": "training"}
        dry = client.post(f"/projects/{project_id}/import", data={**data, "dry_run": "1"}, files=files)
        assert dry.status_code == 200 and "Dry run" in dry.text
        assert training_total() == 3
        real = client.post(f"/projects/{project_id}/import", data=data, files=files)
        assert real.status_code == 200 and "Created" in real.text
        assert training_total() == 5
        html = client.get(f"/projects/{project_id}/training").text
        training = html[html.index('id="training-items"') : html.index('id="gold-items"')]
        assert "uploaded-0" in training and "uploaded-1" in training
        bad = client.post(f"/projects/{project_id}/import", data={**data, "purpose": "gold"}, files=files)
        assert bad.status_code == 422

    def test_gold_form_changes_the_answer_and_explanation(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        project_id = _project(client, admin, annotator)
        items = client.get(
            f"/api/v1/projects/{project_id}/items", params={"purpose": "training"}, headers=admin.headers
        ).json()["items"]
        item = items[0]
        _log_in(client, admin)
        token = _csrf(client.get(f"/projects/{project_id}/training").text)
        form = {
            "csrf_token": token,
            "q.overall": "A",
            "q.overall.strength": "3",
            "explanation": "A is safer.",
        }
        response = client.post(
            f"/projects/{project_id}/training/items/{item['id']}/gold", data=form, follow_redirects=False
        )
        assert response.status_code == 303
        after = client.get(
            f"/api/v1/projects/{project_id}/items", params={"purpose": "training"}, headers=admin.headers
        )
        changed = next(i for i in after.json()["items"] if i["id"] == item["id"])
        first_response = next(r["id"] for r in item["responses"] if r["position"] == 0)
        assert changed["gold"] == {
            "answers": {"overall": {"choice": first_response, "strength": 3}},
            "explanation": "A is safer.",
        }

    def test_invalid_gold_is_refused_with_the_reason_and_nothing_changes(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        project_id = _project(client, admin, annotator)
        url = f"/api/v1/projects/{project_id}/items"
        item = client.get(url, params={"purpose": "training"}, headers=admin.headers).json()["items"][0]
        _log_in(client, admin)
        token = _csrf(client.get(f"/projects/{project_id}/training").text)
        form = {"csrf_token": token, "q.overall": "B", "q.helpfulness.A": "9", "explanation": "changed"}
        response = client.post(f"/projects/{project_id}/training/items/{item['id']}/gold", data=form)
        assert response.status_code == 422
        assert "The gold answer was not saved" in response.text and "helpfulness" in response.text
        again = client.get(url, params={"purpose": "training"}, headers=admin.headers).json()["items"][0]
        assert again["gold"] == item["gold"]

    def test_settings_form_saves_and_refuses_out_of_range_values(
        self, client: TestClient, session: Session, admin: Persona, annotator: Persona
    ) -> None:
        project_id = _project(client, admin, annotator)
        _log_in(client, admin)
        token = _csrf(client.get(f"/projects/{project_id}/training").text)
        form = {
            "csrf_token": token,
            "require_qualification": "1",
            "qualification_threshold": "90",
            "qualification_cooldown_minutes": "15",
            "gold_rate": "10",
            "gold_min_answers": "8",
            "gold_pause_threshold": "65",
            "min_seconds_per_item": "3",
        }
        url = f"/projects/{project_id}/training/settings"
        assert client.post(url, data=form, follow_redirects=False).status_code == 303
        project = session.get(Project, uuid.UUID(project_id))
        assert project is not None
        session.refresh(project)
        assert project.require_qualification is True
        assert project.qualification_threshold == pytest.approx(0.9) and project.gold_rate == pytest.approx(
            0.1
        )
        assert project.qualification_cooldown_minutes == 15 and project.gold_min_answers == 8
        refused = client.post(url, data={**form, "gold_rate": "80", "require_qualification": ""})
        assert refused.status_code == 422
        assert "Must be at most 50%." in refused.text and 'value="80"' in refused.text
        session.refresh(project)
        assert project.gold_rate == pytest.approx(0.1) and project.require_qualification is True


# --- In real Chromium, with a team of simulated raters ----------------------------------------------------


def _seed_team(live_server: Any) -> tuple[Any, dict[str, Any]]:
    """A project where three honest raters, a random clicker, a first-picker, a rusher and a straight-liner worked."""
    import random
    from datetime import timedelta

    from app.annotation import service as annotation_service
    from app.annotation.models import Annotation
    from app.annotation.schemas import AnnotationSubmit
    from app.items import service as items_service
    from app.training import service as training_service
    from tests.training.helpers import GOOD
    from tests.ui_helpers import seed_project

    names = ("honest_ana", "honest_ben", "honest_cai", "clicker", "first_picker", "rusher", "same_scorer")
    lines = judged_lines(20, prefix="left", good_position=0) + judged_lines(
        20, prefix="right", good_position=1
    )
    project, users = seed_project(
        live_server.sessions,
        lines,
        usernames=names,
        annotations_per_item=7,
        gold_rate=0.15,
        gold_min_answers=4,
        gold_pause_threshold=0.34,
        require_qualification=True,
        qualification_threshold=0.3,
    )
    rng = random.Random(4)
    people = dict(zip(names, users, strict=True))

    def answer(name: str, leased: Any) -> AnnotationSubmit:
        shown = [str(r.id) for r in leased.responses]
        good = next(str(r.id) for r in leased.responses if r.text.startswith(GOOD))
        # Everyone passes training (a careless rater can get 0 of 3 by chance and never reach the live
        # queue); the careless habits show on live and gold items.
        choice = (
            good
            if leased.training
            else {"clicker": rng.choice(shown), "first_picker": shown[0]}.get(name, good)
        )
        scores = {rid: (6 if rid == choice else 3) for rid in shown}
        if name == "same_scorer":
            scores = {rid: 4 for rid in shown}
        seconds = 1.5 if name == "rusher" else rng.uniform(6, 40)
        return AnnotationSubmit(
            answers={"overall": {"choice": choice}, "helpfulness": scores}, time_spent_ms=int(seconds * 1000)
        )

    with live_server.sessions() as session:
        admin = session.scalar(sa.select(type(users[0])).where(type(users[0]).username == "boss"))
        items_service.import_items(
            session,
            project,
            enumerate(judged_lines(3, prefix="train", gold=True), 1),
            admin,
            options=items_service.import_options(project),
            purpose="training",
        )
        items_service.import_items(
            session,
            project,
            enumerate(judged_lines(10, prefix="gold", gold=True), 1),
            admin,
            options=items_service.import_options(project),
        )
        active = list(names)
        while active:
            for name in list(active):
                leased = annotation_service.next_assignment(session, project.id, people[name])
                if leased is None:
                    active.remove(name)
                    continue
                annotation_service.submit_annotation(
                    session, leased.assignment.id, people[name], answer(name, leased)
                )
        # Spread the work over the last two weeks, so the volume bars have something to show; qualification
        # moves back with it, as gold accuracy counts from the latest qualification on.
        for annotation in session.scalars(sa.select(Annotation).where(Annotation.project_id == project.id)):
            annotation.created_at = annotation.created_at - timedelta(
                days=rng.randrange(14), hours=rng.randrange(8)
            )
        for membership in session.scalars(
            sa.select(ProjectMembership).where(ProjectMembership.project_id == project.id)
        ):
            if membership.qualified_at is not None:
                membership.qualified_at = membership.qualified_at - timedelta(days=15)
        training_service.set_exclusion(
            session, project, people["same_scorer"].id, admin, exclude=True, reason="gave every answer a 4"
        )
        session.commit()
    return project, people


@pytest.mark.browser
def test_quality_page_in_chromium(live_server, page, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import os
    import random
    from pathlib import Path

    from tests.ui_helpers import log_in

    monkeypatch.setattr("app.annotation.service._shuffle", random.Random(2).shuffle)
    monkeypatch.setattr("app.training.service._random", random.Random(3))
    project, people = _seed_team(live_server)
    out = Path(os.environ.get("PREFHUB_SCREENSHOT_DIR", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    blocked: list[str] = []
    page.on(
        "console",
        lambda message: blocked.append(message.text) if "Content Security Policy" in message.text else None,
    )
    log_in(page, live_server.url, "boss")
    page.goto(f"{live_server.url}/projects/{project.id}/quality")
    page.screenshot(path=str(out / "quality.png"), full_page=True)
    assert page.locator("svg.bias-plot").count() == len(people)
    # Flagged raters come first; the always-first rater's dot sits at the right end, in the warning colour.
    assert page.locator("tbody tr").first.get_attribute("class") == "flagged"
    first_picker = page.locator(f"#rater-{people['first_picker'].id}")
    reasons = page.locator("tr.flag-reasons").all_inner_texts()
    assert any("chose the response shown first in 100%" in text for text in reasons)
    assert first_picker.locator("svg.bias-plot circle").get_attribute("fill") == "#b1261a"
    page.get_by_role("link", name="Rater", exact=True).click()
    page.wait_for_url(lambda url: "sort=rater" in url)
    assert page.locator("tbody tr").first.inner_text().startswith("clicker")
    page.goto(f"{live_server.url}/projects/{project.id}/raters/{people['first_picker'].id}")
    page.screenshot(path=str(out / "rater.png"), full_page=True)
    page.goto(f"{live_server.url}/projects/{project.id}/training")
    page.locator("#gold-items summary").first.click()
    page.screenshot(path=str(out / "training.png"), full_page=True)
    page.goto(f"{live_server.url}/projects/{project.id}/quality")
    row = page.locator(f"#rater-{people['rusher'].id}")
    row.get_by_role("button", name="Exclude").click()
    page.wait_for_load_state()
    assert "excluded" in page.locator(f"#rater-{people['rusher'].id}").inner_text()
    assert blocked == []
