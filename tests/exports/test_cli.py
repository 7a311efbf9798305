"""`prefhub export`: split files and the dataset card written into a folder, from a committed database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from app.db import create_db_engine
from app.items.models import Item, Response
from app.migrations_state import upgrade_to_head
from tests.conftest import ROOT
from tests.exports.helpers import insert_vote
from tests.ui_helpers import seed_project


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite file with a project of six items judged by one rater: the first response wins."""
    url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'cli.db'}"
    upgrade_to_head(url)
    engine = create_db_engine(url)
    sessions = sessionmaker(bind=engine, expire_on_commit=False)
    lines = [
        {"external_id": f"c{i}", "prompt": f"Prompt {i}?", "responses": [f"good {i}", f"bad {i}"]}
        for i in range(6)
    ]
    project, (rater,) = seed_project(sessions, lines, usernames=("cli_rater",))
    with sessions() as session:
        for item in session.scalars(sa.select(Item).where(Item.project_id == project.id)):
            ids = [
                str(r)
                for r in session.scalars(
                    sa.select(Response.id).where(Response.item_id == item.id).order_by(Response.position)
                )
            ]
            insert_vote(
                session, project.id, item.id, rater.id, ids, {"overall": {"choice": ids[0], "strength": 4}}
            )
        session.commit()
    engine.dispose()
    return url


def _run(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PREFHUB_DATABASE_URL": url,
        "PREFHUB_DATA_DIR": str(tmp_path),
        "PREFHUB_SECRET_KEY": "c" * 40,
    }
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "export", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_export_writes_split_files_and_card(database: str, tmp_path: Path) -> None:
    url = database
    out = tmp_path / "dataset"
    done = _run(
        url,
        tmp_path,
        "browser-project",
        "--out",
        str(out),
        "--split",
        "train=0.5,test=0.5",
        "--margin-map",
        "1:0,2:1,3:2,4:3",
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "test.jsonl", "train.jsonl"]
    rows = [
        json.loads(line)
        for name in ("train.jsonl", "test.jsonl")
        for line in (out / name).read_text().splitlines()
    ]
    assert sorted(r["chosen"] for r in rows) == [f"good {i}" for i in range(6)]
    assert all(r["margin"] == 3.0 for r in rows)
    assert "export" in done.stderr  # the progress bar
    assert "train.jsonl" in done.stdout and "README.md" in done.stdout
    assert "license: other" in (out / "README.md").read_text()


def test_export_parquet_kto_has_a_row_per_response(database: str, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    url = database
    out = tmp_path / "pq"
    done = _run(url, tmp_path, "browser-project", "--out", str(out), "--file", "parquet", "--format", "kto")
    assert done.returncode == 0, done.stderr
    table = pq.read_table(out / "train.parquet")
    assert table.column_names[:3] == ["prompt", "completion", "label"]
    assert table.num_rows == 12


def test_bad_option_and_unknown_project_exit_with_a_message(database: str, tmp_path: Path) -> None:
    url = database
    bad = _run(url, tmp_path, "browser-project", "--out", str(tmp_path / "x"), "--split", "train=0.4")
    assert bad.returncode != 0 and "split fractions must add up to 1" in bad.stderr
    missing = _run(url, tmp_path, "no-such-project", "--out", str(tmp_path / "y"))
    assert missing.returncode != 0 and "no project 'no-such-project'" in missing.stderr
    wrong = _run(url, tmp_path, "browser-project", "--out", str(tmp_path / "z"), "--question", "helpfulness")
    assert wrong.returncode != 0 and "rating question" in wrong.stderr


def test_dry_run_prints_the_funnel_and_writes_nothing(database: str, tmp_path: Path) -> None:
    url = database
    done = _run(url, tmp_path, "browser-project", "--dry-run", "--split", "train=0.5,test=0.5", "--seed", "3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # Six items, each judged once with the first response chosen: nothing is filtered out.
    counts = {line.rsplit(maxsplit=1)[0].strip(): int(line.split()[-1]) for line in lines[1:8]}
    assert counts == {
        "items with annotations (items)": 6,
        "enough annotations (items)": 6,
        "agreement reached (items)": 6,
        "not a tie (items)": 6,
        "not flagged (items)": 6,
        "rows (rows)": 6,
        "rows without duplicates (rows)": 6,
    }
    assert "annotations 6, raters 1" in done.stdout
    train, test = (int(part.split()[1]) for part in lines[-1].removeprefix("rows per split: ").split(", "))
    assert train + test == 6
    assert list(tmp_path.iterdir()) == [], "a dry run writes no files"
    strict = _run(url, tmp_path, "browser-project", "--dry-run", "--min-annotations", "2")
    row = next(line.split() for line in strict.stdout.splitlines() if line.startswith("enough annotations"))
    assert row[-2:] == ["0", "-6"], strict.stdout
    assert "dropped: too_few_annotations 6" in strict.stdout


def test_export_without_out_or_dry_run_says_what_to_give(database: str, tmp_path: Path) -> None:
    done = _run(database, tmp_path, "browser-project")
    assert done.returncode != 0 and "give --out DIR" in done.stderr
