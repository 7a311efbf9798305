"""The streamed export API: which pairs survive cleaning, margins and scores, formats, splits, permissions."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.exports.conftest import Judged
from tests.exports.helpers import (
    jsonl_rows,
    judge_all,
    new_project,
    pair_letters,
    parquet_rows,
    raters,
    stream,
)
from tests.factories import Persona, pair_lines


def _by_external_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["external_id"]: row for row in rows}


class TestPreferencePairs:
    def test_exactly_the_pairs_the_majority_chose(
        self, client: TestClient, admin: Persona, judged: Judged
    ) -> None:
        rows = jsonl_rows(client, admin, judged.project_id)
        # Item 2 is a three-way split, 3 a tie, 4 flagged, 7 both bad; 5 and 6 only pass because the
        # excluded spoiler's vote and flag do not count.
        assert {r["external_id"]: pair_letters(r) for r in rows} == {
            "item-0": ("A", "B"),
            "item-1": ("B", "A"),
            "item-5": ("A", "B"),
            "item-6": ("A", "B"),
        }
        # One row per item, in a fixed order: by item id.
        assert [r["item_id"] for r in rows] == sorted(r["item_id"] for r in rows)
        first = _by_external_id(rows)["item-0"]
        assert first["prompt"] == "Question number 0?"
        assert first["chosen"] == "Answer A to 0" and first["rejected"] == "Answer B to 0"

    def test_row_metadata_counts_only_counted_raters(
        self, client: TestClient, admin: Persona, judged: Judged
    ) -> None:
        rows = _by_external_id(jsonl_rows(client, admin, judged.project_id))
        assert rows["item-0"]["n_annotations"] == 3 and rows["item-0"]["agreement"] == 1.0
        assert rows["item-1"]["agreement"] == pytest.approx(2 / 3, abs=1e-4)
        assert set(rows["item-0"]) == {
            "prompt",
            "chosen",
            "rejected",
            "margin",
            "score_chosen",
            "score_rejected",
            "item_id",
            "external_id",
            "n_annotations",
            "agreement",
        }

    def test_margin_is_the_mean_strength_of_the_winning_voters(
        self, client: TestClient, admin: Persona, judged: Judged
    ) -> None:
        rows = _by_external_id(jsonl_rows(client, admin, judged.project_id))
        # item-0: strengths 2, 3, 4; item-1: only one B voter graded (1); item-5: the A voters gave 3 and 4.
        assert rows["item-0"]["margin"] == 3.0
        assert rows["item-1"]["margin"] == 1.0
        assert rows["item-5"]["margin"] == 3.5

    def test_margin_map_turns_strength_into_llama_style_margins(
        self, client: TestClient, admin: Persona, judged: Judged
    ) -> None:
        rows = _by_external_id(jsonl_rows(client, admin, judged.project_id, margin_map="1:0,2:1,3:2,4:3"))
        assert rows["item-0"]["margin"] == 2.0  # (1 + 2 + 3) / 3
        assert rows["item-1"]["margin"] == 0.0
        assert rows["item-5"]["margin"] == 2.5

    def test_score_columns_are_mean_ratings_of_counted_raters(
        self, client: TestClient, admin: Persona, judged: Judged
    ) -> None:
        rows = _by_external_id(jsonl_rows(client, admin, judged.project_id))
        # Ratings 6 and 7 for A, 3 and 2 for B; the spoiler's 1 and 7 are left out.
        assert rows["item-0"]["score_chosen"] == 6.5
        assert rows["item-0"]["score_rejected"] == 2.5
        assert rows["item-1"]["score_chosen"] is None

    def test_include_ties_adds_tie_and_both_bad_rows(
        self, client: TestClient, admin: Persona, judged: Judged
    ) -> None:
        rows = _by_external_id(jsonl_rows(client, admin, judged.project_id, include_ties="true"))
        assert rows["item-3"]["outcome"] == "tie" and rows["item-3"]["margin"] is None
        assert rows["item-7"]["outcome"] == "both_bad"
        assert rows["item-0"]["outcome"] == "chosen"
        assert "item-2" not in rows  # an unresolved vote is not a tie

    def test_include_flagged_keeps_the_flagged_item(
        self, client: TestClient, admin: Persona, judged: Judged
    ) -> None:
        rows = _by_external_id(jsonl_rows(client, admin, judged.project_id, include_flagged="true"))
        assert pair_letters(rows["item-4"]) == ("A", "B")

    def test_min_agreement_drops_split_decisions(
        self, client: TestClient, admin: Persona, judged: Judged
    ) -> None:
        rows = jsonl_rows(client, admin, judged.project_id, min_agreement=0.7)
        assert sorted(r["external_id"] for r in rows) == ["item-0", "item-6"]

    def test_min_annotations_above_what_items_have_leaves_nothing(
        self, client: TestClient, admin: Persona, judged: Judged
    ) -> None:
        assert jsonl_rows(client, admin, judged.project_id, min_annotations=4) == []


class TestOtherFormats:
    def test_implicit_prompt_rows_carry_the_prompt(
        self, client: TestClient, admin: Persona, judged: Judged
    ) -> None:
        rows = _by_external_id(jsonl_rows(client, admin, judged.project_id, format="preference-implicit"))
        assert rows["item-1"]["chosen"] == "Question number 1?\n\nAnswer B to 1"
        assert rows["item-1"]["rejected"] == "Question number 1?\n\nAnswer A to 1"
        assert "prompt" not in rows["item-1"]

    def test_kto_gives_a_true_and_a_false_row_per_pair(
        self, client: TestClient, admin: Persona, judged: Judged
    ) -> None:
        rows = [
            r
            for r in jsonl_rows(client, admin, judged.project_id, format="kto")
            if r["external_id"] == "item-1"
        ]
        assert [(r["completion"], r["label"]) for r in rows] == [
            ("Answer B to 1", True),
            ("Answer A to 1", False),
        ]
        assert all(r["prompt"] == "Question number 1?" for r in rows)

    def test_ratings_rows_summarise_each_response(
        self, client: TestClient, admin: Persona, judged: Judged
    ) -> None:
        rows = jsonl_rows(client, admin, judged.project_id, format="ratings")
        item0 = {r["response"]: r for r in rows if r["external_id"] == "item-0"}
        assert item0["Answer A to 0"]["helpfulness_mean"] == 6.5
        assert item0["Answer A to 0"]["helpfulness_std"] == pytest.approx(0.7071, abs=1e-4)
        assert item0["Answer A to 0"]["helpfulness_count"] == 2
        assert item0["Answer B to 0"]["model"] == "model-b"
        # The flagged item is left out here too.
        assert not any(r["external_id"] == "item-4" for r in rows)

    def test_raw_rows_name_raters_by_pseudonym_only(
        self, client: TestClient, admin: Persona, judged: Judged
    ) -> None:
        response = stream(client, admin, judged.project_id, format="raw")
        rows = jsonl_rows(client, admin, judged.project_id, format="raw")
        assert len(rows) == 8 * 3  # every counted annotation, none of the excluded spoiler's
        for persona in [*judged.raters, judged.spoiler]:
            assert persona.user.username not in response.text
            assert str(persona.id) not in response.text
        pseudonyms = {r["rater"] for r in rows}
        assert len(pseudonyms) == 3 and all(len(p) == 16 for p in pseudonyms)
        first = rows[0]
        assert set(first["shown"]) == {"A", "B"}
        assert first["answers"]["overall"]["choice"] in {*first["shown"].values(), "tie", "both_bad"}
        assert first["time_spent_ms"] == 5000 and first["guidelines_version"] == 1
        assert {r["rater"] for r in jsonl_rows(client, admin, judged.project_id, format="raw")} == pseudonyms

    def test_csv_and_parquet_hold_the_same_rows_as_jsonl(
        self, client: TestClient, admin: Persona, judged: Judged
    ) -> None:
        expected = jsonl_rows(client, admin, judged.project_id)
        as_parquet = stream(client, admin, judged.project_id, file="parquet")
        assert as_parquet.headers["content-type"] == "application/vnd.apache.parquet"
        assert parquet_rows(as_parquet.content) == expected
        as_csv = stream(client, admin, judged.project_id, file="csv")
        table = list(csv.DictReader(io.StringIO(as_csv.text)))
        assert [(r["chosen"], r["margin"]) for r in table] == [
            (r["chosen"], str(r["margin"])) for r in expected
        ]
        assert (
            as_csv.headers["content-disposition"] == 'attachment; filename="helpfulness-pairs-preference.csv"'
        )


class TestChatPrompts:
    def test_chat_prompts_give_message_lists(
        self, client: TestClient, session: Session, admin: Persona, annotator: Persona
    ) -> None:
        lines = [
            {
                "external_id": f"chat-{i}",
                "prompt": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": f"Question number {i}?"},
                ],
                "responses": [{"text": f"Answer A to {i}"}, {"text": f"Answer B to {i}"}],
            }
            for i in range(2)
        ]
        project_id = new_project(client, admin, [annotator], lines)
        judge_all(
            client,
            project_id,
            annotator,
            lambda p, prompt, ids: {"answers": {"overall": {"choice": ids["B"]}}},
        )
        row = _by_external_id(jsonl_rows(client, admin, project_id))["chat-0"]
        assert row["prompt"] == lines[0]["prompt"]
        assert row["chosen"] == [{"role": "assistant", "content": "Answer B to 0"}]
        assert row["rejected"] == [{"role": "assistant", "content": "Answer A to 0"}]
        implicit = _by_external_id(jsonl_rows(client, admin, project_id, format="preference-implicit"))[
            "chat-0"
        ]
        assert implicit["chosen"] == [*lines[0]["prompt"], {"role": "assistant", "content": "Answer B to 0"}]
        kto = [r for r in jsonl_rows(client, admin, project_id, format="kto") if r["external_id"] == "chat-0"]
        assert [(r["completion"], r["label"]) for r in kto] == [
            ([{"role": "assistant", "content": "Answer B to 0"}], True),
            ([{"role": "assistant", "content": "Answer A to 0"}], False),
        ]


class TestSplits:
    @pytest.fixture
    def many(self, client: TestClient, admin: Persona, annotator: Persona) -> str:
        # Forty items but only twenty prompts: each prompt appears twice with different answers.
        lines = pair_lines(40)
        for i, line in enumerate(lines):
            line["prompt"] = f"Question number {i % 20}?"
            line["responses"][0]["text"] = f"Answer A to {i}"
            line["responses"][1]["text"] = f"Answer B to {i}"
        project_id = new_project(client, admin, [annotator], lines)
        judge_all(
            client,
            project_id,
            annotator,
            lambda p, prompt, ids: {"answers": {"overall": {"choice": ids["A"]}}},
        )
        return project_id

    def test_a_prompt_never_lands_in_two_splits(self, client: TestClient, admin: Persona, many: str) -> None:
        rows = jsonl_rows(client, admin, many, split="train=0.5,test=0.5", seed=3)
        assert len(rows) == 40
        splits: dict[str, set[str]] = {}
        for row in rows:
            splits.setdefault(row["prompt"], set()).add(row["split"])
        assert all(len(names) == 1 for names in splits.values())
        assert {name for names in splits.values() for name in names} == {"train", "test"}

    def test_split_name_picks_one_split_deterministically(
        self, client: TestClient, admin: Persona, many: str
    ) -> None:
        every = jsonl_rows(client, admin, many, split="train=0.7,test=0.3", seed=1)
        test = jsonl_rows(client, admin, many, split="train=0.7,test=0.3", seed=1, split_name="test")
        assert test == [{k: v for k, v in r.items() if k != "split"} for r in every if r["split"] == "test"]
        assert jsonl_rows(client, admin, many, split="train=0.7,test=0.3", seed=1, split_name="test") == test

    def test_another_seed_gives_another_split(self, client: TestClient, admin: Persona, many: str) -> None:
        first = [r["split"] for r in jsonl_rows(client, admin, many, split="train=0.5,test=0.5", seed=1)]
        second = [r["split"] for r in jsonl_rows(client, admin, many, split="train=0.5,test=0.5", seed=2)]
        assert first != second


class TestDuplicates:
    def test_repeated_prompt_and_answers_give_one_row(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        lines = pair_lines(3)
        lines[1]["prompt"], lines[1]["responses"] = lines[0]["prompt"], lines[0]["responses"]
        project_id = new_project(client, admin, [annotator], lines)
        judge_all(
            client,
            project_id,
            annotator,
            lambda p, prompt, ids: {"answers": {"overall": {"choice": ids["A"]}}},
        )
        rows = jsonl_rows(client, admin, project_id)
        kept = sorted(r["external_id"] for r in rows)
        assert kept in (["item-0", "item-2"], ["item-1", "item-2"])


class TestPreview:
    def _preview(self, client: TestClient, admin: Persona, project_id: str, **params: Any) -> Any:
        return client.get(
            f"/api/v1/projects/{project_id}/export/preview", params=params, headers=admin.headers
        )

    def test_funnel_counts_each_filter_without_writing_rows(
        self, client: TestClient, admin: Persona, judged: Judged
    ) -> None:
        response = self._preview(client, admin, judged.project_id)
        assert response.status_code == 200, response.text
        preview = response.json()
        # 8 items judged by three counted raters (the excluded spoiler's 8 votes are left out); item 2 is
        # unresolved, 3 and 7 are a tie and both bad, 4 is flagged: 4 rows.
        assert (preview["items"], preview["annotations"], preview["raters"]) == (8, 24, 3)
        assert [(s["key"], s["count"], s["removed"]) for s in preview["steps"]] == [
            ("annotated", 8, 0),
            ("enough_annotations", 8, 0),
            ("agreement", 7, 1),
            ("ties", 5, 2),
            ("flags", 4, 1),
            ("rows_before_dedup", 4, 0),
            ("rows", 4, 0),
        ]
        assert preview["dropped"] == {"flagged": 1, "ties": 2, "unresolved": 1}
        assert preview["rows"] == {"all": 4} and preview["rows_total"] == 4

    @pytest.mark.parametrize(
        "params",
        [
            {"include_ties": "true", "include_flagged": "true"},
            {"min_agreement": "0.7"},
            {"format": "kto", "split": "train=0.5,test=0.5", "seed": "4"},
            {"aggregation": "dawid-skene"},
            {"format": "ratings"},
        ],
    )
    def test_rows_per_split_match_the_stream(
        self, client: TestClient, admin: Persona, judged: Judged, params: dict[str, str]
    ) -> None:
        preview = self._preview(client, admin, judged.project_id, **params).json()
        rows = jsonl_rows(client, admin, judged.project_id, **params)
        by_split: dict[str, int] = {}
        for row in rows:
            by_split[row.get("split", "all")] = by_split.get(row.get("split", "all"), 0) + 1
        assert {name: n for name, n in preview["rows"].items() if n} == by_split
        assert preview["rows_total"] == len(rows)
        if "split" in params:
            assert set(preview["rows"]) == {"train", "test"}, "an empty split is listed with 0 rows"

    def test_bad_option_is_a_422_and_annotators_get_403(
        self, client: TestClient, admin: Persona, annotator: Persona, judged: Judged
    ) -> None:
        bad = self._preview(client, admin, judged.project_id, split="train=0.9,test=0.2")
        assert bad.status_code == 422 and "must add up to 1" in bad.json()["detail"]
        assert self._preview(client, annotator, judged.project_id).status_code == 403


class TestPermissions:
    def test_anonymous_gets_401(self, client: TestClient, judged: Judged) -> None:
        assert client.get(f"/api/v1/projects/{judged.project_id}/export").status_code == 401

    def test_outsider_gets_404(self, client: TestClient, outsider: Persona, judged: Judged) -> None:
        assert stream(client, outsider, judged.project_id).status_code == 404

    def test_member_annotator_gets_403(self, client: TestClient, annotator: Persona, judged: Judged) -> None:
        assert stream(client, annotator, judged.project_id).status_code == 403


class TestBadParameters:
    @pytest.mark.parametrize(
        ("params", "message"),
        [
            ({"format": "excel"}, "format"),
            ({"file": "xlsx"}, "file"),
            ({"split": "train=0.9,test=0.2"}, "split fractions must add up to 1, got 1.1"),
            ({"split": "train"}, "is not NAME=FRACTION"),
            ({"margin_map": "big:1"}, "is not STRENGTH:MARGIN"),
            ({"min_agreement": "1.5"}, "min_agreement"),
            ({"split_name": "test"}, "split_name 'test' is not one of the splits"),
            ({"question": "helpfulness"}, "Question 'helpfulness' is a rating question"),
            ({"question": "nope"}, "no question named 'nope'"),
            ({"score_question": "overall"}, "is a preference question, not a rating question"),
            ({"unknown": "1"}, "unknown"),
        ],
    )
    def test_bad_parameter_is_a_422_that_says_why(
        self, client: TestClient, admin: Persona, judged: Judged, params: dict[str, str], message: str
    ) -> None:
        response = stream(client, admin, judged.project_id, **params)
        assert response.status_code == 422, response.text
        assert message in response.json()["detail"]

    def test_ratings_format_needs_a_rating_question(
        self, client: TestClient, session: Session, admin: Persona
    ) -> None:
        (rater,) = raters(session, "solo")
        project_id = new_project(
            client, admin, [rater], pair_lines(1), questions=[{"name": "overall", "kind": "preference"}]
        )
        response = stream(client, admin, project_id, format="ratings")
        assert response.status_code == 422
        assert "needs at least one rating question" in response.json()["detail"]


def test_snapshot_request_is_in_the_audit_log(client, admin) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import create_project

    project = create_project(client, admin)
    created = client.post(
        f"/api/v1/projects/{project['id']}/exports", json={"format": "kto"}, headers=admin.headers
    )
    assert created.status_code == 202
    events = client.get(f"/api/v1/audit?project_id={project['id']}", headers=admin.headers).json()["items"]
    assert any(e["action"] == "export.create" and e["after"]["format"] == "kto" for e in events)
