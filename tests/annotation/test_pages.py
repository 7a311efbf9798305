"""The annotate page, its htmx fragments and past annotations, through the HTML routes."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.annotation.models import Annotation, Assignment
from app.projects.models import ProjectMembership
from tests.factories import PASSWORD, Persona, add_members, create_project, import_lines, pair_lines

HTMX = {"HX-Request": "true"}
_CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
_ASSIGNMENT_RE = re.compile(r'id="workspace"[^>]*data-assignment-id="([^"]+)"', re.S)
_KEY_RE = re.compile(r'name="idempotency_key" value="([^"]+)"')
_CHOICE_RE = re.compile(r'name="q\.overall\.choice" value="([^"]+)" data-choice-index="(\d)"')


def log_in(client: TestClient, persona: Persona) -> None:
    token = _CSRF_RE.search(client.get("/login").text)
    assert token is not None
    response = client.post(
        "/login",
        data={"username": persona.user.username, "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


class Workspace:
    """What a rater's browser would read off the annotate page or fragment."""

    def __init__(self, html: str) -> None:
        self.html = html
        found = _ASSIGNMENT_RE.search(html)
        self.assignment_id = found.group(1) if found else None
        csrf = _CSRF_RE.search(html)
        self.csrf = csrf.group(1) if csrf else None
        key = _KEY_RE.search(html)
        self.idempotency_key = key.group(1) if key else None
        # Response ids in screen order: A first.
        self.response_ids = [rid for rid, _ in sorted(_CHOICE_RE.findall(html), key=lambda pair: pair[1])]

    def form(self, **fields: Any) -> dict[str, Any]:
        return {"csrf_token": self.csrf, "idempotency_key": self.idempotency_key, **fields}


def setup_project(
    client: TestClient,
    admin: Persona,
    *members: Persona,
    lines: list[dict[str, Any]] | None = None,
    **settings: Any,
) -> str:
    project = create_project(client, admin, gold_rate=0, **settings)
    add_members(client, admin, project["id"], *members)
    import_lines(client, admin, project["id"], lines if lines is not None else pair_lines(3))
    return str(project["id"])


def open_workspace(client: TestClient, project_id: str) -> Workspace:
    response = client.get(f"/projects/{project_id}/annotate")
    assert response.status_code == 200, response.text
    return Workspace(response.text)


def annotations_of(session: Session, persona: Persona) -> list[Annotation]:
    session.expire_all()
    return list(session.scalars(sa.select(Annotation).where(Annotation.user_id == persona.id)))


class TestAnnotatePage:
    def test_shows_responses_as_sanitised_html_and_never_model_names(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        hostile = {
            "prompt": "Say **hello**",
            "responses": [
                {"text": "<script>alert(1)</script> plain", "model": "secret-model-alpha"},
                {"text": "<img src=x onerror=alert(1)> `code`", "model": "secret-model-beta"},
            ],
            "metadata": {"note": "hidden-metadata-value"},
        }
        project_id = setup_project(client, admin, annotator, lines=[hostile])
        log_in(client, annotator)
        html = open_workspace(client, project_id).html
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "<img" not in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html
        assert "<strong>hello</strong>" in html and "<code>code</code>" in html
        for secret in ("secret-model-alpha", "secret-model-beta", "hidden-metadata-value"):
            assert secret not in html

    def test_labels_responses_by_screen_position_with_keys(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        project_id = setup_project(client, admin, annotator)
        log_in(client, annotator)
        workspace = open_workspace(client, project_id)
        assert len(workspace.response_ids) == 2
        assert "A is better" in workspace.html and "B is better" in workspace.html
        assert "<kbd>Enter</kbd>" in workspace.html and "<kbd>s</kbd>" in workspace.html
        assert 'id="rater-stats"' in workspace.html and "0 done today" in workspace.html

    def test_reload_shows_the_same_assignment(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        project_id = setup_project(client, admin, annotator)
        log_in(client, annotator)
        first = open_workspace(client, project_id)
        again = open_workspace(client, project_id)
        assert first.assignment_id == again.assignment_id
        assert first.response_ids == again.response_ids

    def test_outsider_gets_404(
        self, client: TestClient, admin: Persona, annotator: Persona, outsider: Persona
    ) -> None:
        project_id = setup_project(client, admin, annotator)
        log_in(client, outsider)
        assert client.get(f"/projects/{project_id}/annotate").status_code == 404

    def test_unknown_project_gets_404(self, client: TestClient, annotator: Persona) -> None:
        log_in(client, annotator)
        assert client.get(f"/projects/{uuid.uuid4()}/annotate").status_code == 404

    def test_anonymous_is_sent_to_login(self, client: TestClient, admin: Persona, annotator: Persona) -> None:
        project_id = setup_project(client, admin, annotator)
        response = client.get(f"/projects/{project_id}/annotate", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")

    def test_empty_queue_says_nothing_is_left(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        project_id = setup_project(client, admin, annotator, lines=[])
        log_in(client, annotator)
        response = client.get(f"/projects/{project_id}/annotate")
        assert response.status_code == 200
        assert "Nothing for you right now" in response.text
        assert 'data-view="idle"' in response.text

    def test_paused_rater_is_told_so(
        self, client: TestClient, session: Session, admin: Persona, annotator: Persona
    ) -> None:
        project_id = setup_project(client, admin, annotator)
        session.execute(
            sa.update(ProjectMembership)
            .where(ProjectMembership.user_id == annotator.id)
            .values(status="paused", paused_reason="gold accuracy 2/10 is below 70%")
        )
        session.commit()
        log_in(client, annotator)
        html = client.get(f"/projects/{project_id}/annotate").text
        assert "Your work on this project is paused" in html and "gold accuracy 2/10" in html

    def test_htmx_request_gets_the_fragment_only(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        project_id = setup_project(client, admin, annotator)
        log_in(client, annotator)
        response = client.get(f"/projects/{project_id}/annotate", headers=HTMX)
        assert response.status_code == 200
        assert "<html" not in response.text
        assert response.text.lstrip().startswith('<section id="workspace"')
        assert 'hx-swap-oob="true"' in response.text


class TestGuidelines:
    def test_banner_names_versions_and_seen_post_clears_it(
        self, client: TestClient, session: Session, admin: Persona, annotator: Persona
    ) -> None:
        project_id = setup_project(client, admin, annotator, guidelines="Prefer **honest** answers.")
        session.execute(
            sa.update(ProjectMembership)
            .where(ProjectMembership.user_id == annotator.id)
            .values(last_seen_guidelines_version=1)
        )
        session.commit()
        changed = client.patch(
            f"/api/v1/projects/{project_id}",
            json={"guidelines": "Prefer **short** answers."},
            headers=admin.headers,
        )
        assert changed.status_code == 200, changed.text
        log_in(client, annotator)
        page = open_workspace(client, project_id)
        assert "Guidelines updated since your last visit (v1 → v2)" in page.html
        assert "<strong>short</strong>" in page.html and "<strong>honest</strong>" in page.html
        seen = client.post(
            f"/projects/{project_id}/annotate/guidelines-seen", headers={"X-CSRF-Token": page.csrf}
        )
        assert seen.status_code == 204
        assert "Guidelines updated" not in open_workspace(client, project_id).html


class TestSubmit:
    def test_htmx_submit_returns_the_next_item_fragment(
        self, client: TestClient, session: Session, admin: Persona, annotator: Persona
    ) -> None:
        project_id = setup_project(client, admin, annotator)
        log_in(client, annotator)
        workspace = open_workspace(client, project_id)
        chosen = workspace.response_ids[1]
        response = client.post(
            f"/projects/{project_id}/annotate/{workspace.assignment_id}",
            data=workspace.form(
                **{"q.overall.choice": chosen, "q.overall.strength": "3", "time_spent_ms": "4200"}
            ),
            headers=HTMX,
        )
        assert response.status_code == 200, response.text
        following = Workspace(response.text)
        assert following.assignment_id not in (None, workspace.assignment_id)
        assert f'data-completed="{workspace.assignment_id}"' in response.text
        assert "1 done today" in response.text
        [annotation] = annotations_of(session, annotator)
        assert annotation.answers["overall"] == {"choice": chosen, "strength": 3}
        assert annotation.time_spent_ms == 4200

    def test_plain_form_post_redirects_back(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        project_id = setup_project(client, admin, annotator)
        log_in(client, annotator)
        workspace = open_workspace(client, project_id)
        response = client.post(
            f"/projects/{project_id}/annotate/{workspace.assignment_id}",
            data=workspace.form(**{"q.overall.choice": "tie"}),
            follow_redirects=False,
        )
        assert response.status_code == 303
        assert response.headers["location"] == f"/projects/{project_id}/annotate"

    def test_invalid_answers_give_422_with_the_answers_kept(
        self, client: TestClient, session: Session, admin: Persona, annotator: Persona
    ) -> None:
        project_id = setup_project(client, admin, annotator)
        log_in(client, annotator)
        workspace = open_workspace(client, project_id)
        first = workspace.response_ids[0]
        fields = {
            f"q.helpfulness.score.{first}": "6",
            "q.rationale": "A explains the steps <b>better</b>",
            "flags": "pii",
        }
        response = client.post(
            f"/projects/{project_id}/annotate/{workspace.assignment_id}",
            data=workspace.form(**fields),
            headers=HTMX,
        )
        assert response.status_code == 422
        html = response.text
        assert Workspace(html).assignment_id == workspace.assignment_id
        assert "an answer is required" in html
        assert "every response must be scored" in html
        assert f'name="q.helpfulness.score.{first}" value="6" checked' in html
        assert "A explains the steps &lt;b&gt;better&lt;/b&gt;</textarea>" in html
        assert 'name="flags" value="pii" checked' in html
        assert annotations_of(session, annotator) == []

    def test_without_javascript_refusals_and_conflicts_are_whole_pages(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        project_id = setup_project(client, admin, annotator)
        log_in(client, annotator)
        workspace = open_workspace(client, project_id)
        url = f"/projects/{project_id}/annotate/{workspace.assignment_id}"
        refused = client.post(url, data=workspace.form(**{"q.why": "nothing chosen"}))
        assert refused.status_code == 422
        assert "<html" in refused.text and "an answer is required" in refused.text
        client.post(url, data=workspace.form(**{"q.overall.choice": "tie"}), follow_redirects=False)
        conflict = client.post(url, data=workspace.form(**{"q.overall.choice": "both_bad"}))
        assert conflict.status_code == 409
        assert "<html" in conflict.text and f'href="/projects/{project_id}/annotate"' in conflict.text

    def test_submit_without_csrf_token_is_refused(
        self, client: TestClient, session: Session, admin: Persona, annotator: Persona
    ) -> None:
        project_id = setup_project(client, admin, annotator)
        log_in(client, annotator)
        workspace = open_workspace(client, project_id)
        data = workspace.form(**{"q.overall.choice": "tie"})
        del data["csrf_token"]
        response = client.post(f"/projects/{project_id}/annotate/{workspace.assignment_id}", data=data)
        assert response.status_code == 403
        assert annotations_of(session, annotator) == []

    def test_double_submit_gives_one_annotation(
        self, client: TestClient, session: Session, admin: Persona, annotator: Persona
    ) -> None:
        project_id = setup_project(client, admin, annotator)
        log_in(client, annotator)
        workspace = open_workspace(client, project_id)
        data = workspace.form(**{"q.overall.choice": workspace.response_ids[0], "time_spent_ms": "900"})
        url = f"/projects/{project_id}/annotate/{workspace.assignment_id}"
        assert client.post(url, data=data, headers=HTMX).status_code == 200
        assert client.post(url, data=data, headers=HTMX).status_code == 200
        assert len(annotations_of(session, annotator)) == 1

    def test_changed_resubmit_is_a_conflict_with_a_next_button(
        self, client: TestClient, session: Session, admin: Persona, annotator: Persona
    ) -> None:
        project_id = setup_project(client, admin, annotator)
        log_in(client, annotator)
        workspace = open_workspace(client, project_id)
        url = f"/projects/{project_id}/annotate/{workspace.assignment_id}"
        client.post(url, data=workspace.form(**{"q.overall.choice": "tie"}), headers=HTMX)
        response = client.post(url, data=workspace.form(**{"q.overall.choice": "both_bad"}), headers=HTMX)
        assert response.status_code == 409
        assert 'data-action="next"' in response.text
        assert f'hx-get="/projects/{project_id}/annotate"' in response.text
        [annotation] = annotations_of(session, annotator)
        assert annotation.answers["overall"] == {"choice": "tie"}

    def test_someone_elses_assignment_is_404(
        self, client: TestClient, admin: Persona, annotator: Persona, second_annotator: Persona
    ) -> None:
        project_id = setup_project(client, admin, annotator, second_annotator)
        log_in(client, annotator)
        theirs = open_workspace(client, project_id)
        client.post("/logout", data={"csrf_token": theirs.csrf})
        log_in(client, second_annotator)
        mine = open_workspace(client, project_id)
        response = client.post(
            f"/projects/{project_id}/annotate/{theirs.assignment_id}",
            data=mine.form(**{"q.overall.choice": "tie"}),
            headers=HTMX,
        )
        assert response.status_code == 404


class TestTrainingFeedback:
    def test_training_item_answer_shows_expected_answer_in_screen_terms(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        project = create_project(client, admin, gold_rate=0, require_qualification=True)
        project_id = str(project["id"])
        add_members(client, admin, project_id, annotator)
        training = [
            {
                "external_id": f"train-{i}",
                "prompt": f"Training question {i}?",
                "responses": [f"Correct answer {i}", f"Wrong answer {i}"],
                "gold": {"answers": {"overall": {"choice": 0}}, "explanation": "The first one is *right*."},
            }
            for i in range(2)
        ]
        import_lines(client, admin, project_id, training, purpose="training")
        import_lines(client, admin, project_id, pair_lines(2))
        log_in(client, annotator)
        workspace = open_workspace(client, project_id)
        assert "Training item" in workspace.html
        response = client.post(
            f"/projects/{project_id}/annotate/{workspace.assignment_id}",
            data=workspace.form(**{"q.overall.choice": "tie"}),
            headers=HTMX,
        )
        assert response.status_code == 200, response.text
        html = response.text
        assert 'data-view="feedback"' in html
        assert "Not the expected answer" in html
        assert "tie: neither is better" in html
        assert re.search(r"<strong>[AB] is better</strong>", html)
        assert "The first one is <em>right</em>." in html
        assert 'data-action="next"' in html


class TestSkip:
    def test_skip_records_the_reason_and_returns_the_next_item(
        self, client: TestClient, session: Session, admin: Persona, annotator: Persona
    ) -> None:
        project_id = setup_project(client, admin, annotator)
        log_in(client, annotator)
        workspace = open_workspace(client, project_id)
        response = client.post(
            f"/projects/{project_id}/annotate/{workspace.assignment_id}/skip",
            data=workspace.form(reason="needs_expertise"),
            headers=HTMX,
        )
        assert response.status_code == 200
        assert Workspace(response.text).assignment_id not in (None, workspace.assignment_id)
        session.expire_all()
        skipped = session.get_one(Assignment, uuid.UUID(workspace.assignment_id))
        assert (skipped.status, skipped.skip_reason) == ("skipped", "needs_expertise")

    def test_unknown_reason_is_refused(self, client: TestClient, admin: Persona, annotator: Persona) -> None:
        project_id = setup_project(client, admin, annotator)
        log_in(client, annotator)
        workspace = open_workspace(client, project_id)
        response = client.post(
            f"/projects/{project_id}/annotate/{workspace.assignment_id}/skip",
            data=workspace.form(reason="bored"),
        )
        assert response.status_code == 422


class TestPastAnnotation:
    def _annotate(self, client: TestClient, project_id: str) -> tuple[Workspace, str]:
        workspace = open_workspace(client, project_id)
        client.post(
            f"/projects/{project_id}/annotate/{workspace.assignment_id}",
            data=workspace.form(**{"q.overall.choice": workspace.response_ids[0], "q.overall.strength": "2"}),
            headers=HTMX,
        )
        return workspace, workspace.response_ids[0]

    def test_shows_answers_in_screen_terms_and_corrects_them(
        self, client: TestClient, session: Session, admin: Persona, annotator: Persona
    ) -> None:
        project_id = setup_project(client, admin, annotator)
        log_in(client, annotator)
        workspace, _ = self._annotate(client, project_id)
        [annotation] = annotations_of(session, annotator)
        page = client.get(f"/annotations/{annotation.id}")
        assert page.status_code == 200
        assert "A is better (slightly better)" in page.text
        assert "Revision 1" in page.text
        assert (
            f'name="q.overall.choice" value="{workspace.response_ids[0]}" data-choice-index="1" checked'
            in page.text
        )
        corrected = client.post(
            f"/annotations/{annotation.id}",
            data={"csrf_token": workspace.csrf, "q.overall.choice": workspace.response_ids[1]},
            follow_redirects=False,
        )
        assert corrected.status_code == 303
        after = client.get(corrected.headers["location"])
        assert "Revision 2" in after.text and "B is better" in after.text

    def test_invalid_correction_is_422_and_changes_nothing(
        self, client: TestClient, session: Session, admin: Persona, annotator: Persona
    ) -> None:
        project_id = setup_project(client, admin, annotator)
        log_in(client, annotator)
        workspace, chosen = self._annotate(client, project_id)
        [annotation] = annotations_of(session, annotator)
        response = client.post(
            f"/annotations/{annotation.id}",
            data={"csrf_token": workspace.csrf, "q.overall.choice": "tie", "q.overall.strength": "4"},
        )
        assert response.status_code == 422
        assert "strength can only be given when one response is chosen" in response.text
        [unchanged] = annotations_of(session, annotator)
        assert unchanged.revision == 1 and unchanged.answers["overall"]["choice"] == chosen

    @pytest.mark.parametrize("method", ["get", "post"])
    def test_someone_elses_annotation_is_404(
        self,
        client: TestClient,
        session: Session,
        admin: Persona,
        annotator: Persona,
        second_annotator: Persona,
        method: str,
    ) -> None:
        project_id = setup_project(client, admin, annotator, second_annotator)
        log_in(client, annotator)
        workspace, _ = self._annotate(client, project_id)
        [annotation] = annotations_of(session, annotator)
        client.post("/logout", data={"csrf_token": workspace.csrf})
        log_in(client, second_annotator)
        csrf = open_workspace(client, project_id).csrf
        url = f"/annotations/{annotation.id}"
        response = client.get(url) if method == "get" else client.post(url, data={"csrf_token": csrf})
        assert response.status_code == 404
