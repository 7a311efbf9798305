"""Agreement statistics against published worked examples, reference libraries and undefined cases."""

from __future__ import annotations

import warnings

import krippendorff
import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from app.agreement import stats
from app.agreement.stats import (
    LEVELS,
    AlphaStatistic,
    Level,
    PercentAgreementStatistic,
    Ratings,
    Statistic,
    bootstrap_ci,
    cohen_kappa,
    fleiss_kappa,
    fleiss_kappa_from_counts,
    kendall_w,
    krippendorff_alpha,
    mean_pairwise_kendall_tau_b,
    pairwise_cohen_kappa,
    percent_agreement,
    preference_agreement,
)

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

NAN = np.nan
SEEDS = [0, 1, 2, 3, 4]

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", example C: 4 observers x 12 units with
# missing values. Rows are observers here, as printed; our convention is the transpose.
KRIPPENDORFF_C = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
        [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
    ]
)
KRIPPENDORFF_C_PUBLISHED = {"nominal": 0.743, "ordinal": 0.815, "interval": 0.849, "ratio": 0.797}

# Fleiss (1971) as tabulated on Wikipedia's "Fleiss' kappa" page: 10 subjects, 14 raters, 5 categories.
FLEISS_TABLE = np.array(
    [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
)


def random_matrix(seed: int, n_units: int = 120, n_raters: int = 5, n_values: int = 5) -> np.ndarray:
    """Integer ratings 1..n_values with about 30% missing, some units left with a single rating."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(1, n_values + 1, size=n_units)
    noise = rng.integers(-1, 2, size=(n_units, n_raters)) * (rng.random((n_units, n_raters)) < 0.4)
    values = np.clip(truth[:, None] + noise, 1, n_values).astype(float)
    values[rng.random(values.shape) < 0.3] = NAN
    values[: n_units // 20, 1:] = NAN
    return values


def to_long(matrix: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Long form with shuffled rows and non-contiguous string and integer ids."""
    unit, rater = np.nonzero(~np.isnan(matrix))
    order = np.random.default_rng(seed).permutation(unit.size)
    unit, rater = unit[order], rater[order]
    return unit * 7 + 3, np.array([f"rater-{r}" for r in rater]), matrix[unit, rater]


# --------------------------------------------------------------------------------- published examples


@pytest.mark.parametrize("level", LEVELS)
def test_alpha_reproduces_krippendorff_example_c(level: Level) -> None:
    result = krippendorff_alpha(KRIPPENDORFF_C.T, level)
    assert result.value is not None
    assert round(result.value, 3) == KRIPPENDORFF_C_PUBLISHED[level]
    assert result.reason is None
    assert result.n_units == 11  # the unit with a single rating drops out


def test_alpha_example_c_from_long_form_matches_matrix() -> None:
    long_form = Ratings.from_long(*to_long(KRIPPENDORFF_C.T, seed=3))
    for level in LEVELS:
        assert krippendorff_alpha(long_form, level).value == pytest.approx(
            krippendorff_alpha(KRIPPENDORFF_C.T, level).value, abs=1e-12
        )


def test_fleiss_reproduces_fleiss_1971_table() -> None:
    result = fleiss_kappa_from_counts(FLEISS_TABLE)
    assert result.value is not None
    assert round(result.value, 3) == 0.210
    assert result.n_units == 10


def test_fleiss_from_ratings_equals_from_counts() -> None:
    # Spread each subject's category counts over 14 rater columns.
    matrix = np.array([np.repeat(np.arange(5), row) for row in FLEISS_TABLE], dtype=float)
    assert fleiss_kappa(matrix).value == pytest.approx(
        fleiss_kappa_from_counts(FLEISS_TABLE).value, abs=1e-12
    )


def test_cohen_reproduces_fifty_proposals_example() -> None:
    # 20 yes-yes, 5 yes-no, 10 no-yes, 15 no-no: p_o = 0.7, p_e = 0.5, kappa = 0.4.
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    result = cohen_kappa(a, b)
    assert result.value == pytest.approx(0.4, abs=1e-12)
    assert result.n_units == 50


def test_percent_agreement_by_hand() -> None:
    # Unit 1: 3 raters all agree (1.0). Unit 2: values 1, 1, 2 -> 1 of 3 pairs agree. Unit 3: single rating.
    matrix = np.array([[1, 1, 1], [1, 1, 2], [3, NAN, NAN]], dtype=float)
    result = percent_agreement(matrix)
    assert result.value == pytest.approx((1.0 + 1.0 / 3.0) / 2.0)
    assert result.n_units == 2


# ------------------------------------------------------------------------------- reference libraries


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("level", LEVELS)
def test_alpha_equals_reference_library(seed: int, level: Level) -> None:
    matrix = random_matrix(seed)
    expected = krippendorff.alpha(reliability_data=matrix.T, level_of_measurement=level)
    assert krippendorff_alpha(matrix, level).value == pytest.approx(expected, abs=1e-9)
    long_form = Ratings.from_long(*to_long(matrix, seed))
    assert krippendorff_alpha(long_form, level).value == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("level", LEVELS)
def test_alpha_equals_reference_on_non_integer_values(seed: int, level: Level) -> None:
    rng = np.random.default_rng(100 + seed)
    matrix = np.round(rng.gamma(2.0, 1.5, size=(60, 4)), 1) + rng.normal(0, 0.01, size=(60, 1)).round(2)
    matrix = np.abs(matrix)
    matrix[rng.random(matrix.shape) < 0.25] = NAN
    expected = krippendorff.alpha(reliability_data=matrix.T, level_of_measurement=level)
    assert krippendorff_alpha(matrix, level).value == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_fleiss_equals_statsmodels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 4, size=80)
    matrix = np.where(rng.random((80, 6)) < 0.6, truth[:, None], rng.integers(0, 4, size=(80, 6))).astype(
        float
    )
    counts = np.stack([(matrix == c).sum(axis=1) for c in range(4)], axis=1)
    expected = sm_fleiss_kappa(counts, method="fleiss")
    assert fleiss_kappa(matrix).value == pytest.approx(expected, abs=1e-9)
    assert fleiss_kappa_from_counts(counts).value == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_cohen_equals_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = np.array(["good", "bad", "neutral"])
    a = labels[rng.integers(0, 3, size=200)]
    b = np.where(rng.random(200) < 0.7, a, labels[rng.integers(0, 3, size=200)])
    assert cohen_kappa(a, b).value == pytest.approx(cohen_kappa_score(a, b), abs=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_pairwise_kappa_equals_sklearn_on_shared_units(seed: int) -> None:
    matrix = random_matrix(seed, n_raters=4)
    result = pairwise_cohen_kappa(matrix)
    assert result.raters == [0, 1, 2, 3]
    assert len(result.pairs) == 6
    for pair in result.pairs:
        a, b = matrix[:, pair.rater_a], matrix[:, pair.rater_b]
        both = ~np.isnan(a) & ~np.isnan(b)
        assert pair.n_shared == both.sum()
        assert pair.kappa == pytest.approx(cohen_kappa_score(a[both], b[both]), abs=1e-9)
        assert pair.percent_agreement == pytest.approx(np.mean(a[both] == b[both]), abs=1e-12)
        assert result.matrix[pair.rater_a][pair.rater_b] == result.matrix[pair.rater_b][pair.rater_a]
        assert result.matrix[pair.rater_a][pair.rater_b].value == pair.kappa
    assert all(result.matrix[i][i].value is None for i in range(4))


def test_missing_labels_drop_out_of_cohen_kappa() -> None:
    a = np.array([1, 2, NAN, 1, 2, 2, 1])
    b = np.array([1, 2, 2, NAN, 1, 2, 1])
    keep = ~np.isnan(a) & ~np.isnan(b)
    assert cohen_kappa(a, b).value == pytest.approx(cohen_kappa_score(a[keep], b[keep]), abs=1e-12)
    assert cohen_kappa([None, "x", "y", "x"], ["x", "x", "y", "y"]).n_units == 3


# ------------------------------------------------------------------------------------- rank statistics


@pytest.mark.parametrize("seed", SEEDS)
def test_kendall_w_matches_friedman_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.integers(1, 5, size=(8, 5)).astype(float)  # 8 items, 5 raters, many ties
    chi2 = sps.friedmanchisquare(*scores).statistic  # items are the treatments, raters the blocks
    n_items, n_raters = scores.shape
    assert kendall_w(scores).value == pytest.approx(chi2 / (n_raters * (n_items - 1)), abs=1e-9)


def test_kendall_w_perfect_and_reversed() -> None:
    ranks = np.tile(np.arange(1, 7, dtype=float)[:, None], (1, 4))
    assert kendall_w(ranks).value == pytest.approx(1.0)
    two_opposed = np.stack([np.arange(6.0), np.arange(6.0)[::-1]], axis=1)
    assert kendall_w(two_opposed).value == pytest.approx(0.0, abs=1e-12)


def test_mean_pairwise_tau_b_matches_scipy() -> None:
    rng = np.random.default_rng(7)
    scores = rng.integers(1, 6, size=(30, 4)).astype(float)
    scores[rng.random(scores.shape) < 0.2] = NAN
    expected = []
    for a in range(4):
        for b in range(a + 1, 4):
            both = ~np.isnan(scores[:, a]) & ~np.isnan(scores[:, b])
            expected.append(sps.kendalltau(scores[both, a], scores[both, b], variant="b").statistic)
    assert mean_pairwise_kendall_tau_b(scores).value == pytest.approx(np.mean(expected), abs=1e-12)


# ---------------------------------------------------------------------------------------- preferences


def test_preference_agreement_with_and_without_ties() -> None:
    unit = [0, 0, 0, 1, 1, 1, 2, 2]
    rater = [0, 1, 2, 0, 1, 2, 0, 1]
    choice = ["resp-a", "resp-a", "tie", "resp-c", "resp-c", "resp-d", "both_bad", "resp-e"]
    result = preference_agreement(unit, rater, choice)
    # With ties: unit 0 has 1 of 3 pairs agreeing, unit 1 1 of 3, unit 2 0 of 1.
    assert result.with_ties.value == pytest.approx((1 / 3 + 1 / 3 + 0) / 3)
    # Without ties: unit 0 keeps two agreeing answers, unit 1 unchanged, unit 2 keeps one answer only.
    assert result.without_ties.value == pytest.approx((1.0 + 1 / 3) / 2)
    assert result.without_ties.n_units == 2
    assert (result.n_answers, result.n_tie_answers) == (8, 2)
    assert result.alpha_with_ties.value is not None
    assert result.to_dict()["without_ties"]["value"] == result.without_ties.value


# ------------------------------------------------------------------------------------ undefined cases


def test_single_rater_is_undefined_with_reason() -> None:
    matrix = np.array([[1.0], [2.0], [3.0]])
    for result in (
        krippendorff_alpha(matrix),
        percent_agreement(matrix),
        fleiss_kappa(matrix),
        kendall_w(matrix),
        mean_pairwise_kendall_tau_b(matrix),
    ):
        assert result.value is None
        assert result.reason == stats.FEWER_THAN_TWO_RATERS


def test_no_overlap_is_undefined_with_reason() -> None:
    matrix = np.array([[1, NAN], [2, NAN], [NAN, 1], [NAN, 2]])
    assert krippendorff_alpha(matrix, "interval") == Statistic(None, stats.FEWER_THAN_TWO_RATERS, 0)
    pairwise = pairwise_cohen_kappa(matrix)
    assert pairwise.pairs == []
    assert pairwise.matrix[0][1] == Statistic(None, stats.NO_SHARED_UNITS, 0)
    assert cohen_kappa(matrix[:, 0], matrix[:, 1]).reason == stats.NO_SHARED_UNITS
    assert cohen_kappa([1, 2, NAN], [1, NAN, 2]).reason == stats.ONE_SHARED_UNIT


def test_no_variation_is_undefined_with_reason() -> None:
    matrix = np.full((5, 3), 4.0)
    matrix[0, 0] = NAN
    for level in LEVELS:
        result = krippendorff_alpha(matrix, level)
        assert result == Statistic(None, stats.NO_VARIATION, 5)
    assert fleiss_kappa(np.full((5, 3), 4.0)).reason == stats.NO_VARIATION
    assert cohen_kappa([1, 1, 1], [1, 1, 1]).reason == stats.CHANCE_AGREEMENT_TOTAL
    assert pairwise_cohen_kappa(matrix).pairs[0].kappa is None
    assert percent_agreement(matrix).value == 1.0  # agreement itself is still defined


def test_unequal_raters_per_unit_make_fleiss_undefined() -> None:
    matrix = np.array([[1, 2, 1], [1, 1, NAN], [2, 2, 2]], dtype=float)
    assert fleiss_kappa(matrix).reason == stats.UNEQUAL_RATERS
    assert fleiss_kappa_from_counts([[2, 1], [1, 1]]).reason == stats.UNEQUAL_RATERS


def test_kendall_w_with_missing_or_all_tied_is_undefined() -> None:
    assert kendall_w(np.array([[1, 2], [2, NAN], [3, 1]])).reason == stats.INCOMPLETE_RANKINGS
    assert kendall_w(np.ones((4, 3))).reason == stats.NO_VARIATION
    assert kendall_w(np.ones((1, 3))).reason == stats.FEWER_THAN_TWO_ITEMS
    assert mean_pairwise_kendall_tau_b(np.ones((4, 3))).reason == stats.NO_RANKED_PAIRS


def test_empty_and_all_missing_data_do_not_crash() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert krippendorff_alpha(np.full((3, 3), NAN)).value is None
        assert percent_agreement(np.full((3, 3), NAN)).value is None
        assert fleiss_kappa(np.full((3, 3), NAN)).value is None
        assert pairwise_cohen_kappa(np.full((3, 2), NAN)).pairs == []
        assert bootstrap_ci(AlphaStatistic(), np.full((3, 3), NAN)).reason == stats.FEWER_THAN_TWO_RATERS


def test_statistic_invariants_and_json_shape() -> None:
    with pytest.raises(ValueError):
        Statistic(0.5, "both")
    with pytest.raises(ValueError):
        Statistic(None, None)
    with pytest.raises(ValueError):
        Statistic(float("nan"), None)
    assert Statistic.of(0.25, 4).to_dict() == {"value": 0.25, "reason": None, "n_units": 4}


def test_malformed_input_raises() -> None:
    with pytest.raises(ValueError, match="more than once"):
        Ratings.from_long([0, 0], [1, 1], [1.0, 2.0])
    with pytest.raises(ValueError, match="same length"):
        Ratings.from_long([0, 1], [1], [1.0, 2.0])
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha(KRIPPENDORFF_C.T, "cardinal")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        Ratings.from_matrix([[1.0, np.inf]])


# ------------------------------------------------------------------------------------------ bootstrap


def test_bootstrap_is_reproducible_and_contains_the_estimate() -> None:
    matrix = random_matrix(11, n_units=300)
    for statistic in (AlphaStatistic("ordinal"), AlphaStatistic("nominal"), PercentAgreementStatistic()):
        first = bootstrap_ci(statistic, matrix, n_boot=500, seed=5)
        again = bootstrap_ci(statistic, matrix, n_boot=500, seed=5)
        other = bootstrap_ci(statistic, matrix, n_boot=500, seed=6)
        assert first == again
        assert (first.low, first.high) != (other.low, other.high)
        assert first.low is not None and first.high is not None and first.value is not None
        assert first.low < first.value < first.high
        assert first.value == statistic(matrix).value
        assert first.high - first.low < 0.3


def test_bootstrap_fast_path_agrees_with_generic_resampling() -> None:
    matrix = random_matrix(12, n_units=250)
    fast = bootstrap_ci(AlphaStatistic("interval"), matrix, n_boot=400, seed=1)

    def plain(data: Ratings) -> Statistic:
        return krippendorff_alpha(data, "interval")

    slow = bootstrap_ci(plain, matrix, n_boot=400, seed=1)
    assert fast.value == slow.value
    assert fast.low is not None and slow.low is not None and fast.high is not None and slow.high is not None
    assert abs(fast.low - slow.low) < 0.03
    assert abs(fast.high - slow.high) < 0.03


@pytest.mark.parametrize("level", LEVELS)
def test_reweighted_units_equal_alpha_on_duplicated_units(level: Level) -> None:
    """The fast path's weights must mean exactly "this unit appears w times"."""
    matrix = random_matrix(13, n_units=40)
    ratings = stats._pairable_units(Ratings.from_matrix(matrix))
    parts = stats._coincidences(ratings)
    assert parts is not None
    group, _ = stats._group_units(parts)
    multiplicity = np.random.default_rng(0).integers(0, 4, size=ratings.n_units)
    weights = np.bincount(group, weights=multiplicity, minlength=group.max() + 1).astype(np.float64)
    duplicated = np.repeat(
        stats._pairable_units(Ratings.from_matrix(matrix)).to_matrix(), multiplicity, axis=0
    )
    groups = AlphaStatistic(level).unit_groups(ratings)
    assert groups is not None
    expected = krippendorff_alpha(duplicated, level).value
    assert groups.evaluate(weights[None, :])[0] == pytest.approx(expected, abs=1e-9)


def test_bootstrap_of_undefined_statistic_reports_reason() -> None:
    result = bootstrap_ci(AlphaStatistic(), np.full((10, 3), 2.0), n_boot=50)
    assert result.value is None and result.low is None and result.reason == stats.NO_VARIATION
