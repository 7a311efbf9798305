"""Benchmark of the agreement statistics at scale: alpha against the krippendorff package, DS and BT bootstrap.

Run: python benchmarks/agreement_stats.py [--n-ratings 1000000] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

import krippendorff
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.agreement.aggregation import bradley_terry_bootstrap, dawid_skene
from app.agreement.stats import (
    LEVELS,
    AlphaStatistic,
    Level,
    Ratings,
    Statistic,
    bootstrap_ci,
    krippendorff_alpha,
)

N_RATERS = 4
MISSING = 0.2


def best_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Fastest of `repeat` runs, so one-off noise (page faults, frequency ramps) does not count."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def machine() -> dict[str, Any]:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(memory / 2**30, 1),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "krippendorff": version("krippendorff"),
        "platform": platform.platform(),
    }


def reliability_data(n_ratings: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A 1..5 scale rated by 4 raters with 20% missing, sized to give about n_ratings ratings."""
    rng = np.random.default_rng(seed)
    n_units = max(1, round(n_ratings / (N_RATERS * (1 - MISSING))))
    truth = rng.integers(1, 6, size=n_units)
    noise = rng.integers(-1, 2, size=(n_units, N_RATERS)) * (rng.random((n_units, N_RATERS)) < 0.35)
    matrix = np.clip(truth[:, None] + noise, 1, 5).astype(float)
    matrix[rng.random(matrix.shape) < MISSING] = np.nan
    unit, rater = np.nonzero(~np.isnan(matrix))
    return matrix, unit, rater, matrix[unit, rater]


def ours_from_long(unit: np.ndarray, rater: np.ndarray, value: np.ndarray, level: Level) -> Statistic:
    return krippendorff_alpha(Ratings.from_long(unit, rater, value), level)


def alpha_rows(n_ratings: int, repeat: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    matrix, unit, rater, value = reliability_data(n_ratings, seed=0)
    build_s, _ = best_time(lambda: Ratings.from_long(unit, rater, value), repeat)
    rows = []
    for level in LEVELS:
        ours_s, ours = best_time(partial(ours_from_long, unit, rater, value, level), repeat)
        ref_s, ref = best_time(partial(krippendorff.alpha, matrix.T, level_of_measurement=level), repeat)
        rows.append(
            {
                "level": level,
                "ours_s": ours_s,
                "reference_s": ref_s,
                "ratio": ours_s / ref_s,
                "abs_difference": abs(ours.value - ref),
                "alpha": ours.value,
            }
        )
    info = {"n_ratings": int(value.size), "n_units": int(matrix.shape[0]), "ratings_build_s": build_s}
    return rows, info


def crowd_labels(n_ratings: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """3-class labels, 4 per unit from a pool of 500 raters of mixed quality."""
    rng = np.random.default_rng(seed)
    n_units = max(1, n_ratings // N_RATERS)
    truth = rng.integers(0, 3, size=n_units)
    unit = np.repeat(np.arange(n_units), N_RATERS)
    rater = rng.integers(0, 500, size=unit.size)
    accuracy = rng.uniform(0.3, 0.95, size=500)[rater]
    label = np.where(rng.random(unit.size) < accuracy, truth[unit], rng.integers(0, 3, size=unit.size))
    return unit, rater, label


def battles(n_battles: int, n_models: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    elo = rng.normal(1000, 100, size=n_models)
    a = rng.integers(0, n_models, size=n_battles)
    b = (a + rng.integers(1, n_models, size=n_battles)) % n_models
    p_a = 1.0 / (1.0 + 10.0 ** ((elo[b] - elo[a]) / 400.0))
    outcome = np.where(rng.random(n_battles) < 0.1, 0.5, (rng.random(n_battles) < p_a).astype(float))
    return a, b, outcome


def other_rows(n_ratings: int) -> list[dict[str, Any]]:
    _, unit, rater, value = reliability_data(n_ratings, seed=0)
    ratings = Ratings.from_long(unit, rater, value)
    boot_s, boot = best_time(lambda: bootstrap_ci(AlphaStatistic("ordinal"), ratings, n_boot=1000), 1)
    ds_unit, ds_rater, ds_label = crowd_labels(n_ratings, seed=1)
    ds_s, ds = best_time(lambda: dawid_skene(ds_unit, ds_rater, ds_label, 3), 1)
    a, b, outcome = battles(n_ratings, 20, seed=2)
    bt_s, bt = best_time(lambda: bradley_terry_bootstrap(a, b, outcome, 20, n_boot=200), 1)
    return [
        {"task": "bootstrap_ci ordinal alpha, n_boot=1000", "seconds": boot_s, "note": f"[{boot.low:.4f}, {boot.high:.4f}]"},
        {"task": f"dawid_skene, 3 classes, 500 raters, {ds_label.size} labels", "seconds": ds_s,
         "note": f"{ds.iterations} iterations, converged={ds.converged}"},
        {"task": f"bradley_terry_bootstrap, 20 models, {a.size} battles, n_boot=200", "seconds": bt_s,
         "note": f"all_converged={bt.all_converged}"},
    ]  # fmt: skip


def markdown(
    info: dict[str, Any], env: dict[str, Any], alpha: list[dict[str, Any]], other: list[dict[str, Any]]
) -> str:
    lines = [
        f"Machine: {env['cores']} cores, {env['memory_gib']} GiB RAM, Python {env['python']}, "
        f"numpy {env['numpy']}, krippendorff {env['krippendorff']}",
        f"Data: {info['n_ratings']:,} ratings, {info['n_units']:,} units x {N_RATERS} raters, "
        f"{MISSING:.0%} missing, values 1..5; Ratings.from_long alone: {info['ratings_build_s']:.3f} s",
        "",
        "| level | ours s | reference s | ratio | abs difference |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in alpha:
        lines.append(
            f"| {r['level']} | {r['ours_s']:.3f} | {r['reference_s']:.3f} | {r['ratio']:.2f} | "
            f"{r['abs_difference']:.1e} |"
        )
    lines += ["", "| task | seconds | note |", "|---|---:|---|"]
    lines += [f"| {r['task']} | {r['seconds']:.3f} | {r['note']} |" for r in other]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-ratings", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per alpha timing; the fastest counts")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this file")
    args = parser.parse_args()
    env = machine()
    alpha, info = alpha_rows(args.n_ratings, args.repeat)
    other = other_rows(args.n_ratings)
    print("Ours: Ratings.from_long plus krippendorff_alpha; reference: krippendorff.alpha on the matrix.")
    print("Times are the best of --repeat runs (alpha) or a single run (the rest).\n")
    print(markdown(info, env, alpha, other))
    if args.json is not None:
        payload = {"machine": env, "data": info, "alpha": alpha, "other": other}
        args.json.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
