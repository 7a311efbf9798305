"""Label aggregation and model ranking: majority vote, Dawid-Skene, rating summaries and Bradley-Terry.

Inputs are parallel integer index arrays (0-based unit, rater, label, response or model indices), as the
service layer gets them from the database after mapping ids to positions. Results are frozen dataclasses
of numpy arrays with a ``records()`` or ``to_dict()`` method for JSON, where undefined numbers become None.

Bradley-Terry scores are on the Elo-like scale Chatbot Arena publishes: ``score = 1000 + 400 * log10(s)``
with strengths ``s`` normalised to geometric mean 1, so the average model sits at 1000 and a 400-point gap
means 10:1 odds of winning. ``log_strength`` is the same fit in natural-log units, mean zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import expit

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

ELO_SCALE = 400.0
ELO_ANCHOR = 1000.0


def _index(x: npt.ArrayLike, name: str) -> IntArray:
    arr = np.asarray(x).reshape(-1)
    if arr.size and (arr.dtype.kind not in "iu" or int(arr.min()) < 0):
        raise ValueError(f"{name} must hold non-negative integer indices")
    return arr.astype(np.int64, copy=False)


def _extent(indices: IntArray, given: int | None, name: str) -> int:
    needed = int(indices.max()) + 1 if indices.size else 0
    if given is None:
        return needed
    if given < needed:
        raise ValueError(f"{name}={given} but the indices go up to {needed - 1}")
    return given


def _same_length(*arrays: npt.NDArray[Any]) -> None:
    if len({a.size for a in arrays}) > 1:
        raise ValueError("the index and value arrays must have the same length")


def _vote_counts(unit: IntArray, label: IntArray, n_units: int, n_classes: int) -> IntArray:
    flat = np.bincount(unit.astype(np.int64, copy=False) * n_classes + label, minlength=n_units * n_classes)
    return flat.reshape(n_units, n_classes).astype(np.int64, copy=False)


# ----------------------------------------------------------------------------------------- majority vote


@dataclass(frozen=True, eq=False)
class MajorityVote:
    """Per unit: the winning label (-1 without votes), its share of the votes, the vote count, tie flag."""

    label: IntArray
    share: FloatArray
    n_votes: IntArray
    tied: BoolArray

    def records(self) -> list[dict[str, Any]]:
        return [
            {"label": lab if n else None, "share": s if n else None, "n_votes": n, "tied": t}
            for lab, s, n, t in zip(
                self.label.tolist(),
                self.share.tolist(),
                self.n_votes.tolist(),
                self.tied.tolist(),
                strict=True,
            )
        ]


def majority_vote(
    unit_idx: npt.ArrayLike,
    label_idx: npt.ArrayLike,
    n_units: int | None = None,
    n_classes: int | None = None,
) -> MajorityVote:
    """Most common label per unit.

    Tie rule: among labels tied for the most votes the smallest label index wins, and ``tied`` is set so
    the caller can treat the unit as unresolved instead.
    """
    unit, label = _index(unit_idx, "unit_idx"), _index(label_idx, "label_idx")
    _same_length(unit, label)
    n_units = _extent(unit, n_units, "n_units")
    n_classes = max(_extent(label, n_classes, "n_classes"), 1)
    counts = _vote_counts(unit, label, n_units, n_classes)
    n_votes = counts.sum(axis=1)
    top = counts.max(axis=1)
    voted = n_votes > 0
    tied = ((counts == top[:, None]).sum(axis=1) > 1) & voted
    # argmax returns the first maximum, which is the documented smallest-index tie rule.
    label_out = np.where(voted, counts.argmax(axis=1), -1).astype(np.int64)
    share = np.where(voted, top / np.maximum(n_votes, 1), 0.0)
    return MajorityVote(label_out, share.astype(np.float64), n_votes.astype(np.int64), tied)


# ------------------------------------------------------------------------------------------ Dawid-Skene


@dataclass(frozen=True, eq=False)
class DawidSkeneResult:
    """EM estimates: per-unit class posteriors, per-rater confusion matrices and reliabilities.

    confusion[r, j, l] is the probability that rater r answers l when the true class is j. reliability[r]
    is the probability that rater r answers correctly, sum_j prior[j] * confusion[r, j, j]: about 1 / K for
    a random clicker and near 0 for one who answers against the truth.
    """

    posterior: FloatArray | None
    label: IntArray
    confidence: FloatArray
    confusion: FloatArray
    reliability: FloatArray
    class_prior: FloatArray
    iterations: int
    converged: bool
    log_likelihood: float


@dataclass(frozen=True, eq=False)
class VoteBlock:
    """Every vote on the units start..stop-1: each vote's unit (absolute index), rater and label."""

    start: int
    stop: int
    unit: IntArray
    rater: IntArray
    label: IntArray


def _soft_votes(local: IntArray, label: IntArray, n_units: int, n_classes: int) -> FloatArray:
    """Vote shares per unit as the starting posterior; units without votes start uniform."""
    counts = _vote_counts(local, label, n_units, n_classes)
    totals = counts.sum(axis=1, keepdims=True)
    # One units-by-classes matrix: a million-unit export would otherwise build four.
    shares = counts / np.maximum(totals, 1)
    shares[totals[:, 0] == 0] = 1.0 / n_classes
    return shares


# Before any data, each rater is taken to answer right a little more often than not: one pseudo-vote on
# every right answer (MAP estimates under a Dirichlet prior). Without it, a class that nobody votes for,
# such as a tie when raters never call ties, starts with a uniform row in every confusion matrix; on an
# item its raters split on, that row explains the split better than two confident raters disagreeing, so
# the model takes the unused class up to mean "split" and labels those items with it. On the demo
# campaign (63 votes, one tie) it made 10 of 21 items ties; with this prior, none. On large data it weighs
# nothing against hundreds of real votes, and raters who are consistently wrong are still turned round.
DIAGONAL_PRIOR = 1.0


class _MStep:
    """The M-step's sums over a pass, block by block: class totals and each rater-label cell's weight."""

    def __init__(self, n_classes: int, n_raters: int) -> None:
        self.k, self.n_raters, self.n_units = n_classes, n_raters, 0
        self.class_total = np.zeros(n_classes)
        self.cell_weight = np.zeros((n_classes, n_raters * n_classes))

    def add(self, posterior: FloatArray, local: IntArray, cell: IntArray) -> None:
        self.n_units += posterior.shape[0]
        self.class_total += posterior.sum(axis=0)
        # One class at a time: a vote-by-class matrix would hold k floats per vote at once.
        for j in range(self.k):
            weights = np.take(posterior[:, j], local)
            self.cell_weight[j] += np.bincount(cell, weights=weights, minlength=self.n_raters * self.k)

    def estimates(self, smoothing: float, diagonal: float) -> tuple[FloatArray, FloatArray]:
        k = self.k
        prior = (self.class_total + smoothing) / (self.n_units + k * smoothing)
        # The pseudo-count keeps every confusion entry positive, so logs stay finite for unseen answers.
        counts = self.cell_weight.reshape(k, self.n_raters, k).transpose(1, 0, 2) + smoothing
        counts[:, np.arange(k), np.arange(k)] += diagonal
        return prior, counts / counts.sum(axis=2, keepdims=True)


def _e_step(
    prior: FloatArray, confusion: FloatArray, local: IntArray, cell: IntArray, n_units: int
) -> tuple[FloatArray, float]:
    log_confusion = np.log(confusion)
    k = prior.size
    # Filled and normalised in place: one units-by-classes matrix, not four.
    log_joint = np.empty((n_units, k))
    for j in range(k):
        # log P(label | true class j) of each vote, read from rater-by-label cells.
        per_cell = log_confusion[:, j, :].ravel()
        log_joint[:, j] = np.bincount(local, weights=np.take(per_cell, cell), minlength=n_units)
    log_joint += np.log(prior)
    # Row-wise log-sum-exp, in place (scipy's logsumexp allocates several more matrices of this size).
    row_max = log_joint.max(axis=1, keepdims=True)
    log_joint -= row_max
    posterior = np.exp(log_joint, out=log_joint)
    row_sum = posterior.sum(axis=1, keepdims=True)
    posterior /= row_sum
    return posterior, float((np.log(row_sum) + row_max).sum())


@dataclass
class _Pass:
    """What one pass over the blocks leaves: the next M-step and the log-likelihood of its estimates."""

    m_step: _MStep
    log_likelihood: float


def _em_pass(
    blocks: Iterable[VoteBlock],
    estimates: tuple[FloatArray, FloatArray] | None,
    n_raters: int,
    n_classes: int,
) -> _Pass:
    """E-step on each block with the given estimates (soft votes without them), then its share of the M-step."""
    result = _Pass(_MStep(n_classes, n_raters), 0.0)
    for block in blocks:
        size = block.stop - block.start
        local = block.unit - block.start
        # Each vote's (rater, label) cell: both steps read the rater's confusion row through it.
        cell = block.rater * n_classes + block.label
        if estimates is None:
            posterior = _soft_votes(local, block.label, size, n_classes)
        else:
            posterior, log_likelihood = _e_step(*estimates, local, cell, size)
            result.log_likelihood += log_likelihood
        result.m_step.add(posterior, local, cell)
    return result


@dataclass
class _Labels:
    """Each unit's most likely class and its posterior, and the last block's whole posterior."""

    label: IntArray
    confidence: FloatArray
    posterior: FloatArray | None = None


def _label_pass(
    blocks: Iterable[VoteBlock], estimates: tuple[FloatArray, FloatArray], n_units: int, n_classes: int
) -> _Labels:
    """The units' classes under the final estimates: one E-step more, rather than an argmax in every pass."""
    labels = _Labels(np.zeros(n_units, dtype=np.int64), np.zeros(n_units))
    for block in blocks:
        size = block.stop - block.start
        cell = block.rater * n_classes + block.label
        posterior, _ = _e_step(*estimates, block.unit - block.start, cell, size)
        labels.label[block.start : block.stop] = posterior.argmax(axis=1)
        labels.confidence[block.start : block.stop] = posterior.max(axis=1)
        labels.posterior = posterior
    return labels


def dawid_skene_blocks(
    blocks: Callable[[], Iterable[VoteBlock]],
    n_units: int,
    n_raters: int,
    n_classes: int,
    max_iter: int = 100,
    tol: float = 1e-6,
    smoothing: float = 0.01,
    keep_posterior: bool = False,
    diagonal: float = DIAGONAL_PRIOR,
) -> DawidSkeneResult:
    """Dawid-Skene over votes read block by block, each pass calling ``blocks()`` again.

    The blocks cover units 0..n_units-1 in order, each holding every vote on its units, so memory holds one
    block and a few numbers per unit, however many votes there are. ``keep_posterior`` (for a single block)
    keeps the units-by-classes posterior. With one block this is exactly ``dawid_skene``.
    """
    if max_iter < 1:
        raise ValueError("max_iter must be at least 1")
    current = _em_pass(blocks(), None, n_raters, n_classes)
    previous, converged, iterations = -math.inf, False, 0
    while iterations < max_iter and not converged:
        iterations += 1
        prior, confusion = current.m_step.estimates(smoothing, diagonal)
        current = _em_pass(blocks(), (prior, confusion), n_raters, n_classes)
        change = abs(current.log_likelihood - previous)
        converged = change <= tol * max(abs(current.log_likelihood), 1.0)
        previous = current.log_likelihood
    labels = _label_pass(blocks(), (prior, confusion), n_units, n_classes)
    return DawidSkeneResult(
        posterior=labels.posterior if keep_posterior else None,
        label=labels.label,
        confidence=labels.confidence,
        confusion=confusion,
        reliability=np.einsum("j,rjj->r", prior, confusion),
        class_prior=prior,
        iterations=iterations,
        converged=converged,
        log_likelihood=current.log_likelihood,
    )


def dawid_skene(
    unit_idx: npt.ArrayLike,
    rater_idx: npt.ArrayLike,
    label_idx: npt.ArrayLike,
    n_classes: int,
    max_iter: int = 100,
    tol: float = 1e-6,
    smoothing: float = 0.01,
    n_units: int | None = None,
    n_raters: int | None = None,
    diagonal: float = DIAGONAL_PRIOR,
) -> DawidSkeneResult:
    """Dawid-Skene EM with a full confusion matrix per rater, started from soft majority vote.

    Converged when the log-likelihood changes by less than ``tol`` relative to its size. ``smoothing`` is a
    Dirichlet pseudo-count added to every confusion cell and class count; ``diagonal`` one more on each
    rater's right answers (see DIAGONAL_PRIOR).
    """
    unit, rater = _index(unit_idx, "unit_idx"), _index(rater_idx, "rater_idx")
    label = _index(label_idx, "label_idx")
    _same_length(unit, rater, label)
    n_classes = _extent(label, n_classes, "n_classes")
    n_units, n_raters = _extent(unit, n_units, "n_units"), _extent(rater, n_raters, "n_raters")
    block = VoteBlock(0, n_units, unit, rater, label)
    return dawid_skene_blocks(
        lambda: [block],
        n_units,
        n_raters,
        n_classes,
        max_iter,
        tol,
        smoothing,
        keep_posterior=True,
        diagonal=diagonal,
    )


# ---------------------------------------------------------------------------------------- rating summary


@dataclass(frozen=True, eq=False)
class RatingSummary:
    """Per response: number of ratings, mean (NaN without ratings), sample std (NaN with fewer than two)."""

    count: IntArray
    mean: FloatArray
    std: FloatArray

    def records(self) -> list[dict[str, Any]]:
        return [
            {"count": n, "mean": m if n else None, "std": s if n > 1 else None}
            for n, m, s in zip(self.count.tolist(), self.mean.tolist(), self.std.tolist(), strict=True)
        ]


def rating_summary(
    response_idx: npt.ArrayLike, score: npt.ArrayLike, n_responses: int | None = None
) -> RatingSummary:
    """Mean, sample standard deviation (ddof=1) and count of the scores each response received."""
    response = _index(response_idx, "response_idx")
    values = np.asarray(score, dtype=np.float64).reshape(-1)
    _same_length(response, values)
    n = _extent(response, n_responses, "n_responses")
    count = np.bincount(response, minlength=n).astype(np.int64)
    total = np.bincount(response, weights=values, minlength=n)
    mean = np.full(n, np.nan)
    np.divide(total, count, out=mean, where=count > 0)
    # Two passes around the mean avoid the cancellation of sum-of-squares formulas.
    squares = np.bincount(response, weights=(values - mean[response]) ** 2, minlength=n)
    std = np.full(n, np.nan)
    np.sqrt(squares / np.maximum(count - 1, 1), out=std, where=count > 1)
    return RatingSummary(count, mean, std)


# ---------------------------------------------------------------------------------------- Bradley-Terry


@dataclass(frozen=True, eq=False)
class BradleyTerryFit:
    """Bradley-Terry strengths: Elo-like scores (mean 1000) and natural-log strengths (mean 0)."""

    score: FloatArray
    log_strength: FloatArray
    iterations: int
    converged: bool


@dataclass(frozen=True, slots=True)
class ModelRating:
    """One model's bootstrap summary; rank 1 + number of models whose lower bound beats our upper bound."""

    model: int
    score: float
    lower: float
    upper: float
    rank: int
    wins: int
    ties: int
    losses: int

    @property
    def battles(self) -> int:
        return self.wins + self.ties + self.losses

    def to_dict(self) -> dict[str, float | int]:
        return {
            "model": self.model,
            "score": self.score,
            "lower": self.lower,
            "upper": self.upper,
            "rank": self.rank,
            "wins": self.wins,
            "ties": self.ties,
            "losses": self.losses,
            "battles": self.battles,
        }


@dataclass(frozen=True, eq=False)
class BradleyTerryBootstrap:
    """Point fit on all battles plus percentile intervals from resampled battles, one entry per model."""

    models: list[ModelRating]
    level: float
    n_boot: int
    all_converged: bool

    def leaderboard(self) -> list[ModelRating]:
        return sorted(self.models, key=lambda m: (m.rank, -m.score, m.model))


def _battles(
    model_a_idx: npt.ArrayLike, model_b_idx: npt.ArrayLike, outcome: npt.ArrayLike, n_models: int
) -> tuple[IntArray, IntArray, FloatArray]:
    a, b = _index(model_a_idx, "model_a_idx"), _index(model_b_idx, "model_b_idx")
    result = np.asarray(outcome, dtype=np.float64).reshape(-1)
    _same_length(a, b, result)
    _extent(a, n_models, "n_models")
    _extent(b, n_models, "n_models")
    if not np.isin(result, (0.0, 0.5, 1.0)).all():
        raise ValueError("outcome must be 1 (a wins), 0 (b wins) or 0.5 (tie)")
    if (a == b).any():
        raise ValueError("a model cannot battle itself")
    return a, b, result


def _wins_matrix(
    a: IntArray, b: IntArray, result: FloatArray, n_models: int, weight: FloatArray
) -> FloatArray:
    """wins[i, j]: how often i beat j, a tie counting half a win for each side."""
    cells = n_models * n_models
    forward = np.bincount(a * n_models + b, weights=weight * result, minlength=cells)
    backward = np.bincount(b * n_models + a, weights=weight * (1.0 - result), minlength=cells)
    return (forward + backward).reshape(n_models, n_models).astype(np.float64)


def _objective(theta: FloatArray, wins: FloatArray, l2: float) -> float:
    diff = theta[:, None] - theta[None, :]
    return float((wins * np.logaddexp(0.0, -diff)).sum() + 0.5 * l2 * theta @ theta)


def _gradient_hessian(theta: FloatArray, wins: FloatArray, l2: float) -> tuple[FloatArray, FloatArray]:
    games = wins + wins.T
    p = expit(theta[:, None] - theta[None, :])
    gradient = (games * p).sum(axis=1) - wins.sum(axis=1) + l2 * theta
    curvature = games * p * (1.0 - p)
    hessian = -curvature
    hessian[np.diag_indices_from(hessian)] = curvature.sum(axis=1) - np.diag(curvature) + l2
    return gradient, hessian


def _fit_log_strength(wins: FloatArray, l2: float, max_iter: int, tol: float) -> tuple[FloatArray, int, bool]:
    """Penalised logistic MLE by Newton steps with backtracking; L2 keeps undefeated models finite."""
    theta = np.zeros(wins.shape[0])
    scale = max(float(wins.sum()), 1.0)
    for iteration in range(1, max_iter + 1):
        gradient, hessian = _gradient_hessian(theta, wins, l2)
        if np.abs(gradient).max(initial=0.0) <= tol * scale:
            return theta - theta.mean(), iteration - 1, True
        # lstsq gives the minimum-norm step, which copes with the shift-invariant direction when l2 = 0.
        step = np.linalg.lstsq(hessian, -gradient, rcond=None)[0]
        current, t = _objective(theta, wins, l2), 1.0
        while _objective(theta + t * step, wins, l2) > current + 1e-4 * t * (gradient @ step) and t > 1e-10:
            t /= 2.0
        theta = theta + t * step
        # At the optimum, rounding in the objective can stall the line search with the gradient a hair above
        # tol (how much depends on the order the battles arrive in): a vanishing step is convergence too.
        if np.abs(t * step).max(initial=0.0) < 1e-12:
            return theta - theta.mean(), iteration, True
    return theta - theta.mean(), max_iter, False


def _elo(log_strength: FloatArray) -> FloatArray:
    return ELO_ANCHOR + ELO_SCALE * log_strength / math.log(10.0)


def _mle_exists(wins: FloatArray) -> bool:
    """Without a penalty the MLE is finite only if every model reaches every other through wins."""
    # scipy.stats and scipy.sparse cost tens of MiB in every process; imported where first used.
    from scipy.sparse.csgraph import connected_components

    n_strong, _ = connected_components(wins > 0, directed=True, connection="strong")
    return bool(n_strong == 1)


def _fit(wins: FloatArray, l2: float, max_iter: int, tol: float) -> BradleyTerryFit:
    theta, iterations, converged = _fit_log_strength(wins, l2, max_iter, tol)
    converged = converged and (l2 > 0 or _mle_exists(wins))
    return BradleyTerryFit(_elo(theta), theta, iterations, converged)


def bradley_terry(
    model_a_idx: npt.ArrayLike,
    model_b_idx: npt.ArrayLike,
    outcome: npt.ArrayLike,
    n_models: int,
    l2: float = 1e-3,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> BradleyTerryFit:
    """Bradley-Terry fit of battles (outcome 1: a wins, 0: b wins, 0.5: tie, counted as half a win each).

    ``l2`` is a ridge on the log-strengths that keeps the fit finite when a model never loses; with
    ``l2=0`` this is the plain MLE Chatbot Arena fits, and ``converged`` is False where it does not exist.
    """
    a, b, result = _battles(model_a_idx, model_b_idx, outcome, n_models)
    return _fit(_wins_matrix(a, b, result, n_models, np.ones(a.size)), l2, max_iter, tol)


def _record_counts(a: IntArray, b: IntArray, result: FloatArray, n_models: int) -> tuple[IntArray, ...]:
    def count(idx: IntArray, mask: BoolArray) -> IntArray:
        return np.bincount(idx[mask], minlength=n_models).astype(np.int64)

    wins = count(a, result == 1.0) + count(b, result == 0.0)
    ties = count(a, result == 0.5) + count(b, result == 0.5)
    losses = count(a, result == 0.0) + count(b, result == 1.0)
    return wins, ties, losses


def _bootstrap_scores(
    a: IntArray, b: IntArray, result: FloatArray, n_models: int, n_boot: int, seed: int, l2: float
) -> tuple[FloatArray, bool]:
    """Scores refitted on battles resampled with replacement, as multinomial counts of distinct battles."""
    key = (a * n_models + b) * 3 + (2.0 * result).astype(np.int64)
    _, first, freq = np.unique(key, return_index=True, return_counts=True)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(a.size, freq / a.size, size=n_boot)
    samples = np.empty((n_boot, n_models))
    converged = True
    for i in range(n_boot):
        wins = _wins_matrix(a[first], b[first], result[first], n_models, counts[i].astype(np.float64))
        fit = _fit(wins, l2, 100, 1e-10)
        samples[i], converged = fit.score, converged and fit.converged
    return samples, converged


def bradley_terry_bootstrap(
    model_a_idx: npt.ArrayLike,
    model_b_idx: npt.ArrayLike,
    outcome: npt.ArrayLike,
    n_models: int,
    *,
    n_boot: int = 200,
    seed: int = 0,
    level: float = 0.95,
    l2: float = 1e-3,
) -> BradleyTerryBootstrap:
    """Bradley-Terry scores with percentile intervals from resampled battles, ranks, win/tie/loss counts."""
    if n_boot < 1 or not 0.0 < level < 1.0:
        raise ValueError("n_boot must be positive and level strictly between 0 and 1")
    a, b, result = _battles(model_a_idx, model_b_idx, outcome, n_models)
    point = _fit(_wins_matrix(a, b, result, n_models, np.ones(a.size)), l2, 100, 1e-10)
    samples, converged = _bootstrap_scores(a, b, result, n_models, n_boot, seed, l2)
    low, high = np.quantile(samples, [(1.0 - level) / 2.0, (1.0 + level) / 2.0], axis=0)
    rank = 1 + (low[None, :] > high[:, None]).sum(axis=1)
    wins, ties, losses = _record_counts(a, b, result, n_models)
    models = [
        ModelRating(m, float(point.score[m]), float(low[m]), float(high[m]), int(rank[m]), *counts)
        for m, counts in enumerate(zip(wins.tolist(), ties.tolist(), losses.tolist(), strict=True))
    ]
    return BradleyTerryBootstrap(models, level, n_boot, converged and point.converged)


__all__ = [
    "ELO_ANCHOR",
    "ELO_SCALE",
    "BradleyTerryBootstrap",
    "BradleyTerryFit",
    "DawidSkeneResult",
    "MajorityVote",
    "ModelRating",
    "RatingSummary",
    "bradley_terry",
    "bradley_terry_bootstrap",
    "dawid_skene",
    "majority_vote",
    "rating_summary",
]
