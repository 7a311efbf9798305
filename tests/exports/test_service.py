"""Export rules beyond one request: Dawid-Skene against a spamming crowd, rankings, HF and TRL compatibility."""

from __future__ import annotations

import random
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.exports import aggregate
from app.items.models import Item, Response
from app.projects.models import Project
from tests.exports.conftest import Judged
from tests.exports.helpers import (
    insert_vote,
    jsonl_rows,
    judge_all,
    new_project,
    pair_letters,
    raters,
    stream,
)
from tests.factories import Persona, pair_lines

PREFERENCE_ONLY = [{"name": "overall", "kind": "preference"}]


def _items(session: Session, project_id: str) -> list[tuple[uuid.UUID, list[str]]]:
    """(item id, response ids by position) of every item, in import order."""
    items = session.scalars(
        sa.select(Item).where(Item.project_id == uuid.UUID(project_id)).order_by(Item.seq)
    ).all()
    result = []
    for item in items:
        responses = session.scalars(
            sa.select(Response.id).where(Response.item_id == item.id).order_by(Response.position)
        ).all()
        result.append((item.id, [str(r) for r in responses]))
    return result


class TestDawidSkene:
    @pytest.fixture
    def crowd(self, client: TestClient, session: Session, admin: Persona) -> tuple[str, dict[str, str]]:
        """Two careful raters who always agree with the truth, and three spammers who always pick the first
        response shown: on every item whose better answer is second, the spammers outvote them 3 to 2."""
        honest = raters(session, "honest1", "honest2")
        spammers = raters(session, "spam1", "spam2", "spam3")
        project_id = new_project(
            client, admin, [*honest, *spammers], pair_lines(40), questions=PREFERENCE_ONLY
        )
        rng = random.Random(5)
        truth: dict[str, str] = {}
        for n, (item_id, (first, second)) in enumerate(_items(session, project_id)):
            better = "A" if rng.random() < 0.5 else "B"
            truth[f"item-{n}"] = better
            best = first if better == "A" else second
            for persona in honest:
                insert_vote(
                    session,
                    uuid.UUID(project_id),
                    item_id,
                    persona.id,
                    [first, second],
                    {"overall": {"choice": best}},
                )
            for persona in spammers:
                insert_vote(
                    session,
                    uuid.UUID(project_id),
                    item_id,
                    persona.id,
                    [first, second],
                    {"overall": {"choice": first}},
                )
        session.commit()
        assert set(truth.values()) == {"A", "B"}
        return project_id, truth

    def test_dawid_skene_follows_the_careful_raters_where_majority_follows_the_spammers(
        self, client: TestClient, admin: Persona, crowd: tuple[str, dict[str, str]]
    ) -> None:
        project_id, truth = crowd
        majority = {r["external_id"]: pair_letters(r)[0] for r in jsonl_rows(client, admin, project_id)}
        learned = {
            r["external_id"]: pair_letters(r)[0]
            for r in jsonl_rows(client, admin, project_id, aggregation="dawid-skene")
        }
        assert learned == truth
        second_better = [key for key, better in truth.items() if better == "B"]
        assert second_better and all(majority[key] == "A" for key in second_better)

    def test_votes_spilled_to_disk_give_the_same_dawid_skene_rows(
        self,
        client: TestClient,
        admin: Persona,
        crowd: tuple[str, dict[str, str]],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # A large export keeps its votes in a temporary file, a block at a time; here each item is one block.
        project_id, truth = crowd
        in_memory = jsonl_rows(client, admin, project_id, aggregation="dawid-skene")
        monkeypatch.setattr(aggregate, "SPILL_VOTES", 5)
        spilled = jsonl_rows(client, admin, project_id, aggregation="dawid-skene")
        assert spilled == in_memory
        assert {r["external_id"]: pair_letters(r)[0] for r in spilled} == truth

    def test_once_the_careful_raters_are_excluded_the_next_fit_follows_the_votes_that_remain(
        self, client: TestClient, session: Session, admin: Persona, crowd: tuple[str, dict[str, str]]
    ) -> None:
        # A fit is kept for the next preview or export of the same votes; excluding raters changes the votes.
        project_id, truth = crowd
        params = {"aggregation": "dawid-skene"}
        url = f"/api/v1/projects/{project_id}/export/preview"
        before = client.get(url, params=params, headers=admin.headers)
        assert before.status_code == 200, before.text
        assert {
            r["external_id"]: pair_letters(r)[0] for r in jsonl_rows(client, admin, project_id, **params)
        } == truth

        for username in ("honest1", "honest2"):
            user_id = session.scalars(sa.select(User.id).where(User.username == username)).one()
            excluded = client.post(
                f"/api/v1/projects/{project_id}/raters/{user_id}/exclude",
                json={"reason": "test"},
                headers=admin.headers,
            )
            assert excluded.status_code == 200, excluded.text

        after = client.get(url, params=params, headers=admin.headers)
        assert after.status_code == 200, after.text
        assert after.json()["raters"] == before.json()["raters"] - 2
        rows = jsonl_rows(client, admin, project_id, **params)
        # The spammers alone: every item, the first response, as they all voted.
        assert len(rows) == 40 and {pair_letters(r)[0] for r in rows} == {"A"}

    def test_dawid_skene_agreement_is_its_confidence(
        self, client: TestClient, admin: Persona, crowd: tuple[str, dict[str, str]]
    ) -> None:
        project_id, _ = crowd
        rows = jsonl_rows(client, admin, project_id, aggregation="dawid-skene", min_agreement=0.9)
        assert len(rows) == 40
        assert all(r["agreement"] >= 0.9 and r["n_annotations"] == 5 for r in rows)

    def test_dawid_skene_on_a_ranking_question_is_refused(
        self, client: TestClient, session: Session, admin: Persona
    ) -> None:
        (rater,) = raters(session, "ranker")
        lines = [{"prompt": "P?", "responses": ["x", "y", "z"]}]
        project_id = new_project(
            client, admin, [rater], lines, questions=[{"name": "rank", "kind": "ranking"}]
        )
        response = stream(client, admin, project_id, aggregation="dawid-skene")
        assert response.status_code == 422
        assert "ranking questions are aggregated by mean rank" in response.json()["detail"]


class TestRankings:
    @pytest.fixture
    def ranked(self, client: TestClient, session: Session, admin: Persona) -> str:
        """Three raters rank x, y, z: the mean places are x 1.33, y 2.0, z 2.67."""
        people = raters(session, "r1", "r2", "r3")
        lines = [{"external_id": "r", "prompt": "Rank these", "responses": ["x", "y", "z"]}]
        project_id = new_project(
            client, admin, people, lines, questions=[{"name": "rank", "kind": "ranking", "allow_ties": True}]
        )
        orders = {"r1": ["x", "y", "z"], "r2": ["x", "z", "y"], "r3": ["y", "x", "z"]}

        def decide(persona: Persona, prompt: Any, ids: dict[str, str]) -> dict[str, Any]:
            return {"answers": {"rank": [ids[text] for text in orders[persona.user.username]]}}

        for persona in people:
            judge_all(client, project_id, persona, decide)
        return project_id

    def test_all_pairs_follow_the_mean_rank_order(
        self, client: TestClient, admin: Persona, ranked: str
    ) -> None:
        rows = jsonl_rows(client, admin, ranked)
        assert [(r["chosen"], r["rejected"]) for r in rows] == [("x", "y"), ("x", "z"), ("y", "z")]
        # Share of raters agreeing with each consensus pair: x>y 2/3, x>z 3/3, y>z 2/3.
        assert rows[0]["agreement"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3, abs=1e-4)
        assert all(r["margin"] is None for r in rows)

    def test_best_pairs_put_the_best_against_each_other(
        self, client: TestClient, admin: Persona, ranked: str
    ) -> None:
        rows = jsonl_rows(client, admin, ranked, pairs="best")
        assert [(r["chosen"], r["rejected"]) for r in rows] == [("x", "y"), ("x", "z")]


class TestHuggingFaceAndTrl:
    """The files load with `datasets` offline, and the rows pass TRL's own format checks."""

    @pytest.fixture
    def offline(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
        import datasets

        monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
        return tmp_path

    def _save(self, client: TestClient, admin: Persona, project_id: str, path: Path, **params: Any) -> Path:
        response = stream(client, admin, project_id, **params)
        assert response.status_code == 200
        path.write_bytes(response.content)
        return path

    def test_jsonl_and_parquet_load_with_the_expected_columns(
        self, client: TestClient, admin: Persona, judged: Judged, offline: Path
    ) -> None:
        from datasets import load_dataset

        columns = [
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
        ]
        jsonl = self._save(client, admin, judged.project_id, offline / "train.jsonl")
        parquet = self._save(client, admin, judged.project_id, offline / "train.parquet", file="parquet")
        for builder, path in (("json", jsonl), ("parquet", parquet)):
            loaded = load_dataset(builder, data_files={"train": str(path)}, cache_dir=str(offline / "cache"))
            train = loaded["train"]
            assert train.column_names == columns
            assert train.num_rows == 4
            first = train[train["external_id"].index("item-0")]
            assert first["chosen"] == "Answer A to 0" and first["margin"] == 3.0

    def test_kto_parquet_label_is_boolean(
        self, client: TestClient, admin: Persona, judged: Judged, offline: Path
    ) -> None:
        from datasets import load_dataset

        parquet = self._save(
            client, admin, judged.project_id, offline / "kto.parquet", file="parquet", format="kto"
        )
        train = load_dataset("parquet", data_files=str(parquet), cache_dir=str(offline / "cache"))["train"]
        assert train.features["label"].dtype == "bool"
        assert sorted(set(train["label"])) == [False, True]

    @pytest.fixture
    def chat_project(self, client: TestClient, session: Session, admin: Persona) -> str:
        (rater,) = raters(session, "chatter")
        lines = [
            {"prompt": [{"role": "user", "content": f"Hi {i}"}], "responses": [f"Sure {i}", f"No {i}"]}
            for i in range(3)
        ]
        project_id = new_project(client, admin, [rater], lines, questions=PREFERENCE_ONLY)
        judge_all(
            client,
            project_id,
            rater,
            lambda p, prompt, ids: {"answers": {"overall": {"choice": next(iter(ids.values()))}}},
        )
        return project_id

    def test_rows_satisfy_trl_conversational_and_prompt_checks(
        self, client: TestClient, admin: Persona, judged: Judged, chat_project: str
    ) -> None:
        for project_id, conversational in ((judged.project_id, False), (chat_project, True)):
            for row in jsonl_rows(client, admin, project_id):
                # An explicit prompt of the same kind as the answers: TRL uses the row as it is.
                assert "prompt" in row
                assert is_conversational(row) is conversational
                assert is_conversational({"prompt": row["prompt"]}) is conversational
                assert maybe_extract_prompt(row) is row
            for row in jsonl_rows(client, admin, project_id, format="kto"):
                assert is_conversational(row) is conversational and isinstance(row["label"], bool)

    def test_implicit_chat_rows_give_back_the_prompt(
        self, client: TestClient, admin: Persona, chat_project: str
    ) -> None:
        explicit = jsonl_rows(client, admin, chat_project)
        implicit = jsonl_rows(client, admin, chat_project, format="preference-implicit")
        for plain, row in zip(explicit, implicit, strict=True):
            assert is_conversational(row)
            extracted = maybe_extract_prompt(row)
            assert extracted["prompt"] == plain["prompt"]
            assert extracted["chosen"] == plain["chosen"] and extracted["rejected"] == plain["rejected"]


# The two checks below restate TRL's `trl.data_utils.is_conversational` and `maybe_extract_prompt` (with its
# helper `extract_prompt`): TRL itself is not installed because it pulls in torch.


def is_conversational(example: dict[str, Any]) -> bool:
    """True when the first of TRL's known keys holds a list whose first entry has "role" and "content"."""
    keys = [key for key in ("prompt", "chosen", "rejected", "completion", "messages") if key in example]
    if not keys:
        return False
    value = example[keys[0]]
    if not isinstance(value, list):
        return False
    first = value[0]
    return isinstance(first, dict) and "role" in first and "content" in first


def maybe_extract_prompt(example: dict[str, Any]) -> dict[str, Any]:
    """The row unchanged when it has a prompt of the same kind as chosen; else the longest shared prefix."""
    if "chosen" not in example or "rejected" not in example:
        return example
    if "prompt" in example:
        chosen_conv = is_conversational({"chosen": example["chosen"]})
        prompt_conv = is_conversational({"prompt": example["prompt"]})
        if chosen_conv == prompt_conv:
            return example
    chosen, rejected = example["chosen"], example["rejected"]
    idx = 0
    for idx in range(min(len(chosen), len(rejected))):
        if chosen[idx] != rejected[idx]:
            if chosen[idx - 1] == " ":
                idx -= 1
            break
    return {"prompt": chosen[:idx], "chosen": chosen[idx:], "rejected": rejected[idx:]}


class TestPlan:
    def test_a_text_prompt_among_chat_prompts_becomes_one_user_turn(
        self, client: TestClient, session: Session, admin: Persona
    ) -> None:
        (rater,) = raters(session, "mixer")
        lines = [
            {"external_id": "text", "prompt": "Plain?", "responses": ["a1", "b1"]},
            {
                "external_id": "chat",
                "prompt": [{"role": "user", "content": "Chat?"}],
                "responses": ["a2", "b2"],
            },
        ]
        project_id = new_project(client, admin, [rater], lines, questions=PREFERENCE_ONLY)
        judge_all(
            client, project_id, rater, lambda p, prompt, ids: {"answers": {"overall": {"choice": "tie"}}}
        )
        rows = {r["external_id"]: r for r in jsonl_rows(client, admin, project_id, include_ties="true")}
        assert rows["text"]["prompt"] == [{"role": "user", "content": "Plain?"}]
        assert rows["chat"]["prompt"] == [{"role": "user", "content": "Chat?"}]
        project = session.get_one(Project, uuid.UUID(project_id))
        assert project.name == "Helpfulness pairs"
