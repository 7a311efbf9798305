"""`make bench`: every benchmark in one run, each printing its own table, collected into one JSON file.

Sizes are the issues' targets by default; --quick scales them down for a smoke run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import ROOT, machine_line

FULL = [
    ("annotation hot path", "benchmarks.annotation_hot_path", ["--sizes", "10000,1000000"]),
    ("import", "benchmarks.import_items", ["--lines", "100000"]),
    ("annotate page", "benchmarks.annotate_page", []),
    ("agreement", "benchmarks.agreement", []),
    ("agreement statistics", "benchmarks.agreement_stats", []),
    ("export", "benchmarks.export", []),
    ("load, 4 workers", "benchmarks.load", ["--workers", "4"]),
]
QUICK = [
    ("annotation hot path", "benchmarks.annotation_hot_path", ["--sizes", "10000", "--seconds", "5"]),
    ("import", "benchmarks.import_items", ["--lines", "5000"]),
    ("annotate page", "benchmarks.annotate_page", ["--requests", "30"]),
    ("agreement", "benchmarks.agreement", ["--annotations", "50000"]),
    ("agreement statistics", "benchmarks.agreement_stats", ["--n-ratings", "100000"]),
    ("export", "benchmarks.export", ["--annotations", "50000"]),
    ("load, 4 workers", "benchmarks.load", ["--workers", "4", "--annotators", "16", "--submissions", "1000"]),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results.json"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", help="comma-separated names to run")
    args = parser.parse_args()
    print(f"PrefHub benchmarks · {machine_line()}")
    results: dict[str, object] = {"machine": machine_line()}
    failed = []
    for name, module, extra in QUICK if args.quick else FULL:
        if args.only and name not in args.only.split(","):
            continue
        if not (ROOT / (module.replace(".", "/") + ".py")).exists():
            print(f"\n## {name}: not present, skipped")
            continue
        print(f"\n## {name}", flush=True)
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            done = subprocess.run([sys.executable, "-m", module, *extra, "--json", out.name], cwd=ROOT)
            text = Path(out.name).read_text()
            results[name] = json.loads(text) if text else None
        if done.returncode != 0:
            failed.append(name)
    Path(args.json).write_text(json.dumps(results, indent=2))
    print(f"\nresults written to {args.json}")
    if failed:
        sys.exit(f"benchmarks that failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
