"""Benchmark of the preference export on PostgreSQL: rows/s and peak memory against a plain COPY floor.

Run: python benchmarks/export.py [--annotations 1000000] [--json results.json] [--keep]

A fresh database gets one project of N/3 items judged by 3 raters each (prompts and responses recycled from
../shared/data/alpaca_eval_4models.jsonl when present, else synthetic; each prompt made unique so
de-duplication keeps every row). Each export runs in a child process that streams the file exactly as the
API does, so its peak resident memory (VmHWM) is the export's own. The floor is PostgreSQL COPY of the same
annotation rows to the client, timed in the same run; a second floor adds the prompt and response text the
export has to read as well. "dawid-skene preview again" is a server process's second preview of the same
votes, which reuses the first one's fit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SERVER = os.environ.get("PREFHUB_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
ALPACA = ROOT.parent / "shared" / "data" / "alpaca_eval_4models.jsonl"
RATERS_PER_ITEM = 3
N_RATERS = 60
SECRET = "b" * 40
QUESTIONS = [
    {
        "name": "overall",
        "kind": "preference",
        "strength": {"labels": ["negligibly better", "slightly better", "better", "significantly better"]},
    },
    {"name": "helpfulness", "kind": "rating", "min": 1, "max": 7, "required": False},
]


def _psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _admin_execute(sql: str) -> None:
    import psycopg

    with psycopg.connect(_psycopg_url(SERVER), autocommit=True) as connection:
        connection.execute(sql)


def create_database() -> tuple[str, str]:
    name = f"prefhub_exportbench_{uuid.uuid4().hex[:10]}"
    _admin_execute(f'CREATE DATABASE "{name}"')
    return SERVER.rsplit("/", 1)[0] + f"/{name}", name


def drop_database(name: str) -> None:
    _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ------------------------------------------------------------------------------------------------ data


def source_texts() -> list[tuple[str, list[tuple[str, str]]]]:
    """(prompt, [(model, text), ...]) from the real AlpacaEval outputs, or synthetic ones without them."""
    if ALPACA.exists():
        rows = [json.loads(line) for line in ALPACA.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [(r["prompt"], [(c["model"], c["text"]) for c in r["completions"]]) for r in rows]
    words = [
        "the",
        "model",
        "answers",
        "with",
        "a",
        "list",
        "of",
        "steps",
        "and",
        "a",
        "short",
        "summary",
        "of",
        "why",
        "each",
        "one",
        "matters",
    ]
    rng = random.Random(1)
    return [
        (
            f"Synthetic instruction {i}: " + " ".join(rng.choices(words, k=12)),
            [(f"model-{m}", " ".join(rng.choices(words, k=250))) for m in range(4)],
        )
        for i in range(800)
    ]


def _choice(rng: random.Random, truth: int) -> tuple[Any, int | None]:
    roll = rng.random()
    if roll < 0.75:
        return truth, rng.randint(1, 4)
    if roll < 0.90:
        return 1 - truth, rng.randint(1, 4)
    return ("tie" if roll < 0.97 else "both_bad"), None


def seed(url: str, n_annotations: int, text_repeat: int = 1) -> tuple[uuid.UUID, dict[str, float]]:
    """One project of n_annotations / 3 items with 3 annotations each, written with COPY; each response is
    its source text `text_repeat` times over, to measure long answers."""
    import psycopg

    from app.accounts import service as accounts_service
    from app.db import database, session_scope
    from app.migrations_state import upgrade_to_head
    from app.projects import service as projects_service
    from app.projects.schemas import ProjectCreate

    started = time.perf_counter()
    upgrade_to_head(url)
    database.configure(url)
    with session_scope() as session:
        admin = accounts_service.create_user(session, "bench-admin", "bench password 1234", "admin")
        project = projects_service.create_project(
            session,
            ProjectCreate.model_validate(
                {"name": "Export benchmark", "questions": QUESTIONS, "gold_rate": 0}
            ),
            admin,
        )
        project_id = project.id
    database.engine.dispose()

    sources = [
        (prompt, [(model, "\n\n".join([text] * text_repeat)) for model, text in completions])
        for prompt, completions in source_texts()
    ]
    n_items = max(n_annotations // RATERS_PER_ITEM, 1)
    rng = random.Random(7)
    now = datetime.now(UTC)
    raters = [uuid.uuid4() for _ in range(N_RATERS)]
    with psycopg.connect(_psycopg_url(url)) as connection, connection.cursor() as cursor:
        with cursor.copy(
            "COPY users (id, created_at, username, password_hash, role, is_active, session_epoch) FROM STDIN"
        ) as copy:
            for i, rater in enumerate(raters):
                copy.write_row((rater, now, f"rater{i:03d}", "!", "annotator", True, 0))
        with cursor.copy(
            "COPY project_memberships (id, created_at, project_id, user_id, status, qualification_attempt, "
            "last_seen_guidelines_version) FROM STDIN"
        ) as copy:
            for rater in raters:
                copy.write_row((uuid.uuid4(), now, project_id, rater, "active", 0, 1))
        batch = Batch()
        for i in range(n_items):
            add_item(batch, i, sources, project_id, raters, rng, now)
            if len(batch.annotations) >= 30_000:
                batch.flush(cursor)
        batch.flush(cursor)
        connection.commit()
    with psycopg.connect(_psycopg_url(url), autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
    seconds = time.perf_counter() - started
    return project_id, {"seed_seconds": seconds, "items": n_items, "annotations": n_items * RATERS_PER_ITEM}


def existing(url: str) -> tuple[uuid.UUID, dict[str, Any]]:
    """The benchmark project of a kept database, and its size."""
    import psycopg

    with psycopg.connect(_psycopg_url(url)) as connection:
        row = connection.execute(
            "SELECT p.id, (SELECT count(*) FROM items i WHERE i.project_id = p.id), "
            "(SELECT count(*) FROM annotations a WHERE a.project_id = p.id) FROM projects p "
            "WHERE p.name = 'Export benchmark'"
        ).fetchone()
    assert row is not None, "no benchmark project in that database"
    return row[0], {"seed_seconds": 0.0, "items": row[1], "annotations": row[2]}


class Batch:
    """Rows of every table, written with COPY in foreign-key order."""

    COPIES = (
        (
            "items",
            "COPY items (id, created_at, project_id, seq, external_id, dedup_key, content_hash, prompt, "
            "metadata, purpose, random_key, annotation_count, assigned_count, is_complete) FROM STDIN",
        ),
        (
            "responses",
            "COPY responses (id, item_id, position, source_position, text, model, metadata) FROM STDIN",
        ),
        (
            "assignments",
            "COPY assignments (id, created_at, project_id, item_id, user_id, attempt, purpose, status, "
            "display_order, expires_at, finished_at) FROM STDIN",
        ),
        (
            "annotations",
            "COPY annotations (id, created_at, assignment_id, project_id, item_id, user_id, purpose, "
            "answers, flags, time_spent_ms, display_order, guidelines_version, revision) FROM STDIN",
        ),
    )

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.responses: list[Any] = []
        self.assignments: list[Any] = []
        self.annotations: list[Any] = []

    def flush(self, cursor: Any) -> None:
        for attribute, statement in self.COPIES:
            rows = getattr(self, attribute)
            with cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
            rows.clear()


def add_item(
    batch: Batch,
    i: int,
    sources: list[tuple[str, list[tuple[str, str]]]],
    project_id: uuid.UUID,
    raters: list[uuid.UUID],
    rng: random.Random,
    now: datetime,
) -> None:
    """One item, two of its prompt's responses, and three raters' annotations with their assignments."""
    from psycopg.types.json import Jsonb

    prompt, completions = sources[i % len(sources)]
    item_id = uuid.uuid4()
    batch.items.append(
        (
            item_id,
            now,
            project_id,
            i + 1,
            f"bench-{i}",
            f"bench-{i}",
            f"{i:064x}",
            Jsonb(f"{prompt}\n\n(request #{i})"),
            Jsonb({}),
            "live",
            rng.randrange(1 << 30),
            RATERS_PER_ITEM,
            RATERS_PER_ITEM,
            True,
        )
    )
    first = i % len(completions)
    second = (first + 1 + (i // len(completions)) % (len(completions) - 1)) % len(completions)
    response_ids = [uuid.uuid4(), uuid.uuid4()]
    for position, source in enumerate((first, second)):
        model, text = completions[source]
        batch.responses.append((response_ids[position], item_id, position, source, text, model, Jsonb({})))
    truth = rng.randrange(2)
    for k in range(RATERS_PER_ITEM):
        rater = raters[(i * RATERS_PER_ITEM + k) % N_RATERS]
        order = [str(r) for r in (response_ids if rng.random() < 0.5 else response_ids[::-1])]
        choice, strength = _choice(rng, truth)
        answer: dict[str, Any] = {"choice": str(response_ids[choice]) if isinstance(choice, int) else choice}
        if strength is not None:
            answer["strength"] = strength
        answers: dict[str, Any] = {"overall": answer}
        if rng.random() < 0.3:
            answers["helpfulness"] = {str(r): rng.randint(1, 7) for r in response_ids}
        flags = ["unsafe"] if rng.random() < 0.005 else []
        assignment_id, created = uuid.uuid4(), now + timedelta(milliseconds=i * 3 + k)
        batch.assignments.append(
            (
                assignment_id,
                created,
                project_id,
                item_id,
                rater,
                0,
                "live",
                "submitted",
                Jsonb(order),
                created,
                created,
            )
        )
        batch.annotations.append(
            (
                uuid.uuid4(),
                created,
                assignment_id,
                project_id,
                item_id,
                rater,
                "live",
                Jsonb(answers),
                Jsonb(flags),
                rng.randint(4000, 90000),
                Jsonb(order),
                1,
                1,
            )
        )


# ------------------------------------------------------------------------------------------------ floor


FLOOR_ANNOTATIONS = (
    "COPY (SELECT a.item_id, a.user_id, a.answers, a.flags, a.guidelines_version FROM annotations a "
    "WHERE a.project_id = '{project}' AND a.purpose = 'live') TO STDOUT"
)
FLOOR_TEXTS = (
    "COPY (SELECT i.id, i.external_id, i.prompt FROM items i WHERE i.project_id = '{project}') TO STDOUT",
    "COPY (SELECT r.item_id, r.id, r.position, r.text, r.model FROM responses r JOIN items i ON i.id = r.item_id "
    "WHERE i.project_id = '{project}') TO STDOUT",
)


def copy_out(url: str, statements: list[str], project_id: uuid.UUID) -> dict[str, float]:
    """Seconds and bytes to COPY the given queries to this client, best of two runs."""
    import psycopg

    best = float("inf")
    size = 0
    for _ in range(2):
        with psycopg.connect(_psycopg_url(url)) as connection, connection.cursor() as cursor:
            started = time.perf_counter()
            size = 0
            for statement in statements:
                with cursor.copy(statement.format(project=project_id)) as copy:
                    for block in copy:
                        size += len(block)
            best = min(best, time.perf_counter() - started)
    return {"seconds": best, "bytes": size}


# ------------------------------------------------------------------------------------------------ child


def _memory_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(url: str, project_id: str, file_type: str, aggregation: str, out: str) -> None:
    """Stream one export to a file exactly as the API does, then report time and memory as JSON."""
    from app.db import database
    from app.exports import service
    from app.exports.schemas import StreamOptions
    from app.projects.models import Project

    database.configure(url)
    previewing = file_type.startswith("preview")
    with database.new_session() as session:
        project = session.get_one(Project, uuid.UUID(project_id))
        plan = service.plan_export(
            session,
            project,
            StreamOptions(
                format="preference", file="jsonl" if previewing else file_type, aggregation=aggregation
            ),
            streamed=True,
        )
    if file_type == "preview-again":
        # What the export page's next preview of the same votes costs a server process.
        service.preview_export(plan)
    baseline = _memory_mb("VmRSS")
    before = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = before.ru_utime + before.ru_stime
    started = time.perf_counter()
    size = 0
    if previewing:
        # The export page's funnel: every count of the build, no row written.
        Path(out).write_text(str(service.preview_export(plan).rows_total))
    else:
        with open(out, "wb") as handle:
            for chunk in service.stream_export(plan):
                handle.write(chunk)
                size += len(chunk)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    result = {
        "seconds": seconds,
        "cpu_seconds": after.ru_utime + after.ru_stime - cpu_before,
        "bytes": size,
        "baseline_mb": baseline,
        "peak_mb": _memory_mb("VmHWM"),
    }
    print(json.dumps(result))


def count_rows(path: Path, file_type: str) -> int:
    if file_type.startswith("preview"):
        return int(path.read_text())
    if file_type == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    with path.open("rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))


def run_export(
    url: str, project_id: uuid.UUID, file_type: str, workdir: Path, aggregation: str = "majority"
) -> dict[str, Any]:
    out = workdir / f"export.{file_type}"
    env = {
        **os.environ,
        "PREFHUB_SECRET_KEY": SECRET,
        "PREFHUB_DATA_DIR": str(workdir),
        "PREFHUB_LOG_JSON": "false",
    }
    command = [
        sys.executable,
        __file__,
        "--child",
        file_type,
        "--aggregation",
        aggregation,
        "--database-url",
        url,
        "--project",
        str(project_id),
        "--out",
        str(out),
    ]
    result = json.loads(subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout)
    result["rows"] = count_rows(out, file_type)
    out.unlink()
    return result


# ------------------------------------------------------------------------------------------------ main

# Name in the table: (file type, aggregation) of a preference export.
EXPORTS = {
    "preference jsonl": ("jsonl", "majority"),
    "preference parquet": ("parquet", "majority"),
    "dawid-skene jsonl": ("jsonl", "dawid-skene"),
    "preview (counts only)": ("preview", "majority"),
    "dawid-skene preview": ("preview", "dawid-skene"),
    "dawid-skene preview again": ("preview-again", "dawid-skene"),
}


def report(results: dict[str, Any]) -> None:
    floor = results["floor_annotations"]["seconds"]
    full = floor + results["floor_texts"]["seconds"]
    print(
        f"\n{results['annotations']:,} annotations on {results['items']:,} items "
        f"(seeded in {results['seed_seconds']:.0f} s)"
    )
    print(
        f"floor: COPY annotation rows {floor:.2f} s ({results['floor_annotations']['bytes'] / 2**20:.0f} MiB); "
        f"with prompt and response text {full:.2f} s"
    )
    print(
        f"{'export':<26}{'seconds':>9}{'cpu s':>7}{'rows':>10}{'rows/s':>10}{'MiB out':>9}{'peak MiB':>10}"
        f"{'x floor':>9}{'x text floor':>14}"
    )
    for name in EXPORTS:
        r = results[name]
        print(
            f"{name:<26}{r['seconds']:>9.2f}{r['cpu_seconds']:>7.1f}{r['rows']:>10,}"
            f"{r['rows'] / r['seconds']:>10,.0f}{r['bytes'] / 2**20:>9.0f}{r['peak_mb']:>10.0f}"
            f"{r['seconds'] / floor:>9.1f}{r['seconds'] / full:>14.1f}"
        )
    print(
        "peak MiB is the child process's VmHWM, interpreter and libraries included "
        f"({results['preference jsonl']['baseline_mb']:.0f} MiB before the export started); cpu s is the exporting "
        "process's own CPU time, the rest of its wall time is spent waiting on PostgreSQL or the disk."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotations", type=int, default=1_000_000)
    parser.add_argument(
        "--text-repeat",
        type=int,
        default=1,
        help="each response is its text this many times over (long answers)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--database", help="reuse a database an earlier --keep run left (skips seeding)")
    parser.add_argument(
        "--child", choices=["jsonl", "parquet", "preview", "preview-again"], help=argparse.SUPPRESS
    )
    parser.add_argument("--aggregation", default="majority", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--project", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.database_url, args.project, args.child, args.aggregation, args.out)
        return
    # A stopped run still drops its database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    os.environ.update(
        {"PREFHUB_SECRET_KEY": SECRET, "PREFHUB_LOG_JSON": "false", "PREFHUB_LOG_LEVEL": "WARNING"}
    )
    if args.database:
        url, name = SERVER.rsplit("/", 1)[0] + f"/{args.database}", ""
    else:
        url, name = create_database()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["PREFHUB_DATA_DIR"] = tmp
            project_id, seeded = (
                existing(url) if args.database else seed(url, args.annotations, args.text_repeat)
            )
            results: dict[str, Any] = {**seeded}
            results["floor_annotations"] = copy_out(url, [FLOOR_ANNOTATIONS], project_id)
            results["floor_texts"] = copy_out(url, list(FLOOR_TEXTS), project_id)
            for name, (file_type, aggregation) in EXPORTS.items():
                results[name] = run_export(url, project_id, file_type, Path(tmp), aggregation)
            results["machine"] = {"cores": os.cpu_count(), "python": platform.python_version()}
        report(results)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    finally:
        if name and not args.keep:
            drop_database(name)


if __name__ == "__main__":
    main()
