"""Import speed: items per second from JSON Lines through the import service, against a PostgreSQL COPY floor.

python -m benchmarks.import_items [--lines 100000] [--backends postgresql,sqlite] [--json PATH]
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import time
from typing import Any

from benchmarks.common import (
    drop_database,
    fresh_database,
    machine_line,
    print_table,
    seed_project,
    source_texts,
)


def jsonl_lines(n: int) -> bytes:
    sources = source_texts()
    out = io.BytesIO()
    for i in range(n):
        prompt, completions = sources[i % len(sources)]
        line = {
            "external_id": f"line-{i}",
            "prompt": prompt,
            "responses": [{"text": text, "model": model} for model, text in completions[:2]],
        }
        out.write(json.dumps(line, ensure_ascii=False).encode() + b"\n")
    return out.getvalue()


def time_service_import(url: str, body: bytes) -> tuple[float, int, float]:
    from app.accounts.models import User
    from app.db import database, session_scope
    from app.items import service
    from app.items.parsing import iter_jsonl_lines
    from app.projects.models import Project

    seeded = seed_project(url, 0, 0)
    database.configure(url)
    started = time.perf_counter()
    with session_scope() as session:
        project = session.get_one(Project, seeded.project_id)
        admin = session.query(User).filter_by(username="bench-admin").one()
        chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
        tally = service.import_items(
            session, project, iter_jsonl_lines(chunks), admin, options=service.import_options(project)
        )
    elapsed = time.perf_counter() - started
    # Peak resident memory of the whole process (it also holds the generated file in memory).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return elapsed, tally.created, peak


def time_copy_floor(url: str, body: bytes) -> tuple[float, float]:
    """COPY the same item and response rows into copies of the real tables (with their indexes): the floor.

    The rows are built before the clock starts, so the floor is the database's and the driver's share alone.
    Temporary tables write no WAL and check no foreign keys, so the same COPY into the real tables (rolled
    back afterwards) is timed too: the least any import into them can cost.
    """
    import uuid

    import sqlalchemy as sa

    items, responses = [], []
    for seq, raw_line in enumerate(body.splitlines(), start=1):
        line = json.loads(raw_line)
        item_id = uuid.uuid4()
        items.append(
            (
                item_id,
                seq,
                line["external_id"],
                f"id:{line['external_id']}",
                "0" * 64,
                json.dumps(line["prompt"]),
                "{}",
                "live",
                seq,
                0,
                0,
                False,
            )
        )
        for position, response in enumerate(line["responses"]):
            responses.append(
                (uuid.uuid4(), item_id, position, position, response["text"], response["model"], "{}")
            )
    engine = sa.create_engine(url)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("CREATE TEMP TABLE floor_items (LIKE items INCLUDING DEFAULTS INCLUDING INDEXES)")
        cursor.execute(
            "CREATE TEMP TABLE floor_responses (LIKE responses INCLUDING DEFAULTS INCLUDING INDEXES)"
        )
        cursor.execute("SELECT id FROM projects LIMIT 1")
        project_id = cursor.fetchone()[0]
        raw.commit()
        floor = _copy_rows(raw, "floor_", items, responses, project_id, commit=True)
        # Other keys than the imported items' (the unique constraints), and nothing kept.
        items = [(*row[:2], f"floor-{row[2]}", f"floor-{row[3]}", *row[4:]) for row in items]
        real = _copy_rows(raw, "", items, responses, project_id, commit=False)
        raw.rollback()
        return floor, real
    finally:
        raw.close()
        engine.dispose()


def _copy_rows(
    raw: Any,
    prefix: str,
    items: list[tuple[Any, ...]],
    responses: list[tuple[Any, ...]],
    project_id: Any,
    *,
    commit: bool,
) -> float:
    cursor = raw.cursor()
    started = time.perf_counter()
    with cursor.copy(
        f"COPY {prefix}items (id, seq, external_id, dedup_key, content_hash, prompt, metadata, purpose,"
        " random_key, annotation_count, assigned_count, is_complete, project_id, created_at)"
        " FROM STDIN"
    ) as copy:
        for row in items:
            copy.write_row((*row, project_id, "2026-01-01T00:00:00+00:00"))
    with cursor.copy(
        f"COPY {prefix}responses (id, item_id, position, source_position, text, model, metadata) FROM STDIN"
    ) as copy:
        for row in responses:
            copy.write_row(row)
    if commit:
        raw.commit()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--json")
    args = parser.parse_args()
    body = jsonl_lines(args.lines)
    print(f"Import · {machine_line()} · {args.lines} lines, {len(body) / 1024**2:.0f} MiB")
    rows: list[dict[str, Any]] = []
    for backend in args.backends.split(","):
        url = fresh_database(backend, f"prefhub_import_{backend[:2]}")
        elapsed, created, peak = time_service_import(url, body)
        row: dict[str, Any] = {
            "backend": backend,
            "lines": args.lines,
            "created": created,
            "seconds": elapsed,
            "items/s": created / elapsed,
            "peak RSS MiB": peak,
        }
        if backend == "postgresql":
            floor, real = time_copy_floor(url, body)
            row.update(
                {
                    "COPY s": floor,
                    "vs COPY": elapsed / floor,
                    "COPY real s": real,
                    "vs COPY real": elapsed / real,
                }
            )
        rows.append(row)
        drop_database(backend, url)
    print_table("Import from JSON Lines", rows)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
