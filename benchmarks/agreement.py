"""Benchmark of a project's agreement figures on PostgreSQL at a million annotations, and alpha vs krippendorff.

Builds a throwaway PostgreSQL database holding one project with N live annotations (three raters per item,
a preference, a 1-7 rating per response and an optional free-text answer, plus 1% gold answers and one
excluded rater that must not count), bulk-loaded with COPY. Items are AlpacaEval prompts and outputs of
four models from ../shared/data when present, synthetic text otherwise. Then it times project_agreement,
the leaderboard and item aggregation, and Krippendorff's alpha against the krippendorff package on the
same number of ratings.

Run: python benchmarks/agreement.py [--annotations 1000000] [--json results.json] [--keep]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import krippendorff
import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.accounts import service as accounts_service  # noqa: E402
from app.agreement import repository, service  # noqa: E402
from app.agreement.stats import LEVELS, Ratings, krippendorff_alpha  # noqa: E402
from app.db import create_db_engine  # noqa: E402
from app.migrations_state import upgrade_to_head  # noqa: E402
from app.projects import service as projects_service  # noqa: E402
from app.projects.models import Project  # noqa: E402
from app.projects.schemas import ProjectCreate  # noqa: E402
from benchmarks import common  # noqa: E402

ALPACA = ROOT.parent / "shared" / "data" / "alpaca_eval_4models.jsonl"
SERVER = os.environ.get("PREFHUB_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
RATERS_PER_ITEM = 3
N_RATERS = 40
GOLD_SHARE = 0.01
WEEKS = 10
TEXT_CHARS = 600  # response text kept per output: enough to look real, small enough to load quickly
CHUNK = 50_000
QUESTIONS = [
    {
        "name": "overall",
        "kind": "preference",
        "strength": {"labels": ["negligibly better", "slightly better", "better", "significantly better"]},
    },
    {"name": "helpfulness", "kind": "rating", "min": 1, "max": 7, "required": False},
    {"name": "rationale", "kind": "text", "required": False},
]
# Elo-like strengths the simulated raters judge by, so the leaderboard has a known order.
TRUE_ELO = {
    "gpt4_1106_preview": 1200.0,
    "claude-2": 1100.0,
    "Mistral-7B-Instruct-v0.2": 1050.0,
    "llama-2-70b-chat-hf": 1000.0,
}


def machine() -> dict[str, Any]:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cores": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "memory_gib": round(memory / 2**30, 1),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "sqlalchemy": sa.__version__,
        "psycopg": version("psycopg"),
        "krippendorff": version("krippendorff"),
        "platform": platform.platform(),
    }


# ---------------------------------------------------------------------------------------------- data


def source_items() -> tuple[list[str], list[dict[str, str]], str]:
    """Prompts and per-model outputs: AlpacaEval when present beside the project, else synthetic."""
    if ALPACA.exists():
        prompts, outputs = [], []
        with ALPACA.open() as handle:
            for line in handle:
                row = json.loads(line)
                prompts.append(row["prompt"])
                outputs.append({c["model"]: c["text"][:TEXT_CHARS] for c in row["completions"]})
        return prompts, outputs, f"{ALPACA.name} ({len(prompts)} prompts x 4 models, recombined)"
    prompts = [f"Synthetic instruction number {i}: explain step {i % 17} of the process." for i in range(800)]
    outputs = [
        {m: f"A {m} answer to instruction {i}.\n\n- point one\n- point two" for m in TRUE_ELO}
        for i in range(800)
    ]
    return prompts, outputs, "synthetic prompts (../shared/data/alpaca_eval_4models.jsonl not found)"


def uuids(rng: np.random.Generator, n: int) -> list[str]:
    raw = rng.bytes(16 * n).hex()
    return [
        f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
        for h in (raw[i : i + 32] for i in range(0, 32 * n, 32))
    ]


def stamp(moment: datetime) -> str:
    return moment.isoformat()


class Plan:
    """Everything random about the project, drawn up front with numpy: items, models, raters, answers."""

    def __init__(self, n_live: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.n_items = -(-n_live // RATERS_PER_ITEM)
        self.n_gold_items = max(1, round(self.n_items * GOLD_SHARE))
        n = self.n_items + self.n_gold_items
        models = list(TRUE_ELO)
        self.models = models
        self.prompt = rng.integers(0, 1 << 30, size=n)
        first = rng.integers(0, 4, size=n)
        self.model_a, self.model_b = first, (first + rng.integers(1, 4, size=n)) % 4
        step1 = rng.integers(1, N_RATERS - 1, size=n)
        step2 = rng.integers(step1 + 1, N_RATERS, size=n)
        start = rng.integers(0, N_RATERS, size=n)
        self.raters = np.stack([start, (start + step1) % N_RATERS, (start + step2) % N_RATERS], axis=1)
        self.item_ids, self.response_ids = uuids(rng, n), uuids(rng, 2 * n)
        self.annotation_ids, self.assignment_ids = uuids(rng, n * 3), uuids(rng, n * 3)
        self.rng = rng

    def answers(self, rater_noise: np.ndarray, first_bias: np.ndarray) -> dict[str, np.ndarray]:
        """Per (item, slot): the winner's stored position (0/1) or 2 tie / 3 both bad, the screen flip,
        strength, the two ratings, whether a rationale was written and the day offset."""
        rng, shape = self.rng, self.raters.shape
        elo = np.array([TRUE_ELO[m] for m in self.models])
        p_a = 1.0 / (1.0 + 10.0 ** ((elo[self.model_b] - elo[self.model_a]) / 400.0))
        flip = rng.random(shape) < 0.5
        noise, bias = rater_noise[self.raters], first_bias[self.raters]
        # Each item has one better response; raters find it unless they guess (noise) or lean left (bias).
        truth = (rng.random(self.raters.shape[0]) >= p_a).astype(np.int64)
        winner = np.repeat(truth[:, None], RATERS_PER_ITEM, axis=1)
        random_pick = rng.random(shape) < noise
        winner = np.where(random_pick, rng.integers(0, 2, size=shape), winner)
        # A position-biased rater picks whatever was on the left screen side with extra probability.
        left = np.where(flip, 1, 0)
        winner = np.where(rng.random(shape) < bias, left, winner)
        draw = rng.random(shape)
        winner = np.where(draw < 0.08, 2, np.where(draw < 0.11, 3, winner))
        quality = (elo - 1000.0) / 100.0 + 4.0
        base_a, base_b = quality[self.model_a][:, None], quality[self.model_b][:, None]
        score_a = np.clip(np.rint(base_a + rng.normal(0, 0.8 + noise, shape)), 1, 7).astype(np.int64)
        score_b = np.clip(np.rint(base_b + rng.normal(0, 0.8 + noise, shape)), 1, 7).astype(np.int64)
        return {
            "winner": winner,
            "flip": flip,
            "strength": rng.integers(1, 5, size=shape),
            "score_a": score_a,
            "score_b": score_b,
            "rationale": rng.random(shape) < 0.3,
            "seconds": rng.integers(0, WEEKS * 7 * 86400, size=shape),
        }


def csv_rows(rows: Iterator[list[Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for n, row in enumerate(rows, start=1):
        writer.writerow(["" if v is None else v for v in row])
        if n % CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def copy(connection: Any, table: str, columns: list[str], rows: Iterator[list[Any]]) -> int:
    """COPY in CSV; empty unquoted fields are NULL, which csv writes for None (every text here is non-empty)."""
    counted = [0]

    def counting() -> Iterator[list[Any]]:
        for row in rows:
            counted[0] += 1
            yield row

    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT csv)"
    with connection.cursor() as cursor, cursor.copy(statement) as sink:
        for chunk in csv_rows(counting()):
            sink.write(chunk)
    return counted[0]


def item_rows(plan: Plan, project_id: str, prompts: list[str], created: str) -> Iterator[list[Any]]:
    for i, item_id in enumerate(plan.item_ids):
        live = i < plan.n_items
        gold = None if live else json.dumps({"answers": {"overall": {"choice": plan.response_ids[2 * i]}}})
        prompt = prompts[plan.prompt[i] % len(prompts)]
        yield [
            item_id,
            project_id,
            i + 1,
            f"bench-{i}",
            f"bench-{i}",
            f"{i:064x}",
            None,
            json.dumps(prompt),
            "{}",
            "live" if live else "gold",
            gold,
            int(plan.prompt[i] % (1 << 31)),
            RATERS_PER_ITEM,
            RATERS_PER_ITEM,
            "t" if live else "f",
            created,
        ]


def response_rows(plan: Plan, outputs: list[dict[str, str]]) -> Iterator[list[Any]]:
    for i, item_id in enumerate(plan.item_ids):
        texts = outputs[plan.prompt[i] % len(outputs)]
        for position, model in enumerate((plan.models[plan.model_a[i]], plan.models[plan.model_b[i]])):
            yield [
                plan.response_ids[2 * i + position],
                item_id,
                position,
                position,
                texts[model],
                model,
                "{}",
            ]


def annotation_rows(
    plan: Plan, project_id: str, user_ids: list[str], answers: dict[str, np.ndarray], kind: str
) -> Iterator[list[Any]]:
    """Assignment rows (kind="assignments") or annotation rows (kind="annotations"), in the same order."""
    origin = datetime.now(UTC) - timedelta(weeks=WEEKS)
    for i, item_id in enumerate(plan.item_ids):
        purpose = "live" if i < plan.n_items else "gold"
        ids = [plan.response_ids[2 * i], plan.response_ids[2 * i + 1]]
        for slot in range(RATERS_PER_ITEM):
            k = i * RATERS_PER_ITEM + slot
            order = ids[::-1] if answers["flip"][i, slot] else ids
            user_id = user_ids[plan.raters[i, slot]]
            created = stamp(origin + timedelta(seconds=int(answers["seconds"][i, slot])))
            if kind == "assignments":
                yield [
                    plan.assignment_ids[k],
                    project_id,
                    item_id,
                    user_id,
                    0,
                    purpose,
                    "submitted",
                    json.dumps(order),
                    created,
                    created,
                    None,
                    created,
                ]
                continue
            yield [
                plan.annotation_ids[k],
                plan.assignment_ids[k],
                project_id,
                item_id,
                user_id,
                purpose,
                json.dumps(answer_of(answers, i, slot, ids)),
                None,
                "[]",
                9000,
                json.dumps(order),
                1,
                None,
                None,
                None,
                1,
                None,
                created,
            ]


def answer_of(answers: dict[str, np.ndarray], i: int, slot: int, ids: list[str]) -> dict[str, Any]:
    winner = int(answers["winner"][i, slot])
    if winner < 2:
        overall: dict[str, Any] = {"choice": ids[winner], "strength": int(answers["strength"][i, slot])}
    else:
        overall = {"choice": "tie" if winner == 2 else "both_bad"}
    result: dict[str, Any] = {
        "overall": overall,
        "helpfulness": {ids[0]: int(answers["score_a"][i, slot]), ids[1]: int(answers["score_b"][i, slot])},
    }
    if answers["rationale"][i, slot]:
        result["rationale"] = "The chosen answer is more complete and follows the instruction."
    return result


ASSIGNMENT_COLUMNS = [
    "id",
    "project_id",
    "item_id",
    "user_id",
    "attempt",
    "purpose",
    "status",
    "display_order",
    "expires_at",
    "finished_at",
    "skip_reason",
    "created_at",
]
ANNOTATION_COLUMNS = [
    "id",
    "assignment_id",
    "project_id",
    "item_id",
    "user_id",
    "purpose",
    "answers",
    "rationale",
    "flags",
    "time_spent_ms",
    "display_order",
    "guidelines_version",
    "idempotency_key",
    "request_hash",
    "gold_result",
    "revision",
    "updated_at",
    "created_at",
]
ITEM_COLUMNS, RESPONSE_COLUMNS = list(common.ITEM_COLUMNS), list(common.RESPONSE_COLUMNS)


def create_project(engine: sa.Engine) -> tuple[Project, list[str]]:
    """The admin, the raters (the last one excluded) and the project, through the services."""
    with Session(engine, expire_on_commit=False) as session:
        admin = accounts_service.create_user(session, "bench-admin", "benchmark password 1", "admin")
        body = {
            "name": "Agreement benchmark",
            "questions": QUESTIONS,
            "annotations_per_item": RATERS_PER_ITEM,
            "gold_rate": 0.01,
        }
        project = projects_service.create_project(session, ProjectCreate.model_validate(body), admin)
        user_ids = []
        for r in range(N_RATERS):
            user = accounts_service.create_user(session, f"rater{r:02d}", "benchmark password 1", "annotator")
            membership = projects_service.add_member(session, project, admin, user_id=user.id)
            if r == N_RATERS - 1:
                membership.excluded_at = datetime.now(UTC)
            user_ids.append(str(user.id))
        session.commit()
        return project, user_ids


def load(engine: sa.Engine, n_live: int, seed: int) -> dict[str, Any]:
    prompts, outputs, source = source_items()
    project, user_ids = create_project(engine)
    plan = Plan(n_live, seed)
    rng = np.random.default_rng(seed + 1)
    rater_noise = rng.uniform(0.05, 0.5, size=N_RATERS)
    first_bias = np.where(np.arange(N_RATERS) % 10 == 0, 0.25, 0.0)
    answers = plan.answers(rater_noise, first_bias)
    project_id, created = str(project.id), stamp(datetime.now(UTC))
    start = time.perf_counter()
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        counts = {
            "items": copy(driver, "items", ITEM_COLUMNS, item_rows(plan, project_id, prompts, created)),
            "responses": copy(driver, "responses", RESPONSE_COLUMNS, response_rows(plan, outputs)),
            "assignments": copy(
                driver,
                "assignments",
                ASSIGNMENT_COLUMNS,
                annotation_rows(plan, project_id, user_ids, answers, "assignments"),
            ),
            "annotations": copy(
                driver,
                "annotations",
                ANNOTATION_COLUMNS,
                annotation_rows(plan, project_id, user_ids, answers, "annotations"),
            ),
        }
        raw.commit()
    finally:
        raw.close()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")
    return {"project_id": project.id, "source": source, "rows": counts, "load_s": time.perf_counter() - start}


# -------------------------------------------------------------------------------------------- timing


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, float, float, Any]:
    """(first run, fastest run, CPU seconds of this process in the fastest run, result). The first run pays
    for a cold cache; the CPU time leaves out the database server and other load on the machine."""
    times, result = [], None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    best = min(times)
    return times[0][0], best[0], best[1], result


def in_session(engine: sa.Engine, project_id: uuid.UUID, fn: Callable[[Session, Project], Any]) -> Any:
    with Session(engine) as session:
        project = session.get(Project, project_id)
        assert project is not None
        return fn(session, project)


def read_only(session: Session, project: Project) -> int:
    """The database read of project_agreement without the statistics: one row per annotation with the
    answer values picked out."""
    fields = [
        repository.AnswerField(("overall", "choice"), "text"),
        repository.AnswerField(("overall", "strength"), "integer"),
        repository.AnswerField(("helpfulness",), "present"),
        repository.AnswerField(("helpfulness",), "score", 0),
        repository.AnswerField(("helpfulness",), "score", 1),
        repository.AnswerField(("rationale",), "present"),
    ]
    table = repository.read_counted_answers(session, project.id, fields, stored_first=True, positions=2)
    return table.num_rows


def service_rows(
    engine: sa.Engine, project_id: uuid.UUID, repeat: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    def run(fn: Callable[[Session, Project], Any]) -> Callable[[], Any]:
        return lambda: in_session(engine, project_id, fn)

    tasks: list[tuple[str, Callable[[Session, Project], Any], int]] = [
        ("database reads of project_agreement only", read_only, repeat),
        ("project_agreement, n_boot=1000", lambda s, p: service.project_agreement(s, p, n_boot=1000), repeat),
        ("project_agreement, n_boot=0", lambda s, p: service.project_agreement(s, p, n_boot=0), 1),
        ("leaderboard, n_boot=200", lambda s, p: service.leaderboard(s, p, n_boot=200), 1),
        ("aggregate_preferences, majority", lambda s, p: service.aggregate_preferences(s, p, "overall"), 1),
        (
            "aggregate_preferences, dawid-skene",
            lambda s, p: service.aggregate_preferences(s, p, "overall", "dawid-skene"),
            1,
        ),
    ]
    rows, results = [], {}
    for name, fn, times in tasks:
        first, best, cpu, result = timed(run(fn), times)
        rows.append({"task": name, "first_s": first, "best_s": best, "cpu_s": cpu, "runs": times})
        results[name] = result
    return rows, results


def alpha_rows(n_ratings: int, repeat: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Ours (long form, from parallel arrays) against krippendorff.alpha on the equivalent matrix."""
    rng = np.random.default_rng(0)
    n_units = round(n_ratings / (4 * 0.8))
    truth = rng.integers(1, 8, size=n_units)
    matrix = np.clip(
        truth[:, None] + rng.integers(-1, 2, size=(n_units, 4)) * (rng.random((n_units, 4)) < 0.35), 1, 7
    ).astype(float)
    matrix[rng.random(matrix.shape) < 0.2] = np.nan
    unit, rater = np.nonzero(~np.isnan(matrix))
    value = matrix[unit, rater]
    rows = []
    for level in LEVELS:
        _, ours_s, _cpu, ours = timed(
            lambda lv=level: krippendorff_alpha(Ratings.from_long(unit, rater, value), lv), repeat
        )
        _, ref_s, _cpu, ref = timed(
            lambda lv=level: krippendorff.alpha(matrix.T, level_of_measurement=lv), repeat
        )
        rows.append(
            {
                "level": level,
                "ours_s": ours_s,
                "krippendorff_s": ref_s,
                "speedup": ref_s / ours_s,
                "alpha": ours.value,
                "abs_difference": abs(ours.value - ref),
            }
        )
    return rows, {"n_ratings": int(value.size), "n_units": n_units, "raters": 4, "values": "1..7"}


# -------------------------------------------------------------------------------------------- report


def report(
    env: dict[str, Any],
    data: dict[str, Any],
    services: list[dict[str, Any]],
    summary: dict[str, Any],
    alpha: list[dict[str, Any]],
    alpha_info: dict[str, Any],
) -> str:
    lines = [
        f"Machine: {env['cores']} cores, {env['memory_gib']} GiB RAM, load average {env['load_average_1min']} at "
        f"start, Python {env['python']}, PostgreSQL "
        f"{env['postgresql']}, numpy {env['numpy']}, SQLAlchemy {env['sqlalchemy']}, psycopg {env['psycopg']}",
        f"Data: {data['source']}; rows: "
        + ", ".join(f"{k} {v:,}" for k, v in data["rows"].items())
        + f"; COPY + VACUUM ANALYZE {data['load_s']:.1f} s",
        f"Counted: {summary['n_annotations']:,} live annotations of {summary['n_raters']} raters on "
        f"{summary['n_items']:,} items ({summary['n_excluded_raters']} excluded rater and the gold answers left out)",
        "",
        "| task | first run s | best s | Python CPU s (best run) | runs |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['task']} | {r['first_s']:.2f} | {r['best_s']:.2f} | {r['cpu_s']:.2f} | {r['runs']} |"
        for r in services
    ]
    lines += [
        "",
        f"Krippendorff's alpha on {alpha_info['n_ratings']:,} ratings ({alpha_info['n_units']:,} units x 4 raters, "
        "20% missing, values 1..7), best of runs; ours includes building Ratings from the long arrays",
        "",
        "| level | ours s | krippendorff s | speed-up | alpha | abs difference |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['level']} | {r['ours_s']:.3f} | {r['krippendorff_s']:.3f} | {r['speedup']:.1f}x | "
        f"{r['alpha']:.4f} | {r['abs_difference']:.1e} |"
        for r in alpha
    ]
    return "\n".join(lines)


def figures_summary(result: dict[str, Any]) -> dict[str, Any]:
    overall = next(q for q in result["questions"] if q["name"] == "overall")
    helpfulness = next(q for q in result["questions"] if q["name"] == "helpfulness")
    return {
        "n_annotations": result["n_annotations"],
        "n_raters": result["n_raters"],
        "n_items": result["n_items"],
        "n_excluded_raters": result["n_excluded_raters"],
        "overall_alpha": overall["krippendorff_alpha"]["nominal"],
        "overall_alpha_ci": [overall["ci"]["alpha"]["low"], overall["ci"]["alpha"]["high"]],
        "helpfulness_alpha": helpfulness["krippendorff_alpha"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotations", type=int, default=1_000_000, help="live annotations to build")
    parser.add_argument("--repeat", type=int, default=2, help="runs of the main timings; the fastest counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this file")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    args = parser.parse_args()
    name = f"prefhub_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        pg_version = connection.exec_driver_sql("SHOW server_version").scalar()
    url = SERVER.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade_to_head(url)
        engine = create_db_engine(url)
        env = {**machine(), "postgresql": pg_version}
        data = load(engine, args.annotations, args.seed)
        services, results = service_rows(engine, data["project_id"], args.repeat)
        summary = figures_summary(results["project_agreement, n_boot=1000"])
        summary["leaderboard"] = [
            (m["model"], round(m["score"], 1)) for m in results["leaderboard, n_boot=200"]["models"]
        ]
        engine.dispose()
        alpha, alpha_info = alpha_rows(args.annotations, args.repeat)
        print(report(env, data, services, summary, alpha, alpha_info))
        print(f"\nFigures: {json.dumps(summary)}")
        if args.json is not None:
            payload = {
                "machine": env,
                "data": {**data, "project_id": str(data["project_id"])},
                "services": services,
                "summary": summary,
                "alpha": alpha,
                "alpha_data": alpha_info,
            }
            args.json.write_text(json.dumps(payload, indent=2))
    finally:
        if not args.keep:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


if __name__ == "__main__":
    main()
