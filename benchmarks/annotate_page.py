"""Size and server time of the annotate page, over real HTTP, on a project built from the real data.

python -m benchmarks.annotate_page [--backend sqlite|postgresql] [--requests 200] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from typing import Any

import httpx

from benchmarks.common import (
    drop_database,
    fresh_database,
    machine_line,
    percentiles,
    print_table,
    seed_project,
    start_server,
)


def measure(url: str, username: str, project_id: str, requests: int) -> dict[str, Any]:
    with httpx.Client(base_url=url, timeout=30) as client:
        login = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert token is not None
        client.post(
            "/login",
            data={"username": username, "password": "bench password 1", "csrf_token": token.group(1)},
        )
        page = client.get(f"/projects/{project_id}/annotate")
        page.raise_for_status()
        assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
        asset_bytes = sum(len(client.get(path).content) for path in set(assets))
        latencies = []
        for _ in range(requests):
            started = time.perf_counter()
            client.get(f"/projects/{project_id}/annotate").raise_for_status()
            latencies.append(time.perf_counter() - started)
    timing = percentiles(latencies)
    return {
        "html KiB": len(page.content) / 1024,
        "assets KiB": asset_bytes / 1024,
        "assets": len(set(assets)),
        "p50 ms": timing["p50"],
        "p95 ms": timing["p95"],
        "p99 ms": timing["p99"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", default="postgresql")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--json")
    args = parser.parse_args()
    url = fresh_database(args.backend, "prefhub_page")
    seeded = seed_project(url, 1000, 1)
    server = start_server(url, 1)
    try:
        row = {
            "backend": args.backend,
            **measure(server.url, "rater0", str(seeded.project_id), args.requests),
        }
    finally:
        server.stop()
        drop_database(args.backend, url)
    print(f"Annotate page · {machine_line()} · one worker, the same lease each time (a reload)")
    print_table("Annotate page", [row])
    if args.json:
        with open(args.json, "w") as handle:
            json.dump([row], handle, indent=2)


if __name__ == "__main__":
    main()
