"""Next + submit cycles per second and per-call latency, with 1 and 8 simulated annotators, against a floor.

Besides throughput, each row gives the CPU a request costs the app workers and PostgreSQL, read from /proc
around the measured phase, and the floor's: it counts the work a request takes rather than the time it waits
for cores others use. "vs floor (CPU)" is the floor's CPU per request over ours.

Run: python -m benchmarks.annotation_hot_path [--backends postgresql,sqlite] [--sizes 10000,1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson

from benchmarks.common import (
    Server,
    cpu_seconds,
    drop_database,
    fresh_database,
    lean_client,
    machine_line,
    percentiles,
    postgres_pids,
    print_table,
    seed_project,
    start_server,
)


async def _annotator(
    client: aiohttp.ClientSession, token: str, project_id: str, until: float, stats: dict[str, list[float]]
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    submit_headers = {**headers, "Content-Type": "application/json"}
    while time.perf_counter() < until:
        started = time.perf_counter()
        async with client.post(
            f"/api/v1/projects/{project_id}/assignments/next", headers=headers
        ) as response:
            body, status = await response.read(), response.status
        stats["next"].append(time.perf_counter() - started)
        if status != 200:
            stats["errors"].append(status)
            return
        assignment = orjson.loads(body)
        answer = {"answers": {"overall": {"choice": assignment["item"]["responses"][0]["id"], "strength": 2}}}
        started = time.perf_counter()
        async with client.post(
            f"/api/v1/assignments/{assignment['assignment_id']}/annotation",
            data=orjson.dumps(answer),
            headers=submit_headers,
        ) as submitted:
            await submitted.read()
        stats["submit"].append(time.perf_counter() - started)
        if submitted.status != 201:
            stats["errors"].append(submitted.status)


async def drive(
    url: str,
    tokens: list[str],
    project_id: str,
    seconds: float,
    warmup: float = 2.0,
    cpu: Callable[[], tuple[float, float]] | None = None,
) -> dict[str, Any]:
    """cpu, when given, returns the app's and the database's CPU seconds so far: read around the measured
    phase, they give CPU per request."""
    # The warm-up runs on connections of its own: the measured ones are opened once every worker is up and
    # warm, as they would be in service, so the workers share them out evenly.
    async with lean_client(url, len(tokens)) as client:
        warm: dict[str, list[float]] = {"next": [], "submit": [], "errors": []}
        await asyncio.gather(
            *(_annotator(client, t, project_id, time.perf_counter() + warmup, warm) for t in tokens)
        )
    async with lean_client(url, len(tokens)) as client:
        stats: dict[str, list[float]] = {"next": [], "submit": [], "errors": []}
        cpu_before = cpu() if cpu else (0.0, 0.0)
        started = time.perf_counter()
        await asyncio.gather(*(_annotator(client, t, project_id, started + seconds, stats) for t in tokens))
        elapsed = time.perf_counter() - started
        cpu_after = cpu() if cpu else (0.0, 0.0)
    requests = max(1, len(stats["next"]) + len(stats["submit"]))
    return {
        "app_cpu_ms": 1000 * (cpu_after[0] - cpu_before[0]) / requests,
        "db_cpu_ms": 1000 * (cpu_after[1] - cpu_before[1]) / requests,
        "cycles_per_s": len(stats["submit"]) / elapsed,
        "requests_per_s": (len(stats["next"]) + len(stats["submit"])) / elapsed,
        "next": percentiles(stats["next"]),
        "submit": percentiles(stats["submit"]),
        "errors": len(stats["errors"]),
    }


async def drive_floor(
    url: str, concurrency: int, seconds: float, cpu: Callable[[], tuple[float, float]]
) -> tuple[float, float]:
    """Requests per second, and CPU milliseconds per request (app and database together)."""
    count = 0

    async def loop(client: aiohttp.ClientSession, until: float) -> None:
        nonlocal count
        while time.perf_counter() < until:
            async with client.post("/floor") as response:
                await response.read()
                response.raise_for_status()
            count += 1

    async with lean_client(url, concurrency) as client:
        await asyncio.gather(*(loop(client, time.perf_counter() + 1.0) for _ in range(concurrency)))
    async with lean_client(url, concurrency) as client:
        count = 0
        cpu_before = sum(cpu())
        started = time.perf_counter()
        await asyncio.gather(*(loop(client, started + seconds) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        return count / elapsed, 1000 * (sum(cpu()) - cpu_before) / max(1, count)


def _cpu_reader(server: Server, backend: str) -> Callable[[], tuple[float, float]]:
    """The app workers' and (on PostgreSQL) the database server's CPU seconds; SQLite runs inside the app."""
    workers = server.worker_pids() or [server.process.pid]

    def read() -> tuple[float, float]:
        return cpu_seconds(workers), cpu_seconds(postgres_pids()) if backend == "postgresql" else 0.0

    return read


def run_case(
    backend: str, size: int, concurrencies: list[int], seconds: float, workers: int
) -> list[dict[str, Any]]:
    url = fresh_database(backend, f"prefhub_bench_{backend[:2]}_{size}")
    seeded_at = time.perf_counter()
    seeded = seed_project(url, size, max(concurrencies))
    seed_s = time.perf_counter() - seeded_at
    rows = []
    server = start_server(url, workers)
    floor = start_server(url, workers, app="benchmarks.floor_app:app")
    try:
        for concurrency in concurrencies:
            result = asyncio.run(
                drive(
                    server.url,
                    seeded.tokens[:concurrency],
                    str(seeded.project_id),
                    seconds,
                    cpu=_cpu_reader(server, backend),
                )
            )
            floor_rps, floor_cpu_ms = asyncio.run(
                drive_floor(floor.url, concurrency, seconds, _cpu_reader(floor, backend))
            )
            cpu_ms = result["app_cpu_ms"] + result["db_cpu_ms"]
            rows.append(
                {
                    "backend": backend,
                    "items": size,
                    "annotators": concurrency,
                    "workers": workers,
                    "cycles/s": result["cycles_per_s"],
                    "req/s": result["requests_per_s"],
                    "floor req/s": floor_rps,
                    "vs floor": result["requests_per_s"] / floor_rps,
                    "next p50": result["next"]["p50"],
                    "next p95": result["next"]["p95"],
                    "next p99": result["next"]["p99"],
                    "submit p50": result["submit"]["p50"],
                    "submit p95": result["submit"]["p95"],
                    "submit p99": result["submit"]["p99"],
                    "app CPU ms/req": result["app_cpu_ms"],
                    "db CPU ms/req": result["db_cpu_ms"],
                    "floor CPU ms/req": floor_cpu_ms,
                    "vs floor (CPU)": floor_cpu_ms / cpu_ms if cpu_ms else float("nan"),
                    "errors": result["errors"],
                    "seed s": seed_s,
                }
            )
    finally:
        server.stop()
        floor.stop()
        drop_database(backend, url)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--concurrency", default="1,8")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", help="write the rows as JSON to this path")
    args = parser.parse_args()
    print(f"Annotation hot path · {machine_line()} · {args.workers} app workers · latencies in ms")
    rows: list[dict[str, Any]] = []
    for backend in args.backends.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            rows.extend(
                run_case(
                    backend,
                    size,
                    [int(c) for c in args.concurrency.split(",")],
                    args.seconds,
                    args.workers if backend == "postgresql" else 1,
                )
            )
            print_table("results so far", rows[-len(args.concurrency.split(",")) :])
    print_table("Annotation hot path", rows)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
