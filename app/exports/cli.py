"""The export command of the command line: split files and a dataset card written into a folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from app.exports.schemas import ExportOptions, ExportPreview

STEP_NAMES = {
    "annotated": "items with annotations",
    "enough_annotations": "enough annotations",
    "agreement": "agreement reached",
    "ties": "not a tie",
    "flags": "not flagged",
    "rows_before_dedup": "rows",
    "rows": "rows without duplicates",
}


def add_export_command(sub: Any) -> None:
    export = sub.add_parser("export", help="export a cleaned preference dataset into a folder")
    export.add_argument("project", help="project slug or id")
    export.add_argument(
        "--format",
        default="preference",
        choices=["preference", "preference-implicit", "kto", "ratings", "raw"],
    )
    export.add_argument("--out", help="folder for the split files and README.md")
    export.add_argument(
        "--dry-run", action="store_true", help="only count what each filter keeps; write nothing"
    )
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
    if not args.dry_run and not args.out:
        sys.exit("error: give --out DIR for the dataset, or --dry-run to only count rows")
    database.configure(get_settings().database_url)
    if args.dry_run:
        _print_preview(args.project, options)
        return
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


def _print_preview(project_ref: str, options: ExportOptions) -> None:
    from app.db import session_scope
    from app.errors import AppError
    from app.exports import service

    try:
        with session_scope(write=False) as session:
            project = _find_project(session, project_ref)
            preview = service.preview_export(service.plan_export(session, project, options))
    except AppError as error:
        sys.exit(f"error: {error.message}")
    print(format_preview(preview))


def format_preview(preview: ExportPreview) -> str:
    """The funnel as a plain-text table: what is left after each step and what the step removed."""
    width = max(len(STEP_NAMES.get(step.key, step.key)) + len(step.unit) + 3 for step in preview.steps)
    lines = [f"{'step':<{width}} {'left':>9} {'removed':>9}"]
    for step in preview.steps:
        name = f"{STEP_NAMES.get(step.key, step.key)} ({step.unit})"
        removed = f"-{step.removed}" if step.removed else ""
        lines.append(f"{name:<{width}} {step.count:>9} {removed:>9}".rstrip())
    lines.append(f"annotations {preview.annotations}, raters {preview.raters}")
    if preview.dropped:
        lines.append("dropped: " + ", ".join(f"{key} {n}" for key, n in preview.dropped.items()))
    splits = {name: n for name, n in preview.rows.items() if name != "all"}
    if splits:
        lines.append("rows per split: " + ", ".join(f"{name} {n}" for name, n in splits.items()))
    return "\n".join(lines)
