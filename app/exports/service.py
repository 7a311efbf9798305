"""Rules of the exports domain: checking options, streaming datasets, writing split files, building snapshots."""

from __future__ import annotations

import hashlib
import logging
import shutil
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.agreement.stats import Ratings, krippendorff_alpha, percent_agreement
from app.audit import service as audit
from app.config import get_settings
from app.db import database, utcnow
from app.errors import Conflict, NotFound, Unprocessable
from app.exports import repository
from app.exports.card import CardFacts, dataset_card
from app.exports.formats import (
    FILE_SUFFIX,
    MEDIA_TYPE,
    ChunkSink,
    Layout,
    RowWriter,
    open_writer,
    pair_layout,
    ratings_layout,
    raw_layout,
)
from app.exports.models import Export
from app.exports.pipeline import ExportPlan, Progress, Tally, iter_rows
from app.exports.preview import count_rows
from app.exports.schemas import ExportOptions, ExportPreview, FunnelStep, StreamOptions
from app.projects import service as projects_service
from app.projects.models import Project
from app.projects.questions import PreferenceQuestion, Question, RankingQuestion, RatingQuestion

logger = logging.getLogger("prefhub.exports")

PAIR_FORMATS = ("preference", "preference-implicit", "kto")
STREAM_CHUNK_BYTES = 256 * 1024
# Fixed zip entry times: the same request must give the same bytes.
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)


class ExportNotFound(NotFound):
    code = "export_not_found"
    message = "No such export."


class ExportNotReady(Conflict):
    code = "export_not_ready"
    message = "The export is not built yet."


class InvalidExportOptions(Unprocessable):
    code = "invalid_export_options"


# ------------------------------------------------------------------------------------------- planning


def _pick(questions: list[Question], name: str | None, kinds: tuple[type, ...], what: str) -> Question | None:
    if name is None:
        return next((q for q in questions if isinstance(q, kinds)), None)
    question = next((q for q in questions if q.name == name), None)
    if question is None:
        raise InvalidExportOptions(f"The project has no question named {name!r}.")
    if not isinstance(question, kinds):
        raise InvalidExportOptions(f"Question {name!r} is a {question.kind} question, not a {what} question.")
    return question


def _layout(options: ExportOptions, chat: bool, scores: bool, criteria: list[str], split: bool) -> Layout:
    if options.format == "ratings":
        return ratings_layout(criteria, chat=chat, split=split)
    if options.format == "raw":
        return raw_layout(split=split)
    return pair_layout(options.format, chat=chat, scores=scores, outcome=options.include_ties, split=split)


def plan_export(
    session: Session, project: Project, options: ExportOptions, *, streamed: bool = False
) -> ExportPlan:
    """Check the options against the project's questions; raises InvalidExportOptions with the reason."""
    questions = projects_service.project_questions(project)
    ratings = [q for q in questions if isinstance(q, RatingQuestion)]
    target = None
    if options.format in PAIR_FORMATS:
        target = _pick(
            questions, options.question, (PreferenceQuestion, RankingQuestion), "preference or ranking"
        )
        if target is None:
            raise InvalidExportOptions(f"The {options.format} format needs a preference or ranking question.")
        if isinstance(target, RankingQuestion) and options.aggregation == "dawid-skene":
            raise InvalidExportOptions(
                "Dawid-Skene aggregates preference questions; ranking questions are aggregated by mean rank."
            )
    score = _pick(questions, options.score_question, (RatingQuestion,), "rating")
    if options.format == "ratings" and not ratings:
        raise InvalidExportOptions("The ratings format needs at least one rating question.")
    if options.format == "ratings":
        score_questions = [q.name for q in ratings]
    else:
        # KTO rows carry no score columns, so their ratings are not read.
        score_questions = [score.name] if score and options.format != "kto" else []
    split_name = options.split_name if isinstance(options, StreamOptions) else None
    split_column = streamed and options.splits is not None and split_name is None
    chat = repository.has_chat_prompts(session, project.id)
    return ExportPlan(
        project_id=project.id,
        project_name=project.name,
        project_slug=project.slug,
        project_description=project.description or "",
        options=options,
        question=target.name if target else None,
        question_kind=target.kind if target else None,
        score_questions=tuple(score_questions),
        chat=chat,
        layout=_layout(options, chat, bool(score_questions), score_questions, split_column),
        split_column=split_column,
        split_name=split_name,
        secret=get_settings().secret_key,
    )


def reading_session() -> Session:
    """A session of its own for a long read; on PostgreSQL every pass sees one snapshot of the data."""
    session = database.new_session()
    if isinstance(session.get_bind(), Engine) and session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        repository.without_jit(session)
    return session


# ------------------------------------------------------------------------------------------- streaming


def stream_file_name(plan: ExportPlan) -> str:
    split = f"-{plan.split_name}" if plan.split_name else ""
    return f"{plan.project_slug}-{plan.options.format}{split}{FILE_SUFFIX[plan.options.file]}"


def stream_media_type(plan: ExportPlan) -> str:
    return MEDIA_TYPE[plan.options.file]


def stream_export(plan: ExportPlan) -> Iterator[bytes]:
    """The dataset file in chunks, read through its own session so the request's session is not held."""
    session = reading_session()
    try:
        sink = ChunkSink()
        writer = open_writer(plan.options.file, sink, plan.layout)
        for _, row in iter_rows(session, plan, Tally()):
            writer.write(row)
            if sink.pending >= STREAM_CHUNK_BYTES:
                yield sink.take()
        writer.close()
        yield sink.take()
    finally:
        session.close()


FUNNEL = {
    "pairs": ("annotated", "enough_annotations", "agreement", "ties", "flags", "rows_before_dedup", "rows"),
    "ratings": ("annotated", "enough_annotations", "flags", "rows_before_dedup", "rows"),
    "raw": ("annotated", "rows"),
}


def preview_export(plan: ExportPlan) -> ExportPreview:
    """The funnel of an export as the API returns it: counts per step, what each filter dropped, rows per split.

    Like a stream, it reads in a session of its own: every pass sees the same data, without JIT.
    """
    session = reading_session()
    try:
        tally = Tally()
        count_rows(session, plan, tally)
        counts = tally.to_dict()
        return ExportPreview(
            items=counts["items"],
            annotations=counts["annotations"],
            # A tallied count does not collect who voted (only a build's dataset card needs that); one
            # query counts them.
            raters=repository.count_counted_raters(session, plan.project_id),
            steps=funnel_steps(counts, plan.options.format),
            dropped=counts["dropped"],
            rows=rows_per_split(plan, counts, "all"),
            rows_total=counts["rows_total"],
        )
    finally:
        session.close()


def rows_per_split(plan: ExportPlan, counts: dict[str, Any], unsplit: str) -> dict[str, int]:
    """Rows of each split, an empty split too ("test 0" says more than a missing test split); without
    splits, every row under `unsplit`."""
    if plan.splits is None:
        return {unsplit: counts["rows_total"]}
    return {name: counts["rows"].get(name, 0) for name in plan.split_names}


def funnel_steps(counts: dict[str, Any], export_format: str) -> list[FunnelStep]:
    """The funnel of a build's counts, step by step, for the export page."""
    keys = FUNNEL.get(export_format, FUNNEL["pairs"])
    steps: list[FunnelStep] = []
    previous: int | None = None
    for key in keys:
        count = counts["rows_total"] if key == "rows" else counts["steps"].get(key, 0)
        unit: Literal["items", "rows"] = "rows" if key.startswith("rows") else "items"
        removed = 0 if previous is None or key == "rows_before_dedup" else max(previous - count, 0)
        steps.append(FunnelStep(key=key, count=count, unit=unit, removed=removed))
        previous = count
    return steps


# ----------------------------------------------------------------------------------- files and cards


@dataclass(frozen=True)
class DatasetFiles:
    files: list[tuple[str, str]]  # (split, file name), README.md not included
    counts: dict[str, Any]


def _agreement(tally: Tally, kind: str | None) -> dict[str, Any] | None:
    if tally.labels is None or kind is None:
        return None
    unit, rater, value = tally.labels.arrays()
    level: Literal["nominal", "ordinal"] = "ordinal" if kind == "ranking" else "nominal"
    if unit.size == 0:
        return None
    try:
        ratings = Ratings.from_long(unit, rater, np.asarray(value, dtype=np.float64))
    except ValueError:
        return None
    return {
        "level": level,
        "percent_agreement": percent_agreement(ratings).to_dict(),
        "alpha": krippendorff_alpha(ratings, level).to_dict(),
    }


def write_dataset(
    session: Session, plan: ExportPlan, out_dir: Path, progress: Progress | None = None
) -> DatasetFiles:
    """One file per split plus README.md, the dataset card, in out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = FILE_SUFFIX[plan.options.file]
    files = [(name, f"{name}{suffix}") for name in plan.split_names]
    tally = Tally()
    with ExitStack() as stack:
        writers: dict[str, RowWriter] = {}
        for split, name in files:
            handle = stack.enter_context((out_dir / name).open("wb"))
            writers[split] = open_writer(plan.options.file, handle, plan.layout)
        default = files[0][0]
        for split_name, row in iter_rows(session, plan, tally, progress, collect=True):
            writers[split_name or default].write(row)
        for writer in writers.values():
            writer.close()
    counts = tally.to_dict()
    counts["rows"] = rows_per_split(plan, counts, default)
    counts["agreement"] = _agreement(tally, plan.question_kind)
    card = CardFacts(
        project_name=plan.project_name,
        project_description=plan.project_description,
        format=plan.options.format,
        file_type=plan.options.file,
        files=files,
        counts=counts,
        options=plan.options.model_dump(mode="json"),
        question=plan.question,
        question_kind=plan.question_kind,
        agreement=counts["agreement"],
    )
    (out_dir / "README.md").write_text(dataset_card(card), encoding="utf-8")
    return DatasetFiles(files, counts)


# ------------------------------------------------------------------------------------------- snapshots


def create_export(session: Session, project: Project, options: ExportOptions, actor: User) -> Export:
    plan_export(session, project, options)
    params = options.model_dump(mode="json")
    export = repository.add_export(session, project.id, actor.id, params)
    audit.record(session, actor.id, "export.create", "export", export.id, project_id=project.id, after=params)
    return export


def get_export(session: Session, export_id: uuid.UUID, user: User) -> Export:
    export = session.get(Export, export_id)
    if export is None:
        raise ExportNotFound()
    projects_service.get_project_for_admin(session, export.project_id, user)
    return export


def list_exports(session: Session, project: Project) -> list[Export]:
    return repository.list_exports(session, project.id)


def exports_dir() -> Path:
    return get_settings().data_dir / "exports"


def export_path(export: Export) -> Path:
    return exports_dir() / f"{export.id}.zip"


def download_path(export: Export) -> Path:
    if export.status != "done":
        detail = f": {export.error}" if export.status == "failed" and export.error else ""
        raise ExportNotReady(f"The export is {export.status}{detail}.")
    path = export_path(export)
    if not path.exists():
        raise ExportNotFound("The export file is gone; start a new export.")
    return path


def _zip(source: Path, names: list[str], target: Path) -> None:
    with zipfile.ZipFile(target, "w") as archive:
        for name in names:
            path = source / name
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            info.file_size = path.stat().st_size
            with path.open("rb") as src, archive.open(info, "w") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class BuiltFile:
    content_hash: str
    size_bytes: int
    file_name: str
    counts: dict[str, Any]


def build_export_file(session: Session, export: Export, progress: Progress | None = None) -> BuiltFile:
    """Write a recorded export's zip (split files and README.md); reads only, so it can hold one snapshot."""
    project = session.get_one(Project, export.project_id)
    plan = plan_export(session, project, ExportOptions.model_validate(export.params))
    # Each attempt builds in a folder of its own: one whose worker was taken for dead may still be writing.
    work = exports_dir() / f".build-{export.id}-{export.attempts}"
    target = export_path(export)
    try:
        for earlier in range(export.attempts):
            shutil.rmtree(exports_dir() / f".build-{export.id}-{earlier}", ignore_errors=True)
        if work.exists():
            shutil.rmtree(work)
        built = write_dataset(session, plan, work, progress)
        partial = target.with_suffix(f".part{export.attempts}")
        _zip(work, ["README.md", *(name for _, name in built.files)], partial)
        partial.replace(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    content_hash = _sha256(target)
    return BuiltFile(
        content_hash=content_hash,
        size_bytes=target.stat().st_size,
        file_name=f"{project.slug}-{plan.options.format}-{content_hash[:10]}.zip",
        counts=built.counts,
    )


def finish_export(export: Export, built: BuiltFile) -> None:
    export.content_hash, export.size_bytes, export.file_name = (
        built.content_hash,
        built.size_bytes,
        built.file_name,
    )
    export.counts = built.counts
    export.status, export.progress, export.error = "done", 1.0, None
    export.finished_at = utcnow()


def build_export(session: Session, export_id: uuid.UUID, progress: Progress | None = None) -> Export:
    """Build a recorded export and mark it done, in one session; the caller commits."""
    export = session.get(Export, export_id)
    if export is None:
        raise ExportNotFound()
    if export.status == "queued":
        export.status, export.started_at = "running", utcnow()
    finish_export(export, build_export_file(session, export, progress))
    session.flush()
    return export
