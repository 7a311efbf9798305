"""Shared pieces of the benchmarks: fresh databases, bulk seeding from the real data, servers, clients, tables."""

from __future__ import annotations

import asyncio
import io
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import numpy as np
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
ALPACA = ROOT.parent / "shared" / "data" / "alpaca_eval_4models.jsonl"
POSTGRES_SERVER = os.environ.get(
    "PREFHUB_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
QUESTIONS = [
    {"name": "overall", "kind": "preference", "strength": {"labels": ["slightly", "better", "much"]}}
]
TEXT_CHARS = 300


def machine_line() -> str:
    pages = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{os.cpu_count()} cores, {pages / 1024**3:.1f} GiB RAM, {platform.python_implementation()} {platform.python_version()}"


def fresh_database(backend: str, name: str) -> str:
    """An empty database migrated to head; PostgreSQL databases are dropped and made anew."""
    from app.migrations_state import upgrade_to_head

    if backend == "postgresql":
        admin = sa.create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin.dispose()
        url = POSTGRES_SERVER.rsplit("/", 1)[0] + f"/{name}"
    else:
        path = Path(os.environ.get("TMPDIR", "/tmp")) / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    upgrade_to_head(url)
    return url


def drop_database(backend: str, url: str) -> None:
    if backend == "postgresql":
        admin = sa.create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
        admin.dispose()
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)


def source_texts() -> list[tuple[str, list[tuple[str, str]]]]:
    """(prompt, [(model, text)]) from the real AlpacaEval file, or generated text where it is absent."""
    if ALPACA.exists():
        rows = [json.loads(line) for line in ALPACA.read_text().splitlines()]
        return [(r["prompt"], [(c["model"], c["text"][:TEXT_CHARS]) for c in r["completions"]]) for r in rows]
    rng = random.Random(0)
    words = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "model",
        "answer",
        "prompt",
        "judge",
        "better",
        "worse",
        "clear",
        "helpful",
    ]
    return [
        (
            f"Question {i}: " + " ".join(rng.choices(words, k=12)),
            [(f"model-{m}", " ".join(rng.choices(words, k=50))) for m in range(4)],
        )
        for i in range(800)
    ]


@dataclass
class Seeded:
    project_id: uuid.UUID
    tokens: list[str]
    user_ids: list[uuid.UUID] = field(default_factory=list)


def seed_project(
    url: str, n_items: int, n_raters: int, *, annotations_per_item: int = 3, lease_minutes: int = 30
) -> Seeded:
    """A project, its raters (with API tokens) and n_items pair items, written in bulk."""
    from app.accounts import service as accounts_service
    from app.db import database, session_scope
    from app.projects import service as projects_service
    from app.projects.schemas import ProjectCreate

    database.configure(url)
    with session_scope() as session:
        admin = accounts_service.create_user(session, "bench-admin", "bench password 1", "admin")
        project = projects_service.create_project(
            session,
            ProjectCreate.model_validate(
                {
                    "name": "Benchmark",
                    "questions": QUESTIONS,
                    "annotations_per_item": annotations_per_item,
                    "gold_rate": 0,
                    "lease_minutes": lease_minutes,
                }
            ),
            admin,
        )
        tokens, user_ids = [], []
        for i in range(n_raters):
            user = accounts_service.create_user(session, f"rater{i}", "bench password 1", "annotator")
            projects_service.add_member(session, project, admin, user_id=user.id)
            tokens.append(accounts_service.issue_token(session, user, "bench")[1])
            user_ids.append(user.id)
        project_id = project.id
    engine = database.engine
    if engine.dialect.name == "postgresql":
        _copy_items(engine, project_id, n_items)
    else:
        _insert_items(engine, project_id, n_items)
    return Seeded(project_id=project_id, tokens=tokens, user_ids=user_ids)


def _item_rows(
    project_id: uuid.UUID, n_items: int
) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    sources = source_texts()
    rng = random.Random(42)
    now = datetime.now(UTC)
    for i in range(n_items):
        prompt, completions = sources[i % len(sources)]
        a, b = rng.sample(range(len(completions)), 2)
        item_id = uuid.uuid4()
        item = (
            item_id,
            project_id,
            i + 1,
            f"bench-{i}",
            f"id:bench-{i}",
            f"{i:064x}",
            None,
            json.dumps(prompt),
            "{}",
            "live",
            None,
            rng.randrange(2**31),
            0,
            0,
            False,
            now,
        )
        responses = [
            (uuid.uuid4(), item_id, pos, src, completions[src][1], completions[src][0], "{}")
            for pos, src in enumerate((a, b))
        ]
        yield item, responses


ITEM_COLUMNS = (
    "id",
    "project_id",
    "seq",
    "external_id",
    "dedup_key",
    "content_hash",
    "source_group",
    "prompt",
    "metadata",
    "purpose",
    "gold",
    "random_key",
    "annotation_count",
    "assigned_count",
    "is_complete",
    "created_at",
)
RESPONSE_COLUMNS = ("id", "item_id", "position", "source_position", "text", "model", "metadata")


def _copy_items(engine: sa.Engine, project_id: uuid.UUID, n_items: int) -> None:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        responses: list[tuple[Any, ...]] = []
        with cursor.copy(f"COPY items ({', '.join(ITEM_COLUMNS)}) FROM STDIN") as copy:
            for item, item_responses in _item_rows(project_id, n_items):
                copy.write_row(item)
                responses.extend(item_responses)
        with cursor.copy(f"COPY responses ({', '.join(RESPONSE_COLUMNS)}) FROM STDIN") as copy:
            for row in responses:
                copy.write_row(row)
        raw.commit()
        cursor.execute("ANALYZE items")
        cursor.execute("ANALYZE responses")
        raw.commit()
    finally:
        raw.close()


def _insert_items(engine: sa.Engine, project_id: uuid.UUID, n_items: int) -> None:
    from app.items.models import Item, Response

    item_sql = sa.insert(Item.__table__)
    response_sql = sa.insert(Response.__table__)
    batch_items: list[dict[str, Any]] = []
    batch_responses: list[dict[str, Any]] = []
    with engine.begin() as connection:
        for item, responses in _item_rows(project_id, n_items):
            row = dict(zip(ITEM_COLUMNS, item, strict=True))
            row["prompt"] = json.loads(row["prompt"])
            row["metadata"] = {}
            batch_items.append(row)
            for response in responses:
                r = dict(zip(RESPONSE_COLUMNS, response, strict=True))
                r["metadata"] = {}
                batch_responses.append(r)
            if len(batch_items) >= 20_000:
                connection.execute(item_sql, batch_items)
                connection.execute(response_sql, batch_responses)
                batch_items, batch_responses = [], []
        if batch_items:
            connection.execute(item_sql, batch_items)
            connection.execute(response_sql, batch_responses)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def worker_pids(self) -> list[int]:
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.process.pid)], capture_output=True, text=True
        )
        return [int(p) for p in out.stdout.split()]


def _server_command(app: str, port: int, workers: int) -> list[str]:
    if app == "app.asgi:app":
        return [
            sys.executable,
            "-m",
            "app.cli",
            "serve",
            "--no-migrate",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
    return [
        sys.executable,
        "-m",
        "gunicorn",
        app,
        "--worker-class",
        "app.serving.FairUvicornWorker",
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
    ]


def start_server(
    url: str, workers: int, *, app: str = "app.asgi:app", extra_env: dict[str, str] | None = None
) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "PREFHUB_DATABASE_URL": url,
        "PREFHUB_ENV": "development",
        "PREFHUB_LOG_LEVEL": "WARNING",
        "PREFHUB_DB_POOL_SIZE": "20",
        **(extra_env or {}),
    }
    process = subprocess.Popen(
        _server_command(app, port, workers),
        cwd=ROOT,
        env=env,
    )
    server = Server(process=process, url=f"http://127.0.0.1:{port}")
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.stop()
    raise RuntimeError("server did not start")


def async_client(url: str, concurrency: int) -> httpx.AsyncClient:
    """A client with TCP_NODELAY: without it, a POST's separate header and body writes meet delayed ACKs (40 ms)."""
    transport = httpx.AsyncHTTPTransport(
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        limits=httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4),
    )
    return httpx.AsyncClient(base_url=url, transport=transport, timeout=30)


def lean_client(url: str, concurrency: int) -> aiohttp.ClientSession:
    """The hot-path benchmark's client. It shares two cores with the server and PostgreSQL, so it must cost
    little: httpx took 1.45 ms of CPU per request, a quarter of the machine at full load; aiohttp takes
    0.3 ms. aiohttp sets TCP_NODELAY on its connections itself."""
    return aiohttp.ClientSession(
        base_url=url,
        connector=aiohttp.TCPConnector(limit=concurrency + 4),
        timeout=aiohttp.ClientTimeout(total=30),
    )


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time the processes have used so far (processes gone since count as 0)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def postgres_pids() -> list[int]:
    """The local PostgreSQL server's processes (its backends included)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if handle.read().startswith(b"postgres"):
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan")}
    arr = np.asarray(values) * 1000
    return {
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "p99": float(np.percentile(arr, 99)),
    }


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n### {title}\n")
    if not rows:
        print("(no rows)")
        return
    headers = list(rows[0])
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---" for _ in headers) + "|")
    for row in rows:
        cells = [f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()]
        print("| " + " | ".join(cells) + " |")


def run_async(coro: Any) -> Any:
    return asyncio.run(coro)


def io_bytes(lines: list[str]) -> io.BytesIO:
    return io.BytesIO("\n".join(lines).encode())
