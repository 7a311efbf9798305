"""Every route of the app, called as anonymous, an annotator outside the project, a member annotator and an admin.

The table is checked against the app's route table, so a new route without a rule fails the suite.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.accounts import service as accounts_service
from tests.factories import PASSWORD, Persona, add_members, create_project, import_lines, pair_lines

ROLES = ("anonymous", "outsider", "member", "admin")


@dataclass
class World:
    project_id: str
    item_id: str
    assignment_id: str
    annotation_id: str
    member_id: str
    member_token_id: str
    line: dict[str, Any]
    choice: str
    annotated_choice: str


Body = Callable[[World], dict[str, Any]]


@dataclass(frozen=True)
class Rule:
    expected: tuple[int, int, int, int]
    json: Body | None = None
    form: Body | None = None


def _answer(world: World) -> dict[str, Any]:
    return {"answers": {"overall": {"choice": world.choice}}}


def _correction(world: World) -> dict[str, Any]:
    return {"answers": {"overall": {"choice": world.annotated_choice}}}


API: dict[tuple[str, str], Rule] = {
    ("GET", "/healthz"): Rule((200, 200, 200, 200)),
    ("GET", "/readyz"): Rule((200, 200, 200, 200)),
    ("GET", "/metrics"): Rule((200, 200, 200, 200)),
    ("POST", "/api/v1/auth/token"): Rule(
        (200, 200, 200, 200), form=lambda w: {"username": "member", "password": PASSWORD}
    ),
    ("GET", "/api/v1/users/me"): Rule((401, 200, 200, 200)),
    ("GET", "/api/v1/users/me/tokens"): Rule((401, 200, 200, 200)),
    ("POST", "/api/v1/users/me/tokens"): Rule((401, 201, 201, 201), json=lambda w: {"name": "cli"}),
    ("DELETE", "/api/v1/users/me/tokens/{token_id}"): Rule((401, 404, 204, 404)),
    ("POST", "/api/v1/users"): Rule(
        (401, 403, 403, 201), json=lambda w: {"username": "fresh", "password": "p" * 12}
    ),
    ("GET", "/api/v1/users"): Rule((401, 403, 403, 200)),
    ("PATCH", "/api/v1/users/{user_id}"): Rule((401, 403, 403, 200), json=lambda w: {"role": "annotator"}),
    ("POST", "/api/v1/users/{user_id}/deactivate"): Rule((401, 403, 403, 200)),
    ("POST", "/api/v1/users/{user_id}/password"): Rule(
        (401, 403, 403, 204), json=lambda w: {"password": "q" * 12}
    ),
    ("POST", "/api/v1/projects"): Rule(
        (401, 403, 403, 201), json=lambda w: {"name": "New", "questions": [{"name": "q", "kind": "text"}]}
    ),
    ("GET", "/api/v1/projects"): Rule((401, 200, 200, 200)),
    ("GET", "/api/v1/projects/{project_id}"): Rule((401, 404, 200, 200)),
    ("PATCH", "/api/v1/projects/{project_id}"): Rule(
        (401, 404, 403, 200), json=lambda w: {"name": "Renamed"}
    ),
    ("POST", "/api/v1/projects/{project_id}/archive"): Rule((401, 404, 403, 200)),
    ("GET", "/api/v1/projects/{project_id}/members"): Rule((401, 404, 403, 200)),
    ("POST", "/api/v1/projects/{project_id}/members"): Rule(
        (401, 404, 403, 201), json=lambda w: {"username": "outsider"}
    ),
    ("DELETE", "/api/v1/projects/{project_id}/members/{user_id}"): Rule((401, 404, 403, 204)),
    ("POST", "/api/v1/projects/{project_id}/items"): Rule((401, 404, 403, 201), json=lambda w: [w.line]),  # type: ignore[arg-type,return-value]
    ("GET", "/api/v1/projects/{project_id}/items"): Rule((401, 404, 403, 200)),
    ("PUT", "/api/v1/projects/{project_id}/items/{item_id}/gold"): Rule(
        (401, 404, 403, 200), json=lambda w: {"answers": {"overall": {"choice": "tie"}}}
    ),
    ("POST", "/api/v1/projects/{project_id}/assignments/next"): Rule((401, 404, 200, 404)),
    ("POST", "/api/v1/assignments/{assignment_id}/annotation"): Rule((401, 404, 201, 404), json=_answer),
    ("POST", "/api/v1/assignments/{assignment_id}/skip"): Rule(
        (401, 404, 200, 404), json=lambda w: {"reason": "other"}
    ),
    ("GET", "/api/v1/annotations/mine"): Rule((401, 200, 200, 200)),
    ("GET", "/api/v1/annotations/{annotation_id}"): Rule((401, 404, 200, 404)),
    ("PATCH", "/api/v1/annotations/{annotation_id}"): Rule((401, 404, 200, 404), json=_correction),
    ("POST", "/api/v1/projects/{project_id}/raters/{user_id}/reset-qualification"): Rule(
        (401, 404, 403, 200)
    ),
    ("POST", "/api/v1/projects/{project_id}/raters/{user_id}/exclude"): Rule(
        (401, 404, 403, 200), json=lambda w: {}
    ),
    ("POST", "/api/v1/projects/{project_id}/raters/{user_id}/include"): Rule((401, 404, 403, 200)),
    ("GET", "/api/v1/audit"): Rule((401, 403, 403, 200)),
    ("GET", "/api/v1/projects/{project_id}/agreement"): Rule((401, 404, 403, 200)),
    ("GET", "/api/v1/projects/{project_id}/leaderboard"): Rule((401, 404, 403, 200)),
    ("GET", "/api/v1/projects/{project_id}/raters"): Rule((401, 404, 403, 200)),
    ("GET", "/api/v1/projects/{project_id}/export"): Rule((401, 404, 403, 200)),
    ("GET", "/api/v1/projects/{project_id}/export/preview"): Rule((401, 404, 403, 200)),
    ("GET", "/api/v1/projects/{project_id}/progress"): Rule((401, 404, 403, 200)),
    ("POST", "/api/v1/projects/{project_id}/exports"): Rule(
        (401, 404, 403, 202), json=lambda w: {"format": "kto"}
    ),
    ("GET", "/api/v1/projects/{project_id}/exports"): Rule((401, 404, 403, 200)),
    # An export id that does not exist: 404 for everyone who may ask at all.
    ("GET", "/api/v1/exports/{export_id}"): Rule((401, 404, 404, 404)),
    ("GET", "/api/v1/exports/{export_id}/download"): Rule((401, 404, 404, 404)),
}

# Pages: anonymous visitors are sent to the login page (303); admin screens answer 403 to annotators.
PAGES: dict[tuple[str, str], Rule] = {
    ("GET", "/login"): Rule((200, 303, 303, 303)),
    ("POST", "/login"): Rule(
        (303, 303, 303, 303), form=lambda w: {"username": "member", "password": PASSWORD}
    ),
    ("POST", "/logout"): Rule((303, 303, 303, 303), form=lambda w: {}),
    ("POST", "/language"): Rule((303, 303, 303, 303), form=lambda w: {"locale": "zh"}),
    ("GET", "/admin/users"): Rule((303, 403, 403, 200)),
    ("POST", "/admin/users"): Rule(
        (303, 403, 403, 303), form=lambda w: {"username": "fresh", "password": "p" * 12, "role": "annotator"}
    ),
    ("POST", "/admin/users/{user_id}"): Rule((303, 403, 403, 303), form=lambda w: {"action": "make_admin"}),
    ("GET", "/account"): Rule((303, 200, 200, 200)),
    ("POST", "/account/tokens"): Rule((303, 200, 200, 200), form=lambda w: {"name": "laptop"}),
    ("POST", "/account/tokens/{token_id}/revoke"): Rule((303, 404, 303, 404), form=lambda w: {}),
    ("GET", "/"): Rule((303, 200, 200, 200)),
    # Only a way to the home page, which decides who sees what.
    ("GET", "/projects"): Rule((307, 307, 307, 307)),
    ("GET", "/projects/new"): Rule((303, 403, 403, 200)),
    ("POST", "/projects/new"): Rule(
        (303, 403, 403, 303),
        form=lambda w: {
            "name": "Paged",
            "questions": '[{"name": "q", "kind": "text"}]',
            "annotations_per_item": "2",
        },
    ),
    ("GET", "/projects/{project_id}"): Rule((303, 403, 403, 200)),
    ("POST", "/projects/{project_id}/settings"): Rule(
        (303, 403, 403, 303),
        form=lambda w: {
            "name": "Renamed",
            "status": "active",
            "annotations_per_item": "2",
            "lease_minutes": "30",
        },
    ),
    ("POST", "/projects/{project_id}/guidelines"): Rule(
        (303, 403, 403, 303), form=lambda w: {"guidelines": "# New"}
    ),
    ("POST", "/projects/{project_id}/members"): Rule(
        (303, 403, 403, 303), form=lambda w: {"username": "outsider"}
    ),
    ("POST", "/projects/{project_id}/members/{user_id}/remove"): Rule(
        (303, 403, 403, 303), form=lambda w: {}
    ),
    ("GET", "/admin/audit"): Rule((303, 403, 403, 200)),
    ("GET", "/projects/{project_id}/quality"): Rule((303, 403, 403, 200)),
    ("GET", "/projects/{project_id}/agreement"): Rule((303, 403, 403, 200)),
    ("GET", "/projects/{project_id}/agreement/glance"): Rule((303, 403, 403, 200)),
    ("GET", "/projects/{project_id}/progress/history"): Rule((303, 403, 403, 200)),
    ("GET", "/projects/{project_id}/agreement/plots/{name}.svg"): Rule((303, 403, 403, 200)),
    ("GET", "/projects/{project_id}/agreement/plots/{name}.csv"): Rule((303, 403, 403, 200)),
    ("GET", "/projects/{project_id}/export"): Rule((303, 403, 403, 200)),
    ("GET", "/projects/{project_id}/export/preview"): Rule((303, 403, 403, 200)),
    ("POST", "/projects/{project_id}/export"): Rule((303, 403, 403, 303), form=lambda w: {"format": "kto"}),
    ("GET", "/projects/{project_id}/export/snapshots"): Rule((303, 403, 403, 200)),
    ("GET", "/projects/{project_id}/exports/{export_id}/download"): Rule((303, 403, 403, 404)),
    ("GET", "/projects/{project_id}/raters/{user_id}"): Rule((303, 403, 403, 200)),
    ("GET", "/projects/{project_id}/training"): Rule((303, 403, 403, 200)),
    ("POST", "/projects/{project_id}/raters/{user_id}/exclude"): Rule(
        (303, 403, 403, 303), form=lambda w: {}
    ),
    ("POST", "/projects/{project_id}/raters/{user_id}/include"): Rule(
        (303, 403, 403, 303), form=lambda w: {}
    ),
    ("POST", "/projects/{project_id}/raters/{user_id}/reset-qualification"): Rule(
        (303, 403, 403, 303), form=lambda w: {}
    ),
    ("POST", "/projects/{project_id}/training/settings"): Rule(
        (303, 403, 403, 303),
        form=lambda w: {
            "qualification_threshold": "80",
            "gold_rate": "5",
            "gold_pause_threshold": "70",
            "qualification_cooldown_minutes": "60",
            "gold_min_answers": "10",
            "min_seconds_per_item": "4",
        },
    ),
    ("POST", "/projects/{project_id}/training/items/{item_id}/gold"): Rule(
        (303, 403, 403, 303), form=lambda w: {"q.overall": "A"}
    ),
    # Without a file the admin's upload is refused as incomplete; the upload itself is tested with the pages.
    ("POST", "/projects/{project_id}/import"): Rule((303, 403, 403, 422), form=lambda w: {"pairs": "none"}),
    # Admins see every project; one who is not a member is told so on the page.
    ("GET", "/projects/{project_id}/annotate"): Rule((303, 404, 200, 200)),
    ("POST", "/projects/{project_id}/annotate/guidelines-seen"): Rule(
        (303, 404, 204, 204), form=lambda w: {}
    ),
    ("POST", "/projects/{project_id}/annotate/{assignment_id}"): Rule(
        (303, 404, 303, 404), form=lambda w: {"q.overall.choice": w.choice}
    ),
    ("POST", "/projects/{project_id}/annotate/{assignment_id}/skip"): Rule(
        (303, 404, 303, 404), form=lambda w: {"reason": "other"}
    ),
    ("GET", "/annotations/{annotation_id}"): Rule((303, 404, 200, 404)),
    ("POST", "/annotations/{annotation_id}"): Rule(
        (303, 404, 303, 404), form=lambda w: {"q.overall.choice": w.annotated_choice}
    ),
}

RULES = {**API, **PAGES}
UNCHECKED = {
    "/api/openapi.json",
    "/api/docs",
    "/docs/oauth2-redirect",
    "/api/docs/oauth2-redirect",
    "/static",
}


def app_routes(app: Any) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        for inner in getattr(getattr(route, "original_router", None), "routes", [route]):
            path = getattr(inner, "path", "")
            if path in UNCHECKED or not hasattr(inner, "methods"):
                continue
            found.update((method, path) for method in inner.methods - {"HEAD"})
    return found


def test_every_route_has_a_rule(app: Any) -> None:
    routes = app_routes(app)
    assert routes - RULES.keys() == set(), "routes without a permission rule"
    assert RULES.keys() - routes == set(), "rules for routes that no longer exist"


@pytest.fixture
def world(
    client: TestClient, session: Session, admin: Persona, annotator: Persona, outsider: Persona
) -> World:
    member = annotator
    member.user.username = "member"
    session.commit()
    project = create_project(client, admin)
    add_members(client, admin, project["id"], member)
    import_lines(client, admin, project["id"], pair_lines(3))
    first = client.post(f"/api/v1/projects/{project['id']}/assignments/next", headers=member.headers).json()
    choice = first["item"]["responses"][0]["id"]
    done = client.post(
        f"/api/v1/assignments/{first['assignment_id']}/annotation",
        json={"answers": {"overall": {"choice": choice}}},
        headers=member.headers,
    ).json()
    second = client.post(f"/api/v1/projects/{project['id']}/assignments/next", headers=member.headers).json()
    token, _ = accounts_service.issue_token(session, member.user, "spare")
    session.commit()
    return World(
        project_id=project["id"],
        item_id=first["item"]["id"],
        assignment_id=second["assignment_id"],
        annotation_id=done["annotation_id"],
        member_id=str(member.id),
        member_token_id=str(token.id),
        line={"prompt": "Fresh?", "responses": ["x", "y"]},
        choice=second["item"]["responses"][0]["id"],
        annotated_choice=first["item"]["responses"][1]["id"],
    )


def _fill(path: str, world: World) -> str:
    values = {
        "project_id": world.project_id,
        "item_id": world.item_id,
        "assignment_id": world.assignment_id,
        "annotation_id": world.annotation_id,
        "user_id": world.member_id,
        "token_id": world.member_token_id,
        "export_id": str(uuid.uuid4()),
        "name": "leaderboard",
    }
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def _log_in_page(client: TestClient, role: str) -> str:
    """Log the client in (unless anonymous) and return its CSRF token."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    if role == "anonymous":
        return token.group(1)
    username = {"outsider": "outsider", "member": "member", "admin": "admin"}[role]
    client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    account = client.get("/account")
    found = re.search(r'name="csrf_token" value="([^"]+)"', account.text)
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("key", sorted(API), ids=lambda k: f"{k[0]} {k[1]}")
def test_api_route_answers_each_role_as_expected(
    key: tuple[str, str],
    role: str,
    client: TestClient,
    world: World,
    admin: Persona,
    annotator: Persona,
    outsider: Persona,
) -> None:
    method, path = key
    rule = API[key]
    persona = {"anonymous": None, "outsider": outsider, "member": annotator, "admin": admin}[role]
    headers = persona.headers if persona else {}
    kwargs: dict[str, Any] = {"headers": headers}
    if rule.json:
        kwargs["json"] = rule.json(world)
    if rule.form:
        kwargs["data"] = rule.form(world)
    response = client.request(method, _fill(path, world), **kwargs)
    assert response.status_code == rule.expected[ROLES.index(role)], response.text[:300]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("key", sorted(PAGES), ids=lambda k: f"{k[0]} {k[1]}")
def test_page_route_answers_each_role_as_expected(
    key: tuple[str, str], role: str, client: TestClient, world: World, admin: Persona, outsider: Persona
) -> None:
    method, path = key
    rule = PAGES[key]
    csrf = _log_in_page(client, role)
    kwargs: dict[str, Any] = {"follow_redirects": False}
    if method == "POST":
        kwargs["data"] = {**(rule.form(world) if rule.form else {}), "csrf_token": csrf}
    response = client.request(method, _fill(path, world), **kwargs)
    assert response.status_code == rule.expected[ROLES.index(role)], response.text[:300]


@pytest.mark.parametrize("path", ["/logout", "/admin/users", "/account/tokens"])
def test_page_posts_without_csrf_token_are_refused(path: str, client: TestClient, world: World) -> None:
    _log_in_page(client, "admin")
    response = client.post(
        path, data={"name": "x", "username": "y", "password": "z" * 12}, follow_redirects=False
    )
    assert response.status_code == 403
