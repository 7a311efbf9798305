"""Unruly load: raters and admins who do what real ones do, all at once, checked for 5xx and for loss.

Each rater works from several clients at once (tabs), submits twice, corrects an answer from two tabs, skips,
sends malformed answers and asks for assignments that do not exist; two admins meanwhile edit the guidelines,
exclude and re-include raters, pause and resume the project, lower the number of raters per item and raise
it back, preview exports, read agreement and start snapshots. Every answer must be a 2xx or a 4xx that says
what is wrong; the data must keep the load test's invariants once the project is back as it was.

python -m benchmarks.unruly [--backend postgresql|sqlite] [--seconds 60]
Loopback only, bounded in time. Exits non-zero on any 5xx, dropped connection, 4xx without a message,
snapshot that did not finish, or broken invariant.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from collections import Counter
from typing import Any

import httpx

from benchmarks.common import (
    async_client,
    drop_database,
    fresh_database,
    machine_line,
    print_table,
    seed_project,
    start_server,
)
from benchmarks.load import Tally, broken_invariants, verify

ADMIN = {"username": "bench-admin", "password": "bench password 1"}


class Unruly:
    """What came back, per kind of call and status."""

    def __init__(self) -> None:
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.failures: list[str] = []
        self.acknowledged: set[str] = set()
        self.dropped = 0

    async def call(self, client: httpx.AsyncClient, kind: str, method: str, url: str, **kw: Any) -> Any:
        try:
            response = await client.request(method, url, **kw)
        except httpx.TransportError as error:
            self.dropped += 1
            self.failures.append(f"{kind}: connection {error.__class__.__name__}")
            return None
        self.statuses[(kind, response.status_code)] += 1
        if response.status_code >= 500:
            self.failures.append(f"{kind}: {response.status_code} {response.text[:160]}")
        elif response.status_code >= 400 and not _says_what_is_wrong(response):
            self.failures.append(f"{kind}: {response.status_code} without a message")
        return response


def _says_what_is_wrong(response: httpx.Response) -> bool:
    try:
        return bool(response.json().get("detail"))
    except ValueError:
        return False


def _malformed(choice: str) -> Any:
    return random.choice(
        [
            '{"answers": ',
            {"answers": []},
            {"answers": {"overall": {"choice": "not a response"}}},
            {"answers": {"overall": {"choice": str(uuid.uuid4())}}},
            {"answers": {"overall": {"choice": choice, "strength": 99}}},
            {"answers": {"overall": {"choice": choice}}, "rationale": "x" * 30_000},
        ]
    )


async def rater(
    client: httpx.AsyncClient, token: str, project_id: str, until: float, seen: Unruly, seed: int
) -> None:
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {token}"}
    while time.monotonic() < until:
        leased = await seen.call(
            client, "next", "POST", f"/api/v1/projects/{project_id}/assignments/next", headers=headers
        )
        if leased is None or leased.status_code != 200:
            # No work now (204), excluded for a moment (403): come back later.
            await asyncio.sleep(0.3)
            continue
        assignment = leased.json()
        at = f"/api/v1/assignments/{assignment['assignment_id']}"
        choice = rng.choice(assignment["item"]["responses"])["id"]
        roll = rng.random()
        if roll < 0.1:
            await seen.call(
                client, "skip", "POST", f"{at}/skip", json={"reason": "cannot_judge"}, headers=headers
            )
            continue
        if roll < 0.2:
            body = _malformed(choice)
            kw: dict[str, Any] = {"content": body} if isinstance(body, str) else {"json": body}
            await seen.call(client, "malformed submit", "POST", f"{at}/annotation", headers=headers, **kw)
        if roll > 0.97:
            await seen.call(
                client,
                "unknown assignment",
                "POST",
                f"/api/v1/assignments/{uuid.uuid4()}/annotation",
                json={"answers": {"overall": {"choice": choice}}},
                headers=headers,
            )
        answer = {"answers": {"overall": {"choice": choice, "strength": rng.randint(1, 3)}}}
        # One submit, or the same one twice at once (a double click, two tabs).
        twice = rng.random() < 0.25
        submitted = await asyncio.gather(
            *(
                seen.call(client, "submit", "POST", f"{at}/annotation", json=answer, headers=headers)
                for _ in range(2 if twice else 1)
            )
        )
        stored = [r.json()["annotation_id"] for r in submitted if r is not None and r.status_code == 201]
        seen.acknowledged.update(stored)
        if stored and rng.random() < 0.2:
            correction = {**answer, "rationale": f"on second thought {rng.random()}"}
            await asyncio.gather(
                *(
                    seen.call(
                        client,
                        "correct",
                        "PATCH",
                        f"/api/v1/annotations/{stored[0]}",
                        json=correction,
                        headers=headers,
                    )
                    for _ in range(rng.choice([1, 2]))
                )
            )


async def admin(
    client: httpx.AsyncClient,
    project_id: str,
    rater_ids: list[uuid.UUID],
    per_item: int,
    until: float,
    seen: Unruly,
    seed: int,
) -> None:
    rng = random.Random(seed)
    token = (await client.post("/api/v1/auth/token", data=ADMIN)).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    project = f"/api/v1/projects/{project_id}"
    step = 0
    while time.monotonic() < until:
        step += 1
        action = rng.choice(
            ["guidelines", "exclude", "pause", "per item", "preview", "agreement", "raters", "snapshot"]
        )
        if action == "guidelines":
            await seen.call(
                client,
                "edit guidelines",
                "PATCH",
                project,
                json={"guidelines": f"Rule {step}."},
                headers=headers,
            )
        elif action == "exclude":
            rater_id = rng.choice(rater_ids)
            await seen.call(
                client,
                "exclude rater",
                "POST",
                f"{project}/raters/{rater_id}/exclude",
                json={"reason": "check"},
                headers=headers,
            )
            await asyncio.sleep(rng.random())
            await seen.call(
                client, "include rater", "POST", f"{project}/raters/{rater_id}/include", headers=headers
            )
        elif action in ("pause", "per item"):
            # A change and its undoing, a moment apart: each admin leaves the project as it found it, so the
            # invariants hold at the end whatever the two admins' changes interleave to.
            field, changed, restored = (
                ("status", "paused", "active")
                if action == "pause"
                else ("annotations_per_item", per_item - 1, per_item)
            )
            for value in (changed, restored):
                await seen.call(client, action, "PATCH", project, json={field: value}, headers=headers)
                await asyncio.sleep(rng.random())
        elif action == "preview":
            aggregation = rng.choice(["majority", "dawid-skene"])
            await seen.call(
                client,
                "export preview",
                "GET",
                f"{project}/export/preview?aggregation={aggregation}",
                headers=headers,
            )
        elif action == "agreement":
            await seen.call(client, "agreement", "GET", f"{project}/agreement", headers=headers)
        elif action == "raters":
            await seen.call(client, "rater list", "GET", f"{project}/raters", headers=headers)
        else:
            await seen.call(
                client,
                "snapshot",
                "POST",
                f"{project}/exports",
                json={"format": "preference"},
                headers=headers,
            )
        await asyncio.sleep(rng.random() * 0.3)


async def snapshot_outcomes(client: httpx.AsyncClient, project_id: str, wait_s: float = 60.0) -> Counter[str]:
    """How the snapshots the admins started ended, once none is queued or running (or the wait is over)."""
    token = (await client.post("/api/v1/auth/token", data=ADMIN)).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + wait_s
    while True:
        listed = (await client.get(f"/api/v1/projects/{project_id}/exports", headers=headers)).json()
        outcomes = Counter(export["status"] for export in listed["items"])
        if not (outcomes["queued"] or outcomes["running"]) or time.monotonic() > deadline:
            return outcomes
        await asyncio.sleep(0.5)


async def run(
    url: str, seeded: Any, tabs: int, per_item: int, seconds: float, seen: Unruly
) -> tuple[float, Counter[str]]:
    until = time.monotonic() + seconds
    project_id = str(seeded.project_id)
    async with async_client(url, len(seeded.tokens) * tabs + 2) as client:
        started = time.perf_counter()
        await asyncio.gather(
            *(admin(client, project_id, seeded.user_ids, per_item, until, seen, n) for n in range(2)),
            *(
                rater(client, token, project_id, until, seen, i * tabs + tab)
                for i, token in enumerate(seeded.tokens)
                for tab in range(tabs)
            ),
        )
        elapsed = time.perf_counter() - started
        return elapsed, await snapshot_outcomes(client, project_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--workers", type=int, default=2, help="app processes (SQLite runs one)")
    parser.add_argument("--raters", type=int, default=12)
    parser.add_argument("--tabs", type=int, default=3, help="clients per rater, all working at once")
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--per-item", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.per_item < 2:
        parser.error("--per-item must be at least 2: the admins lower it by one and raise it back")
    url = fresh_database(args.backend, "prefhub_unruly")
    seeded = seed_project(url, args.items, args.raters, annotations_per_item=args.per_item)
    server = start_server(url, args.workers if args.backend == "postgresql" else 1)
    seen = Unruly()
    try:
        elapsed, snapshots = asyncio.run(
            run(server.url, seeded, args.tabs, args.per_item, args.seconds, seen)
        )
    finally:
        server.stop()
    tally = Tally(target=0, acknowledged=sorted(seen.acknowledged))
    checks = verify(url, seeded.project_id, args.per_item, tally)
    drop_database(args.backend, url)
    calls = [
        {"call": kind, "status": status, "count": count}
        for (kind, status), count in sorted(seen.statuses.items())
    ]
    print(
        f"Unruly load · {machine_line()} · {args.backend} · {args.raters} raters x {args.tabs} tabs, 2 admins"
    )
    print_table(f"Answers in {elapsed:.0f} s", calls)
    print_table("Invariants", [checks])
    print(f"snapshots: {dict(sorted(snapshots.items()))}")
    # Snapshots are built in the background: their failures never reach the admin's request.
    seen.failures += [f"{n} snapshot(s) {status}" for status, n in snapshots.items() if status != "done"]
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(
                {"calls": calls, "invariants": checks, "snapshots": snapshots, "failures": seen.failures},
                handle,
                indent=2,
            )
    broken = broken_invariants(checks)
    for failure in seen.failures[:20]:
        print(f"FAIL {failure}")
    if seen.failures or broken:
        print(f"FAIL: {len(seen.failures)} bad answers; broken invariants: {broken or 'none'}")
        sys.exit(1)
    print("OK: every answer a 2xx or a 4xx with a message; nothing lost, nothing duplicated")


if __name__ == "__main__":
    main()
