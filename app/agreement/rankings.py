"""Concordance of rankings item by item: Kendall's W and tau-b over every item's raters, vectorised."""

from __future__ import annotations

import numpy as np

from app.agreement.collect import FloatArray, Ranked
from app.agreement.stats import ConfidenceInterval, Statistic


def per_item_concordance(rankings: list[Ranked]) -> tuple[FloatArray, FloatArray]:
    """Kendall's W of each item ranked two or more times, and tau-b of each (item, rater pair); NaN where
    undefined. Items of the same shape are computed together, so a large project needs no Python loop
    per item."""
    stacks = _items_by_shape(rankings).values()
    if not stacks:
        return np.zeros(0), np.zeros(0)
    w = np.concatenate([_kendall_w_per_item(ranks, ties) for ranks, ties in stacks])
    tau = np.concatenate([_tau_b_per_pair(ranks) for ranks, _ in stacks])
    return w, tau


def _items_by_shape(rankings: list[Ranked]) -> dict[tuple[int, int], tuple[FloatArray, FloatArray]]:
    """Items with two or more rankings of the same responses, stacked by (raters, responses):
    ranks (k, m, n) and tie terms (k, m)."""
    by_item: dict[int, list[Ranked]] = {}
    for ranked in rankings:
        by_item.setdefault(ranked.item, []).append(ranked)
    stacks: dict[tuple[int, int], tuple[list[list[tuple[float, ...]]], list[list[float]]]] = {}
    for rows in by_item.values():
        rows = [r for r in rows if r.ids == rows[0].ids]
        if len(rows) >= 2:
            ranks, ties = stacks.setdefault((len(rows), len(rows[0].ranks)), ([], []))
            ranks.append([r.ranks for r in rows])
            ties.append([r.ties for r in rows])
    return {
        shape: (np.array(r, dtype=np.float64), np.array(t, dtype=np.float64))
        for shape, (r, t) in stacks.items()
    }


def _kendall_w_per_item(ranks: FloatArray, ties: FloatArray) -> FloatArray:
    """Kendall's W with the tie correction for each item; NaN where every rater tied everything."""
    _, m, n = ranks.shape
    totals = ranks.sum(axis=1)
    spread = ((totals - totals.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    denominator = m**2 * (n**3 - n) - m * ties.sum(axis=1)
    w = np.full(ranks.shape[0], np.nan)
    ok = denominator > 0
    w[ok] = 12.0 * spread[ok] / denominator[ok]
    return w


def _tau_b_per_pair(ranks: FloatArray) -> FloatArray:
    """Kendall's tau-b for every (item, rater pair); NaN where a rater tied every response."""
    _, m, n = ranks.shape
    i, j = np.triu_indices(n, k=1)
    signs = np.sign(ranks[:, :, i] - ranks[:, :, j])
    taus = []
    for a in range(m):
        for b in range(a + 1, m):
            concordance = (signs[:, a] * signs[:, b]).sum(axis=1)
            scale = np.sqrt(np.count_nonzero(signs[:, a], axis=1) * np.count_nonzero(signs[:, b], axis=1))
            taus.append(np.divide(concordance, scale, out=np.full(scale.shape, np.nan), where=scale > 0))
    return np.concatenate(taus) if taus else np.zeros(0)


def mean_with_interval(
    values: FloatArray, n_boot: int, seed: int, level: float, reason: str
) -> tuple[Statistic, ConfidenceInterval | None]:
    """Mean of the finite per-item values, with a percentile interval from resampling items (None when
    n_boot is 0 or nothing is defined; then the Statistic carries the reason)."""
    defined = values[np.isfinite(values)]
    if defined.size == 0:
        return Statistic.undefined(reason), None
    point = Statistic.of(float(defined.mean()), int(defined.size))
    if n_boot < 1:
        return point, None
    rng = np.random.default_rng(seed)
    # Chunks keep the (resamples x items) index matrix to a few million entries.
    draws = np.concatenate(
        [
            defined[rng.integers(0, defined.size, size=(count, defined.size))].mean(axis=1)
            for count in _chunks(n_boot, max(1, 2_000_000 // defined.size))
        ]
    )
    low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return point, ConfidenceInterval(point.value, float(low), float(high), level, n_boot)


def _chunks(total: int, size: int) -> list[int]:
    return [min(size, total - start) for start in range(0, total, size)]
