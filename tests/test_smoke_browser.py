"""The login page in real Chromium: a rater can log in and sees the projects page."""

from __future__ import annotations

import pytest

from tests.ui_helpers import log_in, seed_project

pytestmark = pytest.mark.browser


def test_rater_logs_in_and_sees_their_project(live_server, page) -> None:  # type: ignore[no-untyped-def]
    seed_project(live_server.sessions, [{"prompt": "Hi?", "responses": ["a", "b"]}], usernames=("smoke",))
    log_in(page, live_server.url, "smoke")
    assert page.locator("h1").first.inner_text() == "Projects"
    assert page.get_by_text("Browser project").is_visible()
