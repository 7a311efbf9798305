"""The export page in real Chromium: the funnel loads through htmx, and a snapshot is built and offered."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from app.items.models import Item, Response
from tests.exports.helpers import insert_vote
from tests.ui_helpers import log_in, seed_project

pytestmark = pytest.mark.browser


def test_admin_sees_the_funnel_and_downloads_a_snapshot(live_server: Any, page: Any) -> None:
    lines = [
        {"external_id": f"b{i}", "prompt": f"Prompt {i}?", "responses": [f"good {i}", f"bad {i}"]}
        for i in range(6)
    ]
    project, users = seed_project(live_server.sessions, lines, usernames=("b1", "b2", "b3"))
    with live_server.sessions() as session:
        items = session.scalars(sa.select(Item).where(Item.project_id == project.id).order_by(Item.seq)).all()
        for n, item in enumerate(items):
            ids = [
                str(r)
                for r in session.scalars(
                    sa.select(Response.id).where(Response.item_id == item.id).order_by(Response.position)
                )
            ]
            for user in users:
                # The first two items are ties; the others go to the first response.
                insert_vote(
                    session,
                    project.id,
                    item.id,
                    user.id,
                    ids,
                    {"overall": {"choice": "tie" if n < 2 else ids[0]}},
                )
        session.commit()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    failed: list[str] = []
    page.on(
        "response", lambda r: failed.append(r.url) if r.status >= 400 and "favicon" not in r.url else None
    )
    log_in(page, live_server.url, "boss")
    page.goto(f"{live_server.url}/projects/{project.id}/export")
    page.wait_for_selector("tr[data-step='rows'] [data-count]")
    expect(page.locator("tr[data-step='ties'] [data-count]")).to_have_text("4")
    page.check("input[name=include_ties]")
    expect(page.locator("tr[data-step='rows'] [data-count]")).to_have_text("6")
    page.click("button.primary")
    page.wait_for_selector("#snapshot-list a:has-text('Download')", timeout=30_000)
    with page.expect_download() as download:
        page.click("#snapshot-list a:has-text('Download')")
    assert download.value.suggested_filename.endswith(".zip")
    assert failed == []
    assert [e for e in errors if "Failed to load resource" not in e] == []


def test_while_new_options_are_counted_the_old_funnel_is_dimmed_under_a_notice(
    live_server: Any, page: Any
) -> None:
    lines = [
        {"external_id": f"c{i}", "prompt": f"Prompt {i}?", "responses": [f"x {i}", f"y {i}"]}
        for i in range(3)
    ]
    project, _ = seed_project(live_server.sessions, lines, usernames=("c1",))
    log_in(page, live_server.url, "boss")
    page.goto(f"{live_server.url}/projects/{project.id}/export")
    page.wait_for_selector("tr[data-step='rows'] [data-count]")
    notice = page.locator(".funnel-counting")
    expect(notice).to_be_hidden()
    # Hold the next preview, as a large project's would take seconds.
    held: list[Any] = []
    page.route("**/export/preview?*", lambda route: held.append(route))
    page.check("input[name=include_ties]")
    expect(notice).to_be_visible()
    expect(notice).to_have_text("Counting with the new options…")
    # The old figures fade out over a fifth of a second.
    expect(page.locator("#funnel")).to_have_css("opacity", "0.45")
    held[0].continue_()
    expect(notice).to_be_hidden()
    expect(page.locator("#funnel")).to_have_css("opacity", "1")
