"""Inter-rater agreement statistics on plain numpy arrays: alpha, kappas, Kendall's W and unit bootstrap.

Data
    Ratings arrive either as a reliability matrix of shape (n_units, n_raters), float, ``np.nan`` where a
    rater did not rate a unit, or in long form as three parallel arrays (unit, rater, value) wrapped by
    ``Ratings.from_long``. Every function that takes ``data`` accepts both. Long form is what scales to
    millions of ratings: nothing here loops over units in Python. Categorical labels are numeric codes;
    ``cohen_kappa`` and ``preference_agreement`` also take string labels.

Results
    Every statistic returns a ``Statistic``: ``value`` is a finite float, or ``None`` when the statistic is
    undefined for these data, and then ``reason`` is a short sentence saying why (a single rater, no
    overlapping units, no variation, ...). Exactly one of ``value`` and ``reason`` is set; ``n_units`` counts
    the units that entered the computation. ``Statistic.to_dict()`` is the JSON shape
    ``{"value": float | null, "reason": str | null, "n_units": int}``. Undefined statistics never raise and
    never come back as NaN; ``ValueError`` is reserved for malformed input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import combinations
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Level = Literal["nominal", "ordinal", "interval", "ratio"]
LEVELS: tuple[Level, ...] = ("nominal", "ordinal", "interval", "ratio")

# Alpha keeps a V x V coincidence matrix; past this many distinct values the caller should bin the scale.
MAX_DISTINCT_VALUES = 2000
# Unit x value tables up to this many cells are counted with bincount, which beats sorting by a wide margin.
_DENSE_CELLS = 16_000_000
# Upper bound on the floats one bootstrap chunk materialises, so memory stays flat whatever n_boot is.
_CHUNK_CELLS = 4_000_000

FEWER_THAN_TWO_RATERS = "fewer than two raters on any unit, so there is nothing to compare"
NO_VARIATION = "no variation in the values: expected disagreement is zero"
NO_SHARED_UNITS = "the two raters share no units"
ONE_SHARED_UNIT = "the two raters share fewer than two units"
SAME_RATER = "a rater is not compared with themself"
CHANCE_AGREEMENT_TOTAL = "no variation in the labels: both raters used one and the same label"
UNEQUAL_RATERS = "units have different numbers of ratings; Fleiss' kappa needs the same number on every unit"
FEWER_THAN_TWO_ITEMS = "fewer than two items to rank"
INCOMPLETE_RANKINGS = "Kendall's W needs every rater to rank every item"
NO_RANKED_PAIRS = "no pair of raters ordered two or more shared items with any variation"
MOSTLY_UNDEFINED = "the statistic was undefined in almost every resample"


@dataclass(frozen=True, slots=True)
class Statistic:
    """A statistic's value, or None together with the reason it is undefined for these data."""

    value: float | None
    reason: str | None = None
    n_units: int = 0

    def __post_init__(self) -> None:
        if (self.value is None) == (self.reason is None):
            raise ValueError("a Statistic carries either a value or a reason, never both or neither")
        if self.value is not None and not math.isfinite(self.value):
            raise ValueError(f"a Statistic value must be finite, got {self.value}")

    @staticmethod
    def of(value: float, n_units: int) -> Statistic:
        return Statistic(float(value), None, int(n_units))

    @staticmethod
    def undefined(reason: str, n_units: int = 0) -> Statistic:
        return Statistic(None, reason, int(n_units))

    def to_dict(self) -> dict[str, float | str | int | None]:
        return {"value": self.value, "reason": self.reason, "n_units": self.n_units}


@dataclass(frozen=True, slots=True)
class ConfidenceInterval:
    """A point estimate with a percentile bootstrap interval; low/high are None exactly when reason is set."""

    value: float | None
    low: float | None
    high: float | None
    level: float
    n_boot: int
    n_undefined: int = 0
    reason: str | None = None

    def to_dict(self) -> dict[str, float | str | int | None]:
        return {
            "value": self.value,
            "low": self.low,
            "high": self.high,
            "level": self.level,
            "n_boot": self.n_boot,
            "n_undefined": self.n_undefined,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class PairAgreement:
    """Agreement between two raters on the units both rated."""

    rater_a: Any
    rater_b: Any
    n_shared: int
    kappa: float | None
    percent_agreement: float
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rater_a": self.rater_a,
            "rater_b": self.rater_b,
            "n_shared": self.n_shared,
            "kappa": self.kappa,
            "percent_agreement": self.percent_agreement,
            "reason": self.reason,
        }


@dataclass(frozen=True, eq=False)
class PairwiseKappa:
    """Cohen's kappa for every rater pair: a square matrix of Statistic plus records for overlapping pairs."""

    raters: list[Any]
    matrix: list[list[Statistic]]
    pairs: list[PairAgreement]

    def to_dict(self) -> dict[str, Any]:
        return {
            "raters": self.raters,
            "matrix": [[cell.to_dict() for cell in row] for row in self.matrix],
            "pairs": [pair.to_dict() for pair in self.pairs],
        }


@dataclass(frozen=True, slots=True)
class PreferenceAgreement:
    """Agreement on pairwise preference choices, counting tie answers as labels and without them."""

    with_ties: Statistic
    without_ties: Statistic
    alpha_with_ties: Statistic
    alpha_without_ties: Statistic
    n_answers: int
    n_tie_answers: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "with_ties": self.with_ties.to_dict(),
            "without_ties": self.without_ties.to_dict(),
            "alpha_with_ties": self.alpha_with_ties.to_dict(),
            "alpha_without_ties": self.alpha_without_ties.to_dict(),
            "n_answers": self.n_answers,
            "n_tie_answers": self.n_tie_answers,
        }


# --------------------------------------------------------------------------------------------------- data


@dataclass(frozen=True, eq=False)
class Ratings:
    """Ratings in long form: dense unit and rater indices, float values (never NaN), original ids kept."""

    unit: IntArray
    rater: IntArray
    value: FloatArray
    n_units: int
    n_raters: int
    unit_ids: npt.NDArray[Any]
    rater_ids: npt.NDArray[Any]

    @classmethod
    def from_long(cls, unit_idx: npt.ArrayLike, rater_idx: npt.ArrayLike, value: npt.ArrayLike) -> Ratings:
        """Build from parallel arrays; ids may be any sortable labels, NaN values count as missing."""
        units, raters = np.asarray(unit_idx).reshape(-1), np.asarray(rater_idx).reshape(-1)
        values = np.asarray(value, dtype=np.float64).reshape(-1)
        if not units.size == raters.size == values.size:
            raise ValueError("unit_idx, rater_idx and value must have the same length")
        present = ~np.isnan(values)
        unit_ids, unit = _dense_codes(units[present])
        rater_ids, rater = _dense_codes(raters[present])
        ratings = cls(unit, rater, values[present], unit_ids.size, rater_ids.size, unit_ids, rater_ids)
        ratings._validate()
        return ratings

    @classmethod
    def from_matrix(cls, values: npt.ArrayLike) -> Ratings:
        """Build from a reliability matrix of shape (n_units, n_raters) with NaN for missing ratings."""
        matrix = np.asarray(values, dtype=np.float64)
        if matrix.ndim != 2:
            raise ValueError(f"a reliability matrix must be 2-D (n_units, n_raters), not {matrix.shape}")
        unit, rater = np.nonzero(~np.isnan(matrix))
        n_units, n_raters = matrix.shape
        ratings = cls(
            unit.astype(np.int64),
            rater.astype(np.int64),
            matrix[unit, rater],
            n_units,
            n_raters,
            np.arange(n_units),
            np.arange(n_raters),
        )
        ratings._validate()
        return ratings

    def _validate(self) -> None:
        if not np.isfinite(self.value).all():
            raise ValueError("rating values must be finite numbers or NaN for missing")
        cell = self.unit * self.n_raters + self.rater
        if self.n_units * self.n_raters <= _DENSE_CELLS:
            duplicated = bool(cell.size) and int(np.bincount(cell).max()) > 1
        else:
            duplicated = np.unique(cell).size != cell.size
        if duplicated:
            raise ValueError("a rater rated the same unit more than once; keep one rating per (unit, rater)")

    def to_matrix(self) -> FloatArray:
        matrix = np.full((self.n_units, self.n_raters), np.nan)
        matrix[self.unit, self.rater] = self.value
        return matrix

    @cached_property
    def coded(self) -> tuple[FloatArray, IntArray]:
        """The sorted distinct values and each rating's index into them."""
        domain, codes = _dense_codes(self.value)
        return domain.astype(np.float64), codes

    @cached_property
    def per_unit(self) -> IntArray:
        """Number of ratings on each unit."""
        return np.bincount(self.unit, minlength=self.n_units).astype(np.int64)


def as_ratings(data: Ratings | npt.ArrayLike) -> Ratings:
    """Accept a Ratings object or a reliability matrix (n_units, n_raters) with NaN for missing."""
    return data if isinstance(data, Ratings) else Ratings.from_matrix(data)


def _dense_codes(x: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], IntArray]:
    """Sorted distinct labels of x and each element's index into them; linear time for compact integers."""
    if x.size and x.dtype.kind in "iuf":
        low, high = x.min(), x.max()
        compact = np.isfinite(low) and np.isfinite(high) and float(high) - float(low) <= 4 * x.size + 1024
        if compact and (x.dtype.kind != "f" or bool(np.all(x == np.floor(x)))):
            offset = (x - low).astype(np.int64)
            present = np.bincount(offset) > 0
            labels = (np.flatnonzero(present) + low).astype(x.dtype)
            return labels, (np.cumsum(present) - 1)[offset].astype(np.int64)
    labels, codes = np.unique(x, return_inverse=True)
    return labels, codes.reshape(-1).astype(np.int64)


def _group_starts(sorted_keys: IntArray) -> tuple[IntArray, IntArray]:
    """Start position and length of each run of equal keys in a sorted array."""
    if sorted_keys.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    return starts.astype(np.int64), np.diff(np.r_[starts, sorted_keys.size]).astype(np.int64)


def _pairs_within_sorted_groups(sorted_keys: IntArray) -> tuple[IntArray, IntArray]:
    """Every ordered pair (i, j), i == j included, of positions that share a key; keys must be sorted."""
    starts, sizes = _group_starts(sorted_keys)
    first = np.repeat(starts, sizes)
    size = np.repeat(sizes, sizes)
    left = np.repeat(np.arange(sorted_keys.size, dtype=np.int64), size)
    offset = np.arange(left.size, dtype=np.int64) - np.repeat(np.cumsum(size) - size, size)
    return left, np.repeat(first, size) + offset


def _unit_value_entries(
    unit: IntArray, code: IntArray, n_units: int, n_values: int
) -> tuple[IntArray, IntArray, IntArray]:
    """(unit, value code, count) for each value present in a unit, sorted by unit then value."""
    key = unit * n_values + code
    if n_units * n_values <= _DENSE_CELLS:
        counts = np.bincount(key, minlength=n_units * n_values)
        cells = np.flatnonzero(counts).astype(np.int64)
        total = counts[cells].astype(np.int64)
    else:
        cells, total = np.unique(key, return_counts=True)
    return cells // n_values, cells % n_values, total.astype(np.int64)


def _pairable_units(r: Ratings) -> Ratings:
    """Only the units with two or more ratings, renumbered densely."""
    keep = r.per_unit[r.unit] >= 2
    kept_units = np.flatnonzero(r.per_unit >= 2)
    renumber = np.cumsum(r.per_unit >= 2) - 1
    return Ratings(
        renumber[r.unit[keep]].astype(np.int64),
        r.rater[keep],
        r.value[keep],
        kept_units.size,
        r.n_raters,
        r.unit_ids[kept_units],
        r.rater_ids,
    )


def _statistic(value: float, n_units: int, reason: str) -> Statistic:
    return Statistic.of(value, n_units) if math.isfinite(value) else Statistic.undefined(reason, n_units)


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")


# ------------------------------------------------------------------------------- Krippendorff's alpha


@dataclass(frozen=True, eq=False)
class _Coincidences:
    """Each unit's additions to the coincidence matrix, kept per unit so that units can be re-weighted."""

    domain: FloatArray
    entry_unit: IntArray
    entry_code: IntArray
    entry_count: IntArray
    pair_unit: IntArray
    pair_cell: IntArray
    pair_weight: FloatArray

    @property
    def n_values(self) -> int:
        return int(self.domain.size)

    @property
    def n_units(self) -> int:
        return int(_group_starts(self.entry_unit)[0].size)

    def matrix(self) -> FloatArray:
        v = self.n_values
        flat = np.bincount(self.pair_cell, weights=self.pair_weight, minlength=v * v)
        return flat.reshape(v, v).astype(np.float64)


def _coincidences(r: Ratings) -> _Coincidences | None:
    domain, code = r.coded
    if domain.size > MAX_DISTINCT_VALUES:
        raise ValueError(
            f"alpha supports at most {MAX_DISTINCT_VALUES} distinct values, got {domain.size}; bin the values"
        )
    m = r.per_unit
    keep = m[r.unit] >= 2
    if not keep.any():
        return None
    eu, ec, en = _unit_value_entries(r.unit[keep], code[keep], r.n_units, domain.size)
    left, right = _pairs_within_sorted_groups(eu)
    # A value paired with itself inside a unit excludes the rating's own pairing (n_uc * (n_uc - 1)).
    same = np.where(left == right, en[left], 0)
    weight = (en[left] * en[right] - same) / (m[eu[left]] - 1)
    cell = ec[left] * domain.size + ec[right]
    return _Coincidences(domain, eu, ec, en, eu[left], cell, weight.astype(np.float64))


def _distance(domain: FloatArray, n_v: FloatArray, level: Level) -> FloatArray:
    """Squared distance between values; ordinal distances depend on the marginals n_v (shape (B, V))."""
    if level == "nominal":
        return 1.0 - np.eye(domain.size)
    if level == "interval":
        return np.subtract.outer(domain, domain) ** 2
    if level == "ratio":
        total = np.add.outer(domain, domain)
        diff = np.subtract.outer(domain, domain)
        return np.divide(diff, total, out=np.zeros_like(diff), where=total != 0) ** 2
    # Ordinal: sum of n_g from c to k minus (n_c + n_k) / 2 is the gap between mid-ranks of c and k.
    mid = np.cumsum(n_v, axis=1) - n_v / 2.0
    return (mid[:, :, None] - mid[:, None, :]) ** 2


def _alpha_batch(o: FloatArray, domain: FloatArray, level: Level) -> FloatArray:
    """Alpha for a stack of coincidence matrices (B, V, V); NaN where expected disagreement is zero."""
    n_v = o.sum(axis=1)
    n = n_v.sum(axis=1)
    d = np.broadcast_to(_distance(domain, n_v, level), o.shape)
    observed = (o * d).sum(axis=(1, 2))
    expected = (n_v[:, :, None] * d * n_v[:, None, :]).sum(axis=(1, 2))
    alpha = np.full(o.shape[0], np.nan)
    ok = expected > 0
    alpha[ok] = 1.0 - (n[ok] - 1.0) * observed[ok] / expected[ok]
    return alpha


def krippendorff_alpha(data: Ratings | npt.ArrayLike, level: Level = "nominal") -> Statistic:
    """Krippendorff's alpha for any number of raters per unit; units with fewer than two ratings drop out."""
    _check_level(level)
    parts = _coincidences(as_ratings(data))
    if parts is None:
        return Statistic.undefined(FEWER_THAN_TWO_RATERS)
    alpha = _alpha_batch(parts.matrix()[None], parts.domain, level)[0]
    return _statistic(alpha, parts.n_units, NO_VARIATION)


# ------------------------------------------------------------------------------------- percent agreement


def _unit_agreement(r: Ratings) -> FloatArray:
    """Share of agreeing rater pairs on each unit with two or more ratings."""
    domain, code = r.coded
    m = r.per_unit
    keep = m[r.unit] >= 2
    eu, _, en = _unit_value_entries(r.unit[keep], code[keep], r.n_units, max(int(domain.size), 1))
    agreeing = np.bincount(eu, weights=(en * (en - 1)).astype(np.float64), minlength=r.n_units)
    pairable = m >= 2
    return agreeing[pairable] / (m[pairable] * (m[pairable] - 1))


def percent_agreement(data: Ratings | npt.ArrayLike) -> Statistic:
    """Mean over units with two or more ratings of the share of rater pairs that gave the same value."""
    shares = _unit_agreement(as_ratings(data))
    if shares.size == 0:
        return Statistic.undefined(FEWER_THAN_TWO_RATERS)
    return Statistic.of(float(shares.mean()), shares.size)


# ---------------------------------------------------------------------------------------------- kappas


def _missing(x: npt.NDArray[Any]) -> BoolArray:
    if x.dtype.kind == "f":
        return np.isnan(x)
    if x.dtype.kind == "O":
        return np.array([v is None or (isinstance(v, float) and math.isnan(v)) for v in x], dtype=bool)
    return np.zeros(x.shape, dtype=bool)


def _kappa_by_pair(
    pair: IntArray, code_a: IntArray, code_b: IntArray, n_pairs: int
) -> tuple[FloatArray, FloatArray, IntArray]:
    """Cohen's kappa, observed agreement and size per rater pair, from one row per shared unit.

    Marginals are counted sparsely, so the cost does not grow with pairs x categories squared.
    Kappa is NaN where chance agreement is total (both raters used one and the same label).
    """
    n = np.bincount(pair, minlength=n_pairs).astype(np.int64)
    safe_n = np.maximum(n, 1).astype(np.float64)
    observed = np.bincount(pair, weights=(code_a == code_b).astype(np.float64), minlength=n_pairs) / safe_n
    width = int(max(code_a.max(initial=0), code_b.max(initial=0))) + 1
    keys_a, count_a = np.unique(pair * width + code_a, return_counts=True)
    keys_b, count_b = np.unique(pair * width + code_b, return_counts=True)
    shared, in_a, in_b = np.intersect1d(keys_a, keys_b, assume_unique=True, return_indices=True)
    products = (count_a[in_a] * count_b[in_b]).astype(np.float64)
    chance = np.bincount(shared // width, weights=products, minlength=n_pairs) / safe_n**2
    kappa = np.full(n_pairs, np.nan)
    ok = (chance < 1.0) & (n > 0)
    kappa[ok] = (observed[ok] - chance[ok]) / (1.0 - chance[ok])
    return kappa, observed, n


def cohen_kappa(a: npt.ArrayLike | Sequence[object], b: npt.ArrayLike | Sequence[object]) -> Statistic:
    """Cohen's kappa for two aligned label arrays; positions where either is missing (NaN/None) drop out."""
    first, second = np.asarray(a).reshape(-1), np.asarray(b).reshape(-1)
    if first.size != second.size:
        raise ValueError("the two label arrays must have the same length")
    both = ~(_missing(first) | _missing(second))
    n = int(both.sum())
    if n < 2:
        return Statistic.undefined(ONE_SHARED_UNIT if n else NO_SHARED_UNITS, n)
    _, codes = np.unique(np.concatenate([first[both], second[both]]), return_inverse=True)
    codes = codes.reshape(-1).astype(np.int64)
    kappa, _, _ = _kappa_by_pair(np.zeros(n, dtype=np.int64), codes[:n], codes[n:], 1)
    return _statistic(float(kappa[0]), n, CHANCE_AGREEMENT_TOTAL)


def _rating_pairs(r: Ratings) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """(rater a, rater b, value code a, value code b) for every pair of raters on a shared unit, a < b."""
    _, code = r.coded
    order = np.argsort(r.unit, kind="stable")
    left, right = _pairs_within_sorted_groups(r.unit[order])
    left, right = order[left], order[right]
    keep = r.rater[left] < r.rater[right]
    left, right = left[keep], right[keep]
    return r.rater[left], r.rater[right], code[left], code[right]


def _pair_statistic(kappa: float, n_shared: int) -> Statistic:
    if n_shared < 2:
        return Statistic.undefined(ONE_SHARED_UNIT, n_shared)
    return _statistic(kappa, n_shared, CHANCE_AGREEMENT_TOTAL)


def _pair_matrix(n_raters: int, cells: dict[tuple[int, int], Statistic]) -> list[list[Statistic]]:
    no_overlap = Statistic.undefined(NO_SHARED_UNITS)
    same = Statistic.undefined(SAME_RATER)
    return [
        [same if i == j else cells.get((min(i, j), max(i, j)), no_overlap) for j in range(n_raters)]
        for i in range(n_raters)
    ]


def pairwise_cohen_kappa(data: Ratings | npt.ArrayLike) -> PairwiseKappa:
    """Cohen's kappa between every pair of raters on the units both rated (values are category codes)."""
    r = as_ratings(data)
    rater_a, rater_b, code_a, code_b = _rating_pairs(r)
    pair_keys, pair = np.unique(rater_a * r.n_raters + rater_b, return_inverse=True)
    kappa, observed, shared = _kappa_by_pair(
        pair.reshape(-1).astype(np.int64), code_a, code_b, pair_keys.size
    )
    ids = r.rater_ids.tolist()
    stats: dict[tuple[int, int], Statistic] = {}
    records: list[PairAgreement] = []
    for key, k, agree, n in zip(
        pair_keys.tolist(), kappa.tolist(), observed.tolist(), shared.tolist(), strict=True
    ):
        i, j = divmod(key, r.n_raters)
        stat = stats[(i, j)] = _pair_statistic(k, n)
        records.append(PairAgreement(ids[i], ids[j], n, stat.value, agree, stat.reason))
    return PairwiseKappa(ids, _pair_matrix(r.n_raters, stats), records)


def _category_table(r: Ratings) -> npt.NDArray[np.int64]:
    """Units x categories counts for the units that have ratings."""
    domain, code = r.coded
    if domain.size > MAX_DISTINCT_VALUES:
        raise ValueError(f"at most {MAX_DISTINCT_VALUES} categories are supported, got {domain.size}")
    v = max(int(domain.size), 1)
    table = np.bincount(r.unit * v + code, minlength=r.n_units * v).reshape(r.n_units, v)
    return table[r.per_unit > 0].astype(np.int64)


def fleiss_kappa(data: Ratings | npt.ArrayLike) -> Statistic:
    """Fleiss' kappa from ratings; defined only when every rated unit has the same number of ratings."""
    return fleiss_kappa_from_counts(_category_table(as_ratings(data)))


def fleiss_kappa_from_counts(counts: npt.ArrayLike) -> Statistic:
    """Fleiss' kappa from a units x categories table of how many raters chose each category."""
    table = np.asarray(counts, dtype=np.float64)
    if table.ndim != 2 or (table < 0).any():
        raise ValueError("counts must be a 2-D table of non-negative counts (units x categories)")
    table = table[table.sum(axis=1) > 0]
    raters = table.sum(axis=1)
    if table.shape[0] == 0 or raters.max() < 2:
        return Statistic.undefined(FEWER_THAN_TWO_RATERS)
    if raters.min() != raters.max():
        return Statistic.undefined(UNEQUAL_RATERS, table.shape[0])
    n = float(raters[0])
    shares = table.sum(axis=0) / table.sum()
    chance = float(shares @ shares)
    if chance >= 1.0:
        return Statistic.undefined(NO_VARIATION, table.shape[0])
    observed = float((((table**2).sum(axis=1) - n) / (n * (n - 1.0))).mean())
    return Statistic.of((observed - chance) / (1.0 - chance), table.shape[0])


# ------------------------------------------------------------------------------------------ rankings


def _as_matrix(data: Ratings | npt.ArrayLike) -> FloatArray:
    matrix = data.to_matrix() if isinstance(data, Ratings) else np.asarray(data, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"expected a 2-D (n_items, n_raters) array, got shape {matrix.shape}")
    return matrix


def _tie_term(column: FloatArray) -> float:
    _, counts = np.unique(column, return_counts=True)
    return float((counts.astype(np.float64) ** 3 - counts).sum())


def kendall_w(scores: Ratings | npt.ArrayLike) -> Statistic:
    """Kendall's W with tie correction; scores is (n_items, n_raters) and only each column's order counts."""
    table = _as_matrix(scores)
    n_items, n_raters = table.shape
    if n_raters < 2:
        return Statistic.undefined(FEWER_THAN_TWO_RATERS, n_items)
    if n_items < 2:
        return Statistic.undefined(FEWER_THAN_TWO_ITEMS, n_items)
    if np.isnan(table).any():
        return Statistic.undefined(INCOMPLETE_RANKINGS, n_items)
    # scipy.stats and scipy.sparse cost tens of MiB in every process; imported where first used.
    from scipy import stats as sps

    ranks = sps.rankdata(table, axis=0)
    ties = sum(_tie_term(ranks[:, j]) for j in range(n_raters))
    rank_sums = ranks.sum(axis=1)
    spread = float(((rank_sums - rank_sums.mean()) ** 2).sum())
    denominator = n_raters**2 * (n_items**3 - n_items) - n_raters * ties
    if denominator <= 0:
        return Statistic.undefined(NO_VARIATION, n_items)
    return Statistic.of(12.0 * spread / denominator, n_items)


def _tau_b(x: FloatArray, y: FloatArray) -> float | None:
    both = ~(np.isnan(x) | np.isnan(y))
    x, y = x[both], y[both]
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    from scipy import stats as sps

    return float(sps.kendalltau(x, y).statistic)


def mean_pairwise_kendall_tau_b(scores: Ratings | npt.ArrayLike) -> Statistic:
    """Mean Kendall tau-b over rater pairs on the items both ranked; (n_items, n_raters), NaN for missing."""
    table = _as_matrix(scores)
    n_items = int((np.sum(~np.isnan(table), axis=1) >= 2).sum())
    if table.shape[1] < 2 or n_items == 0:
        return Statistic.undefined(FEWER_THAN_TWO_RATERS, n_items)
    taus = [_tau_b(table[:, a], table[:, b]) for a, b in combinations(range(table.shape[1]), 2)]
    defined = [tau for tau in taus if tau is not None]
    if not defined:
        return Statistic.undefined(NO_RANKED_PAIRS, n_items)
    return Statistic.of(float(np.mean(defined)), n_items)


# ---------------------------------------------------------------------------------------- preferences


def preference_agreement(
    unit_idx: npt.ArrayLike,
    rater_idx: npt.ArrayLike,
    choice: npt.ArrayLike,
    tie_labels: tuple[str, ...] = ("tie", "both_bad"),
) -> PreferenceAgreement:
    """Agreement on chosen response ids, with tie answers as labels and with them dropped first."""
    choices = np.asarray(choice).reshape(-1).astype(str)
    units, raters = np.asarray(unit_idx).reshape(-1), np.asarray(rater_idx).reshape(-1)
    _, codes = np.unique(choices, return_inverse=True)
    codes = codes.reshape(-1).astype(np.float64)
    decisive = ~np.isin(choices, np.asarray(tie_labels, dtype=str))
    with_ties = Ratings.from_long(units, raters, codes)
    without_ties = Ratings.from_long(units[decisive], raters[decisive], codes[decisive])
    return PreferenceAgreement(
        with_ties=percent_agreement(with_ties),
        without_ties=percent_agreement(without_ties),
        alpha_with_ties=krippendorff_alpha(with_ties, "nominal"),
        alpha_without_ties=krippendorff_alpha(without_ties, "nominal"),
        n_answers=int(choices.size),
        n_tie_answers=int((~decisive).sum()),
    )


# ------------------------------------------------------------------------------------------ bootstrap


@dataclass(frozen=True, eq=False)
class UnitGroups:
    """Units grouped by identical contribution: size[g] units share group g's contribution.

    evaluate maps unit multiplicities per group, shape (B, G), to the statistic per row, NaN if undefined;
    width is how many floats it materialises per row, which bounds the chunk size.
    """

    size: IntArray
    width: int
    evaluate: Callable[[FloatArray], FloatArray]


@runtime_checkable
class UnitDecomposable(Protocol):
    """A statistic built from per-unit contributions, so the bootstrap re-weights units instead of copying."""

    def __call__(self, data: Ratings) -> Statistic: ...

    def unit_groups(self, data: Ratings) -> UnitGroups | None: ...


def _group_units(parts: _Coincidences) -> tuple[IntArray, IntArray]:
    """Group units with identical value counts; returns each unit id's group (-1: none) and group sizes."""
    eu = parts.entry_unit
    starts, per_unit = _group_starts(eu)
    slot = np.arange(eu.size) - np.repeat(starts, per_unit)
    signature = np.full((starts.size, int(per_unit.max())), -1, dtype=np.int64)
    code = parts.entry_code * (int(parts.entry_count.max()) + 1) + parts.entry_count
    signature[np.repeat(np.arange(starts.size), per_unit), slot] = code
    _, inverse, size = np.unique(signature, axis=0, return_inverse=True, return_counts=True)
    group = np.full(int(eu.max()) + 1, -1, dtype=np.int64)
    group[eu[starts]] = inverse.reshape(-1)
    return group, size.astype(np.int64)


def _alpha_groups(parts: _Coincidences, level: Level) -> UnitGroups:
    group, size = _group_units(parts)
    v = parts.n_values
    rows = group[parts.pair_unit]
    from scipy import sparse

    total = sparse.csr_matrix((parts.pair_weight, (rows, parts.pair_cell)), shape=(size.size, v * v))
    # One unit's contribution per group, so that multiplicities can scale it.
    per_unit = (sparse.diags(1.0 / size) @ total).T.tocsr()

    def evaluate(weights: FloatArray) -> FloatArray:
        o = np.asarray(per_unit @ weights.T).T.reshape(-1, v, v)
        return _alpha_batch(o, parts.domain, level)

    return UnitGroups(size, 2 * v * v, evaluate)


def _agreement_groups(shares: FloatArray) -> UnitGroups:
    values, size = np.unique(shares, return_counts=True)

    def evaluate(weights: FloatArray) -> FloatArray:
        return np.asarray((weights @ values) / weights.sum(axis=1), dtype=np.float64)

    return UnitGroups(size.astype(np.int64), 1, evaluate)


@dataclass(frozen=True)
class AlphaStatistic:
    """Krippendorff's alpha at one level, as a callable the bootstrap evaluates on re-weighted units."""

    level: Level = "nominal"

    def __call__(self, data: Ratings | npt.ArrayLike) -> Statistic:
        return krippendorff_alpha(data, self.level)

    def unit_groups(self, data: Ratings) -> UnitGroups | None:
        parts = _coincidences(data)
        return None if parts is None else _alpha_groups(parts, self.level)


@dataclass(frozen=True)
class PercentAgreementStatistic:
    """Percent agreement as a callable the bootstrap evaluates on re-weighted units."""

    def __call__(self, data: Ratings | npt.ArrayLike) -> Statistic:
        return percent_agreement(data)

    def unit_groups(self, data: Ratings) -> UnitGroups | None:
        shares = _unit_agreement(data)
        return _agreement_groups(shares) if shares.size else None


def _group_weights(size: IntArray, count: int, by_index: bool, rng: np.random.Generator) -> FloatArray:
    """How often each group is drawn when all units are resampled with replacement, `count` times."""
    n_units, n_groups = int(size.sum()), int(size.size)
    if not by_index:
        # Drawing n units uniformly and counting them per group is exactly a multinomial over groups.
        return rng.multinomial(n_units, size / n_units, size=count).astype(np.float64)
    unit_group = np.repeat(np.arange(n_groups, dtype=np.int64), size)
    picked = unit_group[rng.integers(0, n_units, size=(count, n_units))]
    picked += np.arange(count, dtype=np.int64)[:, None] * n_groups
    flat = np.bincount(picked.reshape(-1), minlength=count * n_groups)
    return flat.reshape(count, n_groups).astype(np.float64)


def _grouped_draws(groups: UnitGroups, n_boot: int, rng: np.random.Generator) -> FloatArray:
    n_units, n_groups = int(groups.size.sum()), int(groups.size.size)
    # With many distinct groups a wide multinomial is slower than drawing unit indices directly.
    by_index = n_groups * 8 > n_units
    per_draw = max(n_groups, groups.width, n_units if by_index else 1)
    chunk = max(1, _CHUNK_CELLS // per_draw)
    draws = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        count = min(chunk, n_boot - start)
        draws[start : start + count] = groups.evaluate(_group_weights(groups.size, count, by_index, rng))
    return draws


def _take_units(r: Ratings, order: IntArray, start: IntArray, picked: IntArray) -> Ratings:
    """The ratings of the picked units; every draw becomes a unit of its own."""
    lengths = r.per_unit[picked]
    offsets = np.cumsum(lengths) - lengths
    rows = order[np.repeat(start[picked] - offsets, lengths) + np.arange(int(lengths.sum()))]
    unit = np.repeat(np.arange(picked.size, dtype=np.int64), lengths)
    n = picked.size
    return Ratings(unit, r.rater[rows], r.value[rows], n, r.n_raters, np.arange(n), r.rater_ids)


def _resampled_draws(
    statistic: Callable[[Ratings], Statistic], r: Ratings, n_boot: int, rng: np.random.Generator
) -> FloatArray:
    order = np.argsort(r.unit, kind="stable")
    start = np.cumsum(r.per_unit) - r.per_unit
    draws = np.empty(n_boot)
    for b in range(n_boot):
        picked = rng.integers(0, r.n_units, size=r.n_units)
        value = statistic(_take_units(r, order, start, picked)).value
        draws[b] = np.nan if value is None else value
    return draws


def _percentile_interval(value: float, draws: FloatArray, level: float) -> ConfidenceInterval:
    defined = draws[np.isfinite(draws)]
    n_undefined = int(draws.size - defined.size)
    if defined.size < 2:
        return ConfidenceInterval(value, None, None, level, draws.size, n_undefined, MOSTLY_UNDEFINED)
    low, high = np.quantile(defined, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return ConfidenceInterval(value, float(low), float(high), level, draws.size, n_undefined)


def bootstrap_ci(
    statistic: Callable[[Ratings], Statistic],
    data: Ratings | npt.ArrayLike,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> ConfidenceInterval:
    """Percentile interval from resampling units with replacement, seeded.

    Only units with two or more ratings take part, in the point estimate and in every resample (for alpha
    and percent agreement that changes nothing, the others carry no pairs). AlphaStatistic and
    PercentAgreementStatistic take a fast path that re-weights groups of identical units; any other
    callable on Ratings works too and is re-run on each resampled data set. Resamples where the statistic
    is undefined are left out and counted in ``n_undefined``.
    """
    if n_boot < 1 or not 0.0 < level < 1.0:
        raise ValueError("n_boot must be positive and level strictly between 0 and 1")
    ratings = _pairable_units(as_ratings(data))
    point = statistic(ratings)
    if point.value is None:
        return ConfidenceInterval(None, None, None, level, n_boot, n_boot, point.reason)
    rng = np.random.default_rng(seed)
    groups = statistic.unit_groups(ratings) if isinstance(statistic, UnitDecomposable) else None
    if groups is not None:
        draws = _grouped_draws(groups, n_boot, rng)
    else:
        draws = _resampled_draws(statistic, ratings, n_boot, rng)
    return _percentile_interval(point.value, draws, level)


__all__ = [
    "LEVELS",
    "MAX_DISTINCT_VALUES",
    "AlphaStatistic",
    "ConfidenceInterval",
    "Level",
    "PairAgreement",
    "PairwiseKappa",
    "PercentAgreementStatistic",
    "PreferenceAgreement",
    "Ratings",
    "Statistic",
    "UnitDecomposable",
    "UnitGroups",
    "as_ratings",
    "bootstrap_ci",
    "cohen_kappa",
    "fleiss_kappa",
    "fleiss_kappa_from_counts",
    "kendall_w",
    "krippendorff_alpha",
    "mean_pairwise_kendall_tau_b",
    "pairwise_cohen_kappa",
    "percent_agreement",
    "preference_agreement",
]
