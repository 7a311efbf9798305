"""The export command of the command line: split files and a dataset card written into a folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from app.exports.schemas import ExportOptions


def add_export_command(sub: Any) -> None:
    export = sub.add_parser("export", help="export a cleaned preference dataset into a folder")
    export.add_argument("project", help="project slug or id")
    export.add_argument(
        "--format",
        default="preference",
        choices=["preference", "preference-implicit", "kto", "ratings", "raw"],
    )
    export.add_argument("--out", required=True, help="folder for the split files and README.md")
    export.add_argument("--file", default="jsonl", choices=["jsonl", "parquet", "csv"])
    export.add_argument("--aggregation", default="majority", choices=["majority", "dawid-skene"])
    export.add_argument("--question", help="preference or ranking question (default: the first)")
    export.add_argument("--split", help='e.g. "train=0.9,test=0.1" (default: everything in train)')
    export.add_argument("--seed", type=int, default=0, help="seed of the split hash")
    export.add_argument("--min-annotations", type=int, default=1)
    export.add_argument("--min-agreement", type=float, default=0.0)
    export.add_argument("--include-ties", action="store_true")
    export.add_argument("--include-flagged", action="store_true")
    export.add_argument(
        "--pairs", default="all", choices=["all", "best"], help="pairs from ranking questions"
    )
    export.add_argument("--margin-map", help='strength to margin, e.g. "1:0,2:1,3:2,4:3"')
    export.add_argument("--score-question", help="rating question for the score columns (default: the first)")
    export.set_defaults(func=cmd_export)


def _options(args: argparse.Namespace) -> ExportOptions:
    from pydantic import ValidationError

    values = {
        "format": args.format,
        "file": args.file,
        "aggregation": args.aggregation,
        "question": args.question,
        "split": args.split,
        "seed": args.seed,
        "min_annotations": args.min_annotations,
        "min_agreement": args.min_agreement,
        "include_ties": args.include_ties,
        "include_flagged": args.include_flagged,
        "pairs": args.pairs,
        "margin_map": args.margin_map,
        "score_question": args.score_question,
    }
    try:
        return ExportOptions.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in error.errors())
        sys.exit(f"error: {problems}")


def _find_project(session: Any, ref: str) -> Any:
    from app.errors import AppError
    from app.projects import service as projects_service

    try:
        return projects_service.find_project(session, ref)
    except AppError:
        sys.exit(f"error: no project {ref!r} (give its slug or id)")


def cmd_export(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from app.config import get_settings
    from app.db import database, session_scope
    from app.errors import AppError
    from app.exports import service

    options = _options(args)
    database.configure(get_settings().database_url)
    out = Path(args.out)
    try:
        with session_scope(write=False) as session, tqdm(total=1000, desc="export", unit="‰") as bar:
            project = _find_project(session, args.project)
            plan = service.plan_export(session, project, options)

            def progress(fraction: float) -> None:
                bar.n = int(fraction * 1000)
                bar.refresh()

            built = service.write_dataset(session, plan, out, progress)
            bar.n = 1000
            bar.refresh()
    except AppError as error:
        sys.exit(f"error: {error.message}")
    counts = built.counts
    files = ", ".join(f"{name} ({counts['rows'].get(split, 0)} rows)" for split, name in built.files)
    print(f"wrote {files} and README.md to {out}")
    dropped = ", ".join(f"{key} {n}" for key, n in counts["dropped"].items())
    if dropped:
        print(f"dropped: {dropped}")
