"""Load and fault test: many simulated annotators against several workers on PostgreSQL, checked for loss.

python -m benchmarks.load --workers 4 --annotators 64 --submissions 20000 [--fault kill-worker|restart-postgres]
Loopback only, bounded in count and time. Exits non-zero when an invariant fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import sqlalchemy as sa

from benchmarks.common import (
    async_client,
    drop_database,
    fresh_database,
    machine_line,
    percentiles,
    print_table,
    seed_project,
    start_server,
)


@dataclass
class Tally:
    target: int
    acknowledged: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    connection_errors: int = 0
    next_latency: list[float] = field(default_factory=list)
    submit_latency: list[float] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    abandoned: int = 0

    @property
    def done(self) -> bool:
        return len(self.acknowledged) >= self.target


async def _call(
    client: httpx.AsyncClient,
    tally: Tally,
    method: str,
    url: str,
    dropped: list[str] | None = None,
    **kwargs: Any,
) -> httpx.Response | None:
    """One request, retried on connection errors (noted in `dropped`) and 503 (a dying worker or a
    restarting database)."""
    dropped = [] if dropped is None else dropped
    for attempt in range(60):
        try:
            response = await client.request(method, url, **kwargs)
        except httpx.TransportError:
            tally.connection_errors += 1
            dropped.append(url)
            await asyncio.sleep(min(0.05 * 2**attempt, 1.0))
            continue
        tally.statuses[response.status_code] += 1
        if response.status_code >= 500:
            tally.server_errors.append(f"{response.status_code} {url} {response.text[:120]}")
            if response.status_code == 503:
                await asyncio.sleep(min(0.05 * 2**attempt, 1.0))
                continue
        return response
    return None


async def annotator(
    client: httpx.AsyncClient,
    token: str,
    project_id: str,
    tally: Tally,
    deadline: float,
    abandon_on_disconnect: bool = False,
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random(token)
    while not tally.done and time.monotonic() < deadline:
        started = time.perf_counter()
        dropped: list[str] = []
        response = await _call(
            client, tally, "POST", f"/api/v1/projects/{project_id}/assignments/next", dropped, headers=headers
        )
        tally.next_latency.append(time.perf_counter() - started)
        if abandon_on_disconnect and dropped:
            # This rater's worker died under it: the rater walks away, and whatever lease the dead worker
            # handed out stays behind, to come back to the pool once it expires.
            tally.abandoned += 1
            return
        if response is None or response.status_code == 204:
            return
        if response.status_code != 200:
            continue
        assignment = response.json()
        responses = assignment["item"]["responses"]
        choice = rng.choice([r["id"] for r in responses] + ["tie"])
        body = {"answers": {"overall": {"choice": choice}}, "time_spent_ms": rng.randrange(2000, 60000)}
        submit_headers = {**headers, "Idempotency-Key": f"load-{assignment['assignment_id']}"}
        started = time.perf_counter()
        submitted = await _call(
            client,
            tally,
            "POST",
            f"/api/v1/assignments/{assignment['assignment_id']}/annotation",
            json=body,
            headers=submit_headers,
        )
        tally.submit_latency.append(time.perf_counter() - started)
        if submitted is not None and submitted.status_code == 201:
            tally.acknowledged.append(submitted.json()["annotation_id"])


async def inject_fault(fault: str, server: Any, tally: Tally) -> list[str]:
    events: list[str] = []
    while len(tally.acknowledged) < tally.target * 0.3:
        await asyncio.sleep(0.2)
    if fault == "kill-worker":
        victim = random.choice(server.worker_pids())
        os.kill(victim, signal.SIGKILL)
        events.append(f"SIGKILL worker {victim} at {len(tally.acknowledged)} acknowledged")
        await asyncio.sleep(3)
        events.append(f"workers now {server.worker_pids()}")
    elif fault == "restart-postgres":
        cluster = sorted(os.listdir("/etc/postgresql"))[0]
        started = time.perf_counter()
        # In a thread: the simulated raters keep calling while the database is down, and must see 503s.
        await asyncio.to_thread(
            subprocess.run,
            ["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "restart"],
            check=True,
        )
        events.append(
            f"PostgreSQL restarted in {time.perf_counter() - started:.1f}s at "
            f"{len(tally.acknowledged)} acknowledged"
        )
    return events


async def run_load(
    url: str, tokens: list[str], project_id: str, target: int, limit_s: float, fault: str, server: Any
) -> tuple[Tally, float, list[str]]:
    tally = Tally(target=target)
    deadline = time.monotonic() + limit_s
    async with async_client(url, len(tokens)) as client:
        started = time.perf_counter()
        fault_task = asyncio.create_task(inject_fault(fault, server, tally)) if fault != "none" else None
        abandon = fault == "kill-worker"
        await asyncio.gather(*(annotator(client, t, project_id, tally, deadline, abandon) for t in tokens))
        elapsed = time.perf_counter() - started
        events = await fault_task if fault_task else []
    return tally, elapsed, events


# Raters who take an item at the end of the run and never come back.
WALK_AWAY = 8


def open_leases(url: str, project_id: uuid.UUID) -> tuple[int, Any]:
    """How many leases are still held, and when the last of them expires."""
    from app.annotation.models import Assignment

    engine = sa.create_engine(url)
    with engine.connect() as connection:
        count, last = connection.execute(
            sa.select(sa.func.count(), sa.func.max(Assignment.expires_at)).where(
                Assignment.project_id == project_id, Assignment.status == "leased"
            )
        ).one()
    engine.dispose()
    return count, last


async def return_leases_after_expiry(
    server_url: str, url: str, project_id: uuid.UUID, tokens: list[str]
) -> dict[str, Any]:
    """Leases left behind come back to the pool once they expire: WALK_AWAY raters take an item and close
    the page (and in the kill-worker run, raters whose worker died walk away too); wait for the last lease
    to expire, ask for work once, and count what is left."""
    async with async_client(server_url, WALK_AWAY) as client:
        for token in tokens[1 : WALK_AWAY + 1]:
            await client.post(
                f"/api/v1/projects/{project_id}/assignments/next",
                headers={"Authorization": f"Bearer {token}"},
            )
    held, last_expiry = open_leases(url, project_id)
    if held:
        await asyncio.sleep(max(0.0, (last_expiry - datetime.now(UTC)).total_seconds()) + 1.0)
    async with async_client(server_url, 1) as client:
        response = await client.post(
            f"/api/v1/projects/{project_id}/assignments/next",
            headers={"Authorization": f"Bearer {tokens[0]}"},
        )
    still_held, _ = open_leases(url, project_id)
    # The one call above may itself take a fresh lease.
    return {
        "leases held at the end": held,
        "held after expiry and one call": still_held,
        "next status": response.status_code,
    }


def verify(url: str, project_id: uuid.UUID, per_item: int, tally: Tally) -> dict[str, Any]:
    from app.annotation.models import Annotation, Assignment
    from app.items.models import Item

    engine = sa.create_engine(url.replace("postgresql+psycopg", "postgresql+psycopg"))
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(Annotation.id, Annotation.item_id, Annotation.user_id).where(
                Annotation.project_id == project_id
            )
        ).all()
        items = connection.execute(
            sa.select(Item.id, Item.annotation_count, Item.is_complete, Item.assigned_count).where(
                Item.project_id == project_id
            )
        ).all()
        leased = Counter(
            connection.execute(
                sa.select(Assignment.item_id).where(
                    Assignment.project_id == project_id, Assignment.status == "leased"
                )
            ).scalars()
        )
    engine.dispose()
    stored = {str(r[0]) for r in rows}
    counts = Counter(r[1] for r in rows)
    complete = [i for i in items if i.is_complete]
    return {
        "acknowledged": len(tally.acknowledged),
        "stored": len(rows),
        "lost": len(set(tally.acknowledged) - stored),
        "duplicate (item, rater)": len(rows) - len({(r[1], r[2]) for r in rows}),
        "items complete": len(complete),
        "complete items not exactly per_item": sum(1 for i in complete if counts[i.id] != per_item),
        "items over per_item": sum(1 for c in counts.values() if c > per_item),
        "counter drift": sum(1 for i in items if counts.get(i.id, 0) != i.annotation_count),
        # Every slot taken on an item is an annotation or a lease still held: none stayed with a dead lease.
        "slot drift": sum(1 for i in items if i.assigned_count != counts.get(i.id, 0) + leased[i.id]),
    }


# The checks of verify() that must come out zero.
INVARIANTS = (
    "lost",
    "duplicate (item, rater)",
    "complete items not exactly per_item",
    "items over per_item",
    "counter drift",
    "slot drift",
)


def broken_invariants(checks: dict[str, Any]) -> list[str]:
    return [name for name in INVARIANTS if checks[name]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--annotators", type=int, default=64)
    parser.add_argument("--submissions", type=int, default=20_000)
    parser.add_argument("--per-item", type=int, default=3)
    parser.add_argument("--fault", choices=["none", "kill-worker", "restart-postgres"], default="none")
    parser.add_argument(
        "--time-limit", type=float, default=900.0, help="stop the load after this many seconds"
    )
    parser.add_argument("--json")
    args = parser.parse_args()
    items = args.submissions // args.per_item + args.annotators * 2
    url = fresh_database("postgresql", "prefhub_load")
    seeded = seed_project(url, items, args.annotators, annotations_per_item=args.per_item, lease_minutes=1)
    server = start_server(url, args.workers)
    try:
        tally, elapsed, events = asyncio.run(
            run_load(
                server.url,
                seeded.tokens,
                str(seeded.project_id),
                args.submissions,
                args.time_limit,
                args.fault,
                server,
            )
        )
        alive = server.process.poll() is None
        leases = asyncio.run(return_leases_after_expiry(server.url, url, seeded.project_id, seeded.tokens))
    finally:
        server.stop()
    checks = verify(url, seeded.project_id, args.per_item, tally)
    drop_database("postgresql", url)
    fives = sum(n for status, n in tally.statuses.items() if status >= 500)
    summary = {
        "workers": args.workers,
        "annotators": args.annotators,
        "fault": args.fault,
        "submissions/s": len(tally.acknowledged) / elapsed,
        "seconds": elapsed,
        "next p50": percentiles(tally.next_latency)["p50"],
        "next p99": percentiles(tally.next_latency)["p99"],
        "submit p50": percentiles(tally.submit_latency)["p50"],
        "submit p99": percentiles(tally.submit_latency)["p99"],
        "5xx": fives,
        "connection errors": tally.connection_errors,
        "walked away after a dropped connection": tally.abandoned,
    }
    print(f"Load test · {machine_line()}")
    for event in events:
        print(f"  fault: {event}")
    print_table("Throughput and latency (ms)", [summary])
    print_table("Invariants", [checks])
    print_table("Leases left behind return to the pool after expiry", [leases])
    print(f"status counts: {dict(sorted(tally.statuses.items()))}; server alive: {alive}")
    failures = broken_invariants(checks)
    if leases["leases held at the end"] < WALK_AWAY:
        failures.append(f"only {leases['leases held at the end']} leases left behind, expected {WALK_AWAY}+")
    if leases["held after expiry and one call"] > 1:
        failures.append(f"{leases['held after expiry and one call']} leases still held after they expired")
    if args.fault != "restart-postgres" and fives:
        failures.append(f"{fives} server errors: {tally.server_errors[:3]}")
    if args.fault == "restart-postgres" and any(not e.startswith("503") for e in tally.server_errors):
        failures.append(
            f"non-503 server errors: {[e for e in tally.server_errors if not e.startswith('503')][:3]}"
        )
    if args.fault == "restart-postgres" and not tally.statuses.get(503):
        failures.append("no request saw the outage (no 503): the restart was not exercised")
    if checks["acknowledged"] < args.submissions:
        failures.append(
            f"only {checks['acknowledged']} of {args.submissions} submissions within the time limit"
        )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(
                {
                    "summary": summary,
                    "checks": checks,
                    "leases": leases,
                    "events": events,
                    "failures": failures,
                },
                handle,
                indent=2,
            )
    if failures:
        print("FAILED: " + "; ".join(failures))
        sys.exit(1)
    print(
        "OK: nothing lost, nothing duplicated, every finished item has exactly", args.per_item, "annotations"
    )


if __name__ == "__main__":
    main()
