"""The rater's workspace in real Chromium: keyboard judging, drafts, skips, feedback, hostile output, layouts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from app.annotation.models import Annotation, Assignment
from app.items import service as items_service
from app.projects.models import Project
from tests.conftest import ROOT
from tests.ui_helpers import log_in, seed_project

pytestmark = pytest.mark.browser

ARTIFACTS = ROOT / "test-artifacts"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

RANKING_QUESTIONS = [
    {"name": "ranking", "kind": "ranking", "title": "Order the responses, best first"},
    {
        "name": "accuracy",
        "kind": "rating",
        "min": 1,
        "max": 5,
        "labels": {"1": "wrong", "5": "fully correct"},
    },
    {"name": "notes", "kind": "text", "title": "Notes for the reviewers"},
]

LONG_A = """Here is a function that merges overlapping intervals. It sorts by start, then sweeps once:

```python
from typing import Iterable


def merge_intervals(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    \"\"\"Merge overlapping closed intervals; touching intervals are merged too.\"\"\"
    merged: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            previous_start, previous_end = merged[-1]
            merged[-1] = (previous_start, max(previous_end, end))
        else:
            merged.append((start, end))
    return merged
```

**Complexity.** Sorting dominates: `O(n log n)` time and `O(n)` extra space.

| input | output |
|---|---|
| `[(1, 3), (2, 6), (8, 10)]` | `[(1, 6), (8, 10)]` |
| `[(1, 4), (4, 5)]` | `[(1, 5)]` |

Edge cases to test:

1. An empty list returns an empty list.
2. A single interval is returned unchanged.
3. Intervals given out of order, such as `[(5, 6), (1, 2)]`.

A very long identifier that must wrap instead of widening the column:
`averyveryveryveryveryveryveryveryveryveryveryveryveryveryveryveryveryveryveryverylongidentifier`
""" + "\n".join(
    f"- Note {n}: the sweep keeps the invariant that `merged` is sorted and disjoint." for n in range(12)
)

LONG_B = """You can merge the intervals with a stack:

```python
def merge(intervals):
    intervals.sort(key=lambda pair: pair[0])
    stack = []
    for interval in intervals:
        if not stack or stack[-1][1] < interval[0]:
            stack.append(list(interval))
        else:
            stack[-1][1] = max(stack[-1][1], interval[1])
    return [tuple(pair) for pair in stack]
```

This sorts the input **in place**, which mutates the caller's list; copy it first if that matters.

```javascript
// The same idea in JavaScript, for comparison.
function merge(intervals) {
  const sorted = [...intervals].sort((a, b) => a[0] - b[0]);
  return sorted.reduce((out, [s, e]) => {
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e); else out.push([s, e]);
    return out;
  }, []);
}
```

> Note: both versions treat `[1, 4]` and `[4, 5]` as overlapping.
""" + "\n".join(
    f"{n}. Step {n} of the walkthrough explains one more line of the loop above." for n in range(1, 14)
)


@pytest.fixture(scope="module")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=PHONE, locale="en-US", is_mobile=True, has_touch=True)
    yield context.new_page()
    context.close()


def pair(prompt: str, a: str, b: str, **extra: Any) -> dict[str, Any]:
    return {
        "prompt": prompt,
        "responses": [{"text": a, "model": "model-one"}, {"text": b, "model": "model-two"}],
        **extra,
    }


def open_annotate(page: Any, live_server: Any, project: Project, username: str) -> None:
    log_in(page, live_server.url, username)
    page.goto(f"{live_server.url}/projects/{project.id}/annotate")
    page.wait_for_selector("#workspace[data-ready]")


def assignment_id(page: Any) -> str | None:
    return page.evaluate("() => document.querySelector('#workspace')?.dataset.assignmentId ?? null")


def wait_for_next(page: Any, previous: str | None) -> None:
    page.wait_for_function(
        "previous => { const ws = document.querySelector('#workspace');"
        " return ws && ws.dataset.ready !== undefined && ws.dataset.assignmentId !== previous; }",
        arg=previous,
    )


def response_id(page: Any, index: int) -> str:
    return str(page.get_attribute(f"#answer-form input[data-choice-index='{index}']", "value"))


def annotations_by(live_server: Any, username: str) -> list[Annotation]:
    from app.accounts.models import User

    with live_server.sessions() as session:
        user_id = session.scalar(sa.select(User.id).where(User.username == username))
        return list(
            session.scalars(
                sa.select(Annotation).where(Annotation.user_id == user_id).order_by(Annotation.created_at)
            )
        )


def fits_one_screen(page: Any) -> dict[str, Any]:
    return page.evaluate(
        """() => {
            const box = (selector) => document.querySelector(selector).getBoundingClientRect();
            const within = (r) => r.top >= 0 && r.bottom <= innerHeight + 0.5 && r.left >= 0 && r.right <= innerWidth + 0.5;
            const responses = [...document.querySelectorAll('.response')].map((e) => e.getBoundingClientRect());
            return {
                pageScrolls: document.documentElement.scrollHeight > innerHeight + 1,
                responsesVisible: responses.every(within),
                responseHeight: Math.min(...responses.map((r) => r.height)),
                submitVisible: within(box('[data-action=submit]')),
                choicesVisible: within(box('[data-kind=preference] .choices')),
            };
        }"""
    )


def no_sideways_overflow(page: Any) -> bool:
    """Neither the page nor a response column scrolls sideways; only code blocks and tables may."""
    return bool(
        page.evaluate(
            """() => document.documentElement.scrollWidth <= innerWidth
                && [...document.querySelectorAll('.response-body')].every((e) => e.scrollWidth <= e.clientWidth + 1)"""
        )
    )


class TestKeyboardJudging:
    def test_three_items_by_keyboard_then_a_skip(self, live_server: Any, page: Any) -> None:
        lines = [pair(f"Question {n}?", f"First answer {n}", f"Second answer {n}") for n in range(4)]
        project, _ = seed_project(live_server.sessions, lines, usernames=("keys",))
        open_annotate(page, live_server, project, "keys")
        expected: list[tuple[str, dict[str, Any]]] = []
        for key, strength_key, strength in (("1", "e", 3), ("2", "q", 1), ("2", "Shift+4", 4)):
            current = assignment_id(page)
            chosen = response_id(page, int(key))
            page.keyboard.press(key)
            page.keyboard.press(strength_key)
            page.keyboard.press("Enter")
            wait_for_next(page, current)
            expected.append((str(current), {"choice": chosen, "strength": strength}))
        done = annotations_by(live_server, "keys")
        assert [(str(a.assignment_id), a.answers["overall"]) for a in done] == expected
        assert all(a.time_spent_ms is not None and a.time_spent_ms >= 0 for a in done)
        assert page.locator("#rater-stats").inner_text().startswith("3 done today")

        skipped = assignment_id(page)
        page.keyboard.press("s")
        assert page.locator("[data-skip-menu]").get_attribute("open") is not None
        page.keyboard.press("Escape")
        assert page.locator("[data-skip-menu]").get_attribute("open") is None
        page.keyboard.press("s")
        page.keyboard.press("2")
        wait_for_next(page, skipped)
        assert page.locator("#workspace[data-view=idle]").is_visible()
        with live_server.sessions() as session:
            assignment = session.get_one(Assignment, uuid.UUID(str(skipped)))
            assert (assignment.status, assignment.skip_reason) == ("skipped", "needs_expertise")

    def test_refused_submit_keeps_answers_in_place(self, live_server: Any, page: Any) -> None:
        project, _ = seed_project(live_server.sessions, [pair("Q?", "yes", "no")], usernames=("refused",))
        open_annotate(page, live_server, project, "refused")
        current = assignment_id(page)
        page.locator(".rating-row").first.locator("label.point").nth(4).click()
        page.fill("textarea[name='q.rationale']", "kept after the error")
        page.locator("body").click(position={"x": 5, "y": 300})
        page.keyboard.press("Enter")
        page.wait_for_selector(".q-errors")
        assert assignment_id(page) == current
        assert "an answer is required" in page.locator("[data-kind=preference] .q-errors").inner_text()
        assert page.input_value("textarea[name='q.rationale']") == "kept after the error"
        assert page.locator(".rating-row").first.locator("input").nth(4).is_checked()
        page.locator(".rating-row").nth(1).locator("label.point").nth(1).click()
        page.locator("body").click(position={"x": 5, "y": 300})
        page.keyboard.press("t")
        page.keyboard.press("Enter")
        wait_for_next(page, current)
        [annotation] = annotations_by(live_server, "refused")
        assert annotation.answers["overall"] == {"choice": "tie"}
        assert sorted(annotation.answers["helpfulness"].values()) == [2, 5]

    def test_keys_typed_into_a_text_box_stay_text(self, live_server: Any, page: Any) -> None:
        project, _ = seed_project(live_server.sessions, [pair("Q?", "yes", "no")], usernames=("typist",))
        open_annotate(page, live_server, project, "typist")
        current = assignment_id(page)
        box = page.locator("textarea[name='q.rationale']")
        box.click()
        page.keyboard.type("tb12 sdg?")
        page.keyboard.press("Enter")
        page.keyboard.type("second line")
        assert box.input_value() == "tb12 sdg?\nsecond line"
        assert page.locator("#answer-form input:checked").count() == 0
        assert page.locator("[data-skip-menu][open]").count() == 0
        assert page.locator("#guidelines-panel").is_hidden()
        assert assignment_id(page) == current
        page.keyboard.press("Escape")
        page.keyboard.press("b")
        box.click()
        page.keyboard.press("Control+Enter")
        wait_for_next(page, current)
        [annotation] = annotations_by(live_server, "typist")
        assert annotation.answers == {
            "overall": {"choice": "both_bad"},
            "rationale": "tb12 sdg?\nsecond line",
        }


class TestDrafts:
    def test_reload_shows_the_same_item_with_the_draft(self, live_server: Any, page: Any) -> None:
        lines = [pair(f"Draft {n}?", f"one {n}", f"two {n}") for n in range(2)]
        project, _ = seed_project(live_server.sessions, lines, usernames=("drafter",))
        open_annotate(page, live_server, project, "drafter")
        current = assignment_id(page)
        page.keyboard.press("2")
        page.keyboard.press("w")
        page.locator(".rating-row").nth(0).locator("label.point").nth(5).click()
        page.locator(".rating-row").nth(1).locator("label.point").nth(2).click()
        page.fill("textarea[name='q.rationale']", "B cites its sources")
        page.check("input[name=flags][value=pii]")
        page.wait_for_timeout(1100)
        page.reload()
        page.wait_for_selector("#workspace[data-ready]")
        assert assignment_id(page) == current
        assert page.locator("input[data-choice-index='2']").is_checked()
        assert page.locator("input[name='q.overall.strength'][value='2']").is_checked()
        assert page.locator(".rating-row").nth(1).locator("input").nth(2).is_checked()
        assert page.input_value("textarea[name='q.rationale']") == "B cites its sources"
        assert page.locator("input[name=flags][value=pii]").is_checked()
        assert page.locator("[data-timer-text]").inner_text() != "00:00"

        page.keyboard.press("Escape")
        page.keyboard.press("Enter")
        wait_for_next(page, current)
        keys = page.evaluate("id => Object.keys(localStorage).filter((k) => k.includes(id))", current)
        assert keys == []


class TestHostileOutput:
    def test_script_and_handlers_show_as_text(self, live_server: Any, page: Any) -> None:
        hostile = pair(
            "<script>window.__xss=1</script> **bold prompt**",
            "<script>window.__xss=1</script>",
            '<img src=x onerror="window.__xss=1"> [link](javascript:window.__xss=1)',
        )
        project, _ = seed_project(live_server.sessions, [hostile], usernames=("redteam",))
        open_annotate(page, live_server, project, "redteam")
        bodies = page.locator(".response-body")
        assert bodies.nth(0).inner_text().strip() in (
            "<script>window.__xss=1</script>",
            '<img src=x onerror="window.__xss=1"> link',
        )
        texts = {bodies.nth(0).inner_text().strip(), bodies.nth(1).inner_text().strip()}
        assert "<script>window.__xss=1</script>" in texts
        assert page.locator(".response-body img, .response-body script, .prompt-body script").count() == 0
        page.keyboard.press("d")
        page.wait_for_timeout(200)
        assert page.evaluate("() => typeof window.__xss") == "undefined"
        assert "model-one" not in page.content() and "model-two" not in page.content()


class TestDifferences:
    def test_d_marks_the_words_that_differ(self, live_server: Any, page: Any) -> None:
        line = pair(
            "Capital?",
            "The capital of France is Paris, a large city.",
            "The capital of France is Lyon, a large city.",
        )
        project, _ = seed_project(live_server.sessions, [line], usernames=("differ",))
        open_annotate(page, live_server, project, "differ")
        page.keyboard.press("d")
        marked = sorted(page.locator("mark.diff").all_inner_texts())
        assert marked == ["Lyon", "Paris"]
        page.keyboard.press("d")
        assert page.locator("mark.diff").count() == 0


class TestRanking:
    def test_ranking_by_keyboard_is_stored_best_first(self, live_server: Any, page: Any) -> None:
        line = {"prompt": "Rank these.", "responses": ["first text", "second text", "third text"]}
        project, _ = seed_project(
            live_server.sessions, [line], usernames=("ranker",), questions=RANKING_QUESTIONS
        )
        open_annotate(page, live_server, project, "ranker")
        ids = page.eval_on_selector_all(
            ".rank-entry select", "els => els.map((e) => e.name.split('.').pop())"
        )
        page.keyboard.press("3")
        page.keyboard.press("1")
        order = page.eval_on_selector_all(".rank-entry", "els => els.map((e) => e.dataset.label)")
        assert order == ["C", "A", "B"]
        page.locator(".rank-entry[data-label=B]").focus()
        page.keyboard.press("Alt+ArrowUp")
        order = page.eval_on_selector_all(".rank-entry", "els => els.map((e) => e.dataset.label)")
        assert order == ["C", "B", "A"]
        for row in range(3):
            page.locator(".rating-row").nth(row).locator("label.point").nth(row + 2).click()
        current = assignment_id(page)
        page.locator("body").click(position={"x": 5, "y": 300})
        page.keyboard.press("Enter")
        wait_for_next(page, current)
        [annotation] = annotations_by(live_server, "ranker")
        assert annotation.answers["ranking"] == [[ids[2]], [ids[1]], [ids[0]]]


def _seed_training(live_server: Any, username: str) -> Project:
    project, users = seed_project(live_server.sessions, [], usernames=(username,), require_qualification=True)
    lines = [
        {
            "external_id": f"training-{n}",
            "prompt": "Which reply follows the style guide: *answer first, then explain*?",
            "responses": [
                "**Yes.** The function is pure, so calling it twice gives the same result.",
                "Let me think about this step by step. Purity means... so the answer is yes.",
            ],
            "gold": {
                "answers": {"overall": {"choice": 0, "strength": 3}},
                "explanation": "The guide asks for the **answer first**. The first reply opens with it; "
                "the second buries it at the end.",
            },
        }
        for n in range(3)
    ]
    with live_server.sessions() as session:
        stored = session.get_one(Project, project.id)
        admin_user = session.get_one(type(users[0]), stored.created_by_id)
        items_service.import_items(
            session,
            stored,
            enumerate(lines, start=1),
            admin_user,
            options=items_service.import_options(stored),
            purpose="training",
        )
        session.commit()
    return project


class TestFeedback:
    def test_training_answer_shows_feedback_then_next(
        self, live_server: Any, page: Any, artifacts: Path
    ) -> None:
        project = _seed_training(live_server, "trainee")
        open_annotate(page, live_server, project, "trainee")
        assert page.locator(".pill.training").is_visible()
        current = assignment_id(page)
        page.keyboard.press("t")
        page.keyboard.press("Enter")
        page.wait_for_selector("#workspace[data-view=feedback]")
        panel = page.locator(".feedback-panel")
        assert "Not the expected answer" in panel.inner_text()
        assert "tie: neither is better" in panel.inner_text()
        assert "answer first" in panel.inner_text()
        page.screenshot(path=str(artifacts / "feedback-1280x800.png"))
        page.keyboard.press("Enter")
        page.wait_for_selector("#workspace[data-view=item][data-ready]")
        assert assignment_id(page) not in (None, current)


class TestLayouts:
    def test_two_long_code_responses_fit_one_screen(
        self, live_server: Any, page: Any, artifacts: Path
    ) -> None:
        line = pair(
            "Write a Python function that merges overlapping intervals, and explain its complexity.",
            LONG_A,
            LONG_B,
        )
        project, _ = seed_project(live_server.sessions, [line], usernames=("layout",))
        open_annotate(page, live_server, project, "layout")
        page.keyboard.press("2")
        page.keyboard.press("e")
        layout = fits_one_screen(page)
        page.screenshot(path=str(artifacts / "two-responses-1280x800.png"))
        assert layout == {
            **layout,
            "pageScrolls": False,
            "responsesVisible": True,
            "submitVisible": True,
            "choicesVisible": True,
        }
        assert layout["responseHeight"] > 300
        scrolls = page.eval_on_selector_all(
            ".response-body", "els => els.map((e) => e.scrollHeight > e.clientHeight)"
        )
        assert scrolls == [True, True]
        assert no_sideways_overflow(page)
        page.keyboard.press("d")
        page.screenshot(path=str(artifacts / "differences-1280x800.png"))
        page.keyboard.press("d")
        page.emulate_media(color_scheme="dark")
        page.screenshot(path=str(artifacts / "two-responses-dark-1280x800.png"))

    def test_200_percent_zoom_still_works(self, live_server: Any, browser: Any, artifacts: Path) -> None:
        line = pair("Merge intervals?", LONG_A, LONG_B)
        project, _ = seed_project(live_server.sessions, [line], usernames=("zoomed",))
        # A 1280x800 window at 200% zoom lays out like a 640x400 one at twice the pixel density.
        context = browser.new_context(
            viewport={"width": 640, "height": 400}, device_scale_factor=2, locale="en-US"
        )
        page = context.new_page()
        try:
            open_annotate(page, live_server, project, "zoomed")
            assert no_sideways_overflow(page)
            page.keyboard.press("1")
            page.locator("[data-action=submit]").scroll_into_view_if_needed()
            assert page.locator("[data-action=submit]").is_visible()
            page.screenshot(path=str(artifacts / "zoom-200-percent.png"))
        finally:
            context.close()

    def test_three_responses_and_the_help_overlay(self, live_server: Any, page: Any, artifacts: Path) -> None:
        line = {
            "prompt": [
                {"role": "system", "content": "You are a careful assistant."},
                {"role": "user", "content": "What is a closure?"},
                {"role": "assistant", "content": "A function together with the variables it captured."},
                {"role": "user", "content": "Show me one in **JavaScript**, briefly."},
            ],
            "responses": [
                "```js\nfunction counter() {\n  let n = 0;\n  return () => ++n;\n}\n```\nEach call of `counter()` makes a new `n`.",
                "A closure *closes over* its scope:\n\n```js\nconst add = (a) => (b) => a + b;\nadd(2)(3); // 5\n```",
                "Closures are when functions remember things. Example: `setTimeout(() => console.log(x))`.",
            ],
        }
        project, _ = seed_project(
            live_server.sessions, [line], usernames=("triple",), questions=RANKING_QUESTIONS
        )
        open_annotate(page, live_server, project, "triple")
        assert page.locator(".response").count() == 3
        assert page.locator(".prompt-body > .turn").count() == 2
        assert page.locator(".earlier-turns > .turn").count() == 2
        page.screenshot(path=str(artifacts / "three-responses-1280x800.png"))
        page.keyboard.press("?")
        assert page.locator("#help-dialog").is_visible()
        page.screenshot(path=str(artifacts / "help-1280x800.png"))
        page.keyboard.press("Escape")
        assert not page.locator("#help-dialog").is_visible()

    def test_four_responses_side_by_side_on_a_laptop_screen(
        self, live_server: Any, browser: Any, artifacts: Path
    ) -> None:
        line = {
            "prompt": "Explain why the sky is blue to a 10-year-old.",
            "responses": [f"Answer {n}: " + "Sunlight scatters off the air. " * 12 for n in range(1, 5)],
        }
        project, _ = seed_project(
            live_server.sessions, [line], usernames=("quad",), questions=RANKING_QUESTIONS
        )
        # 1366 pixels wide is the most common laptop screen; all four answers must be in view at once.
        context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="en-US")
        page = context.new_page()
        try:
            open_annotate(page, live_server, project, "quad")
            assert page.locator(".response").count() == 4
            page.screenshot(path=str(artifacts / "four-responses-1366x768.png"))
            columns = page.evaluate(
                """() => [...document.querySelectorAll('.response')].map((e) => {
                    const r = e.getBoundingClientRect();
                    return {left: r.left, right: r.right, width: r.width};
                })"""
            )
            assert all(c["left"] >= 0 and c["right"] <= 1366 for c in columns), columns
            assert min(c["width"] for c in columns) >= 300, columns
            assert no_sideways_overflow(page)
        finally:
            context.close()

    def test_phone_stacks_responses_under_sticky_tabs(
        self, live_server: Any, phone: Any, artifacts: Path
    ) -> None:
        line = pair("Merge intervals in Python?", LONG_A, LONG_B)
        project, _ = seed_project(live_server.sessions, [line], usernames=("mobile",))
        open_annotate(phone, live_server, project, "mobile")
        tabs = phone.locator(".response-tabs")
        assert tabs.is_visible()
        assert phone.locator(".response-tab").all_inner_texts() == ["A", "B"]
        assert no_sideways_overflow(phone)
        phone.screenshot(path=str(artifacts / "phone-390x844.png"))
        phone.locator(".response-tab", has_text="B").click()
        phone.wait_for_timeout(400)
        top = tabs.bounding_box()
        assert top is not None and 0 <= top["y"] < 5
        phone.screenshot(path=str(artifacts / "phone-scrolled-390x844.png"))
        phone.locator(".q-preference").scroll_into_view_if_needed()
        phone.locator("label.choice", has_text="B is better").tap()
        assert phone.locator("input[data-choice-index='2']").is_checked()
        assert phone.locator("[data-action=submit]").is_visible()
        phone.screenshot(path=str(artifacts / "phone-controls-390x844.png"))

    def test_guidelines_banner_opens_the_panel_and_marks_seen(self, live_server: Any, page: Any) -> None:
        from app.projects.models import ProjectMembership

        project, users = seed_project(
            live_server.sessions, [pair("Q?", "a", "b")], usernames=("reader",), guidelines="Version **one**."
        )
        with live_server.sessions() as session:
            stored = session.get_one(Project, project.id)
            stored.guidelines, stored.guidelines_version = "Version **two**.", 2
            session.execute(
                sa.update(ProjectMembership)
                .where(ProjectMembership.user_id == users[0].id)
                .values(last_seen_guidelines_version=1)
            )
            session.commit()
        open_annotate(page, live_server, project, "reader")
        assert "(v1 → v2)" in page.locator("#guidelines-news").inner_text()
        page.keyboard.press("g")
        assert page.locator("#guidelines-panel").is_visible()
        assert "Version two." in page.locator("#guidelines-panel").inner_text()
        page.wait_for_timeout(300)
        with live_server.sessions() as session:
            seen = session.scalar(
                sa.select(ProjectMembership.last_seen_guidelines_version).where(
                    ProjectMembership.user_id == users[0].id
                )
            )
        assert seen == 2
        page.keyboard.press("Escape")
        assert not page.locator("#guidelines-panel").is_visible()


def test_chinese_ui(live_server: Any, browser: Any) -> None:
    project, _ = seed_project(live_server.sessions, [pair("你好？", "甲", "乙")], usernames=("zhongwen",))
    context = browser.new_context(
        viewport=DESKTOP, locale="zh-CN", extra_http_headers={"Accept-Language": "zh-CN"}
    )
    page = context.new_page()
    try:
        open_annotate(page, live_server, project, "zhongwen")
        assert page.get_attribute("html", "lang") == "zh-CN"
        assert page.locator("[data-action=submit]").inner_text().split()[0] == "提交"
        assert page.locator("[data-skip-menu] summary").inner_text().split()[0] == "跳过"
        choices = page.locator("[data-primary] > .choices > label.choice > span").all_inner_texts()
        assert choices == ["A 更好", "B 更好", "平局", "都不好"]
        assert page.locator("#rater-stats").inner_text().startswith("今日已完成 0")
        assert "标注指南" in page.locator("[data-action=guidelines]").inner_text()
        assert no_sideways_overflow(page)
    finally:
        context.close()
