"""Importing from the project page in real Chromium: drop a file, read the dry run, then import what it counted."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from app.items.models import Item
from tests.ui_helpers import log_in, seed_project

pytestmark = pytest.mark.browser

DROP = """(form, text) => {
  const data = new DataTransfer();
  data.items.add(new File([text], "new-items.jsonl", {type: "application/x-ndjson"}));
  form.dispatchEvent(new DragEvent("dragenter", {dataTransfer: data, bubbles: true, cancelable: true}));
  form.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
}"""


def _items(live_server: Any, project_id: Any) -> int:
    with live_server.sessions() as session:
        return int(session.scalar(sa.select(sa.func.count()).where(Item.project_id == project_id)) or 0)


def test_a_dropped_file_is_counted_first_then_imported_with_one_click(live_server: Any, page: Any) -> None:
    existing = {"external_id": "d0", "prompt": "Already here?", "responses": ["yes", "no"]}
    project, _ = seed_project(live_server.sessions, [existing], usernames=("d1",))
    lines = [
        json.dumps({"external_id": "d1", "prompt": "New one?", "responses": ["a", "b"]}),
        json.dumps({"external_id": "d2", "prompt": "Another?", "responses": ["c", "d"]}),
        json.dumps(existing),
        '{"prompt": "no responses"}',
    ]
    log_in(page, live_server.url, "boss")
    page.goto(f"{live_server.url}/projects/{project.id}")
    form = page.locator("#import-form")
    form.evaluate(DROP, "\n".join(lines) + "\n")

    result = page.locator("#import-result")
    expect(result).to_contain_text("Dry run: nothing was written.")
    expect(result).to_contain_text("Created: 2 · Duplicates: 1 · Rejected lines: 1")
    assert page.eval_on_selector("#import-form input[type=file]", "i => i.files[0].name") == "new-items.jsonl"
    expect(form).not_to_have_class("row dropzone dropping")
    assert _items(live_server, project.id) == 1

    page.click("#import-result button:has-text('Import 2 items, leaving out the rejected lines')")
    expect(result).to_contain_text("Created: 2")
    expect(result).not_to_contain_text("Dry run")
    expect(result.locator("button")).to_have_count(0)
    assert _items(live_server, project.id) == 3
    # The form is back to a dry run for the next file.
    expect(page.locator("#import-form input[name=dry_run]")).to_be_checked()
