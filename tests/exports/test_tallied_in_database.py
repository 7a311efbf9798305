"""PostgreSQL tallies preference exports itself; its rows and counts equal the general pipeline's."""

from __future__ import annotations

import math
import uuid
from typing import Any

import numpy as np
import pytest
from sqlalchemy.orm import Session

from app.exports import aggregate, pipeline, repository
from app.exports.pipeline import Tally, iter_rows
from app.exports.schemas import ExportOptions
from app.exports.service import plan_export
from app.items.models import Item, Response
from app.projects.models import Project
from tests.conftest import _backend
from tests.exports.conftest import Judged
from tests.exports.helpers import insert_vote, raters

pytestmark = pytest.mark.skipif(
    _backend() != "postgresql",
    reason="only PostgreSQL tallies preference exports; SQLite runs the general pipeline",
)

OPTION_SETS: list[dict[str, Any]] = [
    {"format": "preference"},
    {"format": "preference", "include_ties": True, "include_flagged": True},
    {"format": "preference-implicit", "margin_map": "1:0.1,2:0.2,3:0.7"},
    {"format": "kto", "include_ties": True},
    {"format": "preference", "min_annotations": 3, "min_agreement": 0.7},
    {"format": "preference", "split": "train=0.5,test=0.5", "seed": 3},
    {"format": "preference", "aggregation": "dawid-skene"},
    {"format": "kto", "aggregation": "dawid-skene", "min_agreement": 0.6, "include_ties": True},
]


def _collect(session: Session, project: Project, options: dict[str, Any], *, in_database: bool) -> Any:
    plan = plan_export(session, project, ExportOptions.model_validate(options))
    assert pipeline.tallied_in_database(session, plan)
    tally = Tally()
    with pytest.MonkeyPatch.context() as patch:
        if not in_database:
            patch.setattr(pipeline, "tallied_in_database", lambda *_: False)
        rows = list(iter_rows(session, plan, tally, collect=True))
    return rows, tally


def _same_rows(tallied: list[Any], general: list[Any]) -> None:
    assert [split for split, _ in tallied] == [split for split, _ in general]
    for (_, mine), (_, theirs) in zip(tallied, general, strict=True):
        assert mine.keys() == theirs.keys()
        for key, value in mine.items():
            if isinstance(value, float) and isinstance(theirs[key], float):
                assert math.isclose(value, theirs[key], rel_tol=1e-12), key
            else:
                assert value == theirs[key], key


def _add_odd_votes(session: Session, project_id: uuid.UUID) -> None:
    """Votes the API would refuse but old data may hold: no choice, an unknown id, ratings that are not numbers."""
    items = list(session.query(Item).filter(Item.project_id == project_id).order_by(Item.seq).limit(3))
    odd = raters(session, "odd_one", "odd_two")
    for item in items:
        ids = [
            str(r.id)
            for r in session.query(Response).filter(Response.item_id == item.id).order_by(Response.position)
        ]
        insert_vote(
            session, project_id, item.id, odd[0].id, ids, {"helpfulness": {ids[0]: "7", ids[1]: True}}
        )
        insert_vote(
            session,
            project_id,
            item.id,
            odd[1].id,
            ids[::-1],
            {"overall": {"choice": str(uuid.uuid4()), "strength": 4}, "helpfulness": {ids[1]: 2.5}},
        )
    session.commit()


@pytest.mark.parametrize("options", OPTION_SETS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_database_tallies_give_the_rows_and_counts_of_the_general_pipeline(
    session: Session, judged: Judged, options: dict[str, Any]
) -> None:
    project_id = uuid.UUID(judged.project_id)
    _add_odd_votes(session, project_id)
    project = session.get_one(Project, project_id)

    tallied, tallied_counts = _collect(session, project, options, in_database=True)
    general, general_counts = _collect(session, project, options, in_database=False)

    assert general, "the fixture yields rows, so the comparison means something"
    _same_rows(tallied, general)
    assert tallied_counts.to_dict() == general_counts.to_dict()
    # The card's agreement figures read the same votes in the same order.
    assert tallied_counts.labels is not None and general_counts.labels is not None
    for mine, theirs in zip(tallied_counts.labels.arrays(), general_counts.labels.arrays(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert tallied_counts.labels.unit_items == general_counts.labels.unit_items


def test_dawid_skene_votes_read_in_small_blocks_are_the_votes_the_general_pipeline_collects(
    session: Session, judged: Judged, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Blocks of the binary COPY end wherever its data does and spills wherever the votes fill one: both must
    # keep every item whole, as adding the votes an item at a time does.
    monkeypatch.setattr(repository, "CLASS_RECORDS_PER_BLOCK", 2)
    monkeypatch.setattr(aggregate, "SPILL_VOTES", 5)
    project_id = uuid.UUID(judged.project_id)
    _add_odd_votes(session, project_id)
    project = session.get_one(Project, project_id)
    options = {"format": "preference", "aggregation": "dawid-skene"}

    tallied, tallied_counts = _collect(session, project, options, in_database=True)
    general, general_counts = _collect(session, project, options, in_database=False)

    _same_rows(tallied, general)
    mine, theirs = tallied_counts.labels, general_counts.labels
    assert mine is not None and theirs is not None
    assert [block[:2] for block in mine.blocks()] == [block[:2] for block in theirs.blocks()]
    assert len(list(mine.blocks())) > 3
    for my_values, their_values in zip(mine.arrays(), theirs.arrays(), strict=True):
        np.testing.assert_array_equal(my_values, their_values)
    assert mine.unit_items == theirs.unit_items and len(mine.raters) == len(theirs.raters)
