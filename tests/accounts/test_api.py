"""The accounts API: tokens, the caller, user management, throttling and deactivation."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import PASSWORD, Persona


def _login(client: TestClient, username: str, password: str, address: str = "testclient"):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/auth/token", data={"username": username, "password": password})


class TestToken:
    def test_password_gives_a_bearer_token_that_works(self, client: TestClient, annotator: Persona) -> None:
        response = _login(client, "annotator", PASSWORD)
        assert response.status_code == 200
        body = response.json()
        assert body["token_type"] == "bearer"
        me = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me.status_code == 200 and me.json()["username"] == "annotator"
        assert "password" not in me.text

    def test_unknown_user_and_wrong_password_get_the_same_answer(
        self, client: TestClient, annotator: Persona
    ) -> None:
        wrong = _login(client, "annotator", "not the password")
        unknown = _login(client, "nobody-here", "not the password")
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json() == unknown.json()

    def test_repeated_failures_are_throttled_with_retry_after(
        self, client: TestClient, annotator: Persona
    ) -> None:
        for _ in range(5):
            assert _login(client, "annotator", "bad password!").status_code == 401
        throttled = _login(client, "annotator", PASSWORD)
        assert throttled.status_code == 429
        assert int(throttled.headers["Retry-After"]) > 0

    def test_no_token_is_401(self, client: TestClient) -> None:
        assert client.get("/api/v1/users/me").status_code == 401
        assert client.get("/api/v1/users/me", headers={"Authorization": "Bearer nope"}).status_code == 401


class TestUserManagement:
    def test_admin_creates_user_who_can_log_in(self, client: TestClient, admin: Persona) -> None:
        created = client.post(
            "/api/v1/users",
            json={"username": "newbie", "password": "a" * 12, "role": "annotator"},
            headers=admin.headers,
        )
        assert created.status_code == 201
        assert created.json()["role"] == "annotator"
        assert _login(client, "newbie", "a" * 12).status_code == 200

    def test_short_password_is_rejected_with_reason(self, client: TestClient, admin: Persona) -> None:
        response = client.post(
            "/api/v1/users", json={"username": "shorty", "password": "abc"}, headers=admin.headers
        )
        assert response.status_code == 422
        assert "password" in response.text

    def test_duplicate_username_is_409(self, client: TestClient, admin: Persona, annotator: Persona) -> None:
        response = client.post(
            "/api/v1/users", json={"username": "annotator", "password": "b" * 12}, headers=admin.headers
        )
        assert response.status_code == 409

    def test_annotator_cannot_manage_users(self, client: TestClient, annotator: Persona) -> None:
        response = client.post(
            "/api/v1/users", json={"username": "x1", "password": "c" * 12}, headers=annotator.headers
        )
        assert response.status_code == 403
        assert client.get("/api/v1/users", headers=annotator.headers).status_code == 403

    def test_deactivated_user_loses_access_at_once(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        assert client.get("/api/v1/users/me", headers=annotator.headers).status_code == 200
        response = client.post(f"/api/v1/users/{annotator.id}/deactivate", headers=admin.headers)
        assert response.status_code == 200 and response.json()["is_active"] is False
        assert client.get("/api/v1/users/me", headers=annotator.headers).status_code == 401
        assert _login(client, "annotator", PASSWORD).status_code == 401

    def test_role_change_and_password_reset(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        promoted = client.patch(
            f"/api/v1/users/{annotator.id}", json={"role": "admin"}, headers=admin.headers
        )
        assert promoted.json()["role"] == "admin"
        reset = client.post(
            f"/api/v1/users/{annotator.id}/password",
            json={"password": "fresh password 1"},
            headers=admin.headers,
        )
        assert reset.status_code == 204
        assert _login(client, "annotator", "fresh password 1").status_code == 200
        # A reset also revokes the old tokens.
        assert client.get("/api/v1/users/me", headers=annotator.headers).status_code == 401

    def test_list_users_has_total(self, client: TestClient, admin: Persona, annotator: Persona) -> None:
        body = client.get("/api/v1/users", headers=admin.headers).json()
        assert body["total"] == 2 and {u["username"] for u in body["items"]} == {"admin", "annotator"}


class TestPersonalTokens:
    def test_created_token_works_until_revoked(self, client: TestClient, annotator: Persona) -> None:
        created = client.post("/api/v1/users/me/tokens", json={"name": "laptop"}, headers=annotator.headers)
        assert created.status_code == 201
        token = created.json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/v1/users/me", headers=headers).status_code == 200
        listed = client.get("/api/v1/users/me/tokens", headers=annotator.headers).json()
        assert all("token" not in t for t in listed)
        revoked = client.delete(f"/api/v1/users/me/tokens/{created.json()['id']}", headers=annotator.headers)
        assert revoked.status_code == 204
        assert client.get("/api/v1/users/me", headers=headers).status_code == 401


def test_nul_characters_in_a_login_are_refused_cleanly(client: TestClient, annotator: Persona) -> None:
    response = _login(client, "anno\x00tator", "pass\x00word")
    assert response.status_code == 401
