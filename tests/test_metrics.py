"""Agreement and scene metrics: known answers worked out by hand, and properties on seeded data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from picinspector.training.metrics import (MIN_SCALE, average_precision, krcc, logistic4, logistic4_fit,
                                           mean_average_precision, per_class_average_precision, plcc,
                                           quality_metrics, rmse, srcc, top1_any_hit)


# --------------------------------------------------------------------------------------------------
# Correlations


def test_perfect_monotone_and_reversed_rankings():
    x = np.linspace(0.0, 3.0, 25)
    y = np.exp(x) + 7.0  # monotone but far from linear
    assert srcc(x, y) == pytest.approx(1.0)
    assert krcc(x, y) == pytest.approx(1.0)
    assert plcc(x, y) < 0.95  # linear correlation does see the curvature
    assert srcc(x, -y) == pytest.approx(-1.0)
    assert krcc(x, y[::-1]) == pytest.approx(-1.0)


def test_plcc_small_example_by_hand():
    # x - mean = [-1.5, -0.5, 0.5, 1.5]; y - mean = [-3, -1, 0, 4]
    # sum(dx dy) = 11, sum(dx^2) = 5, sum(dy^2) = 26  ->  r = 11 / sqrt(130)
    assert plcc([1, 2, 3, 4], [2, 4, 5, 9]) == pytest.approx(11 / math.sqrt(130))


def test_krcc_small_examples_by_hand():
    # 10 pairs, discordant: (2nd, 3rd) and (4th, 5th) -> (8 - 2) / 10
    assert krcc([1, 2, 3, 4, 5], [1, 3, 2, 5, 4]) == pytest.approx(0.6)
    # with ties: 4 concordant, 0 discordant, one pair tied in x only, one tied in y only, 6 pairs:
    # tau-b = 4 / sqrt((6 - 1) * (6 - 1)) = 0.8
    assert krcc([1, 2, 2, 3], [1, 2, 3, 3]) == pytest.approx(0.8)


def test_srcc_small_example_by_hand():
    # d = [-1, 1, -1, 1, 0], sum d^2 = 4 -> 1 - 6 * 4 / (5 * (25 - 1)) = 0.8
    assert srcc([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)


def test_rmse_and_non_finite_pairs():
    assert rmse([0, 0], [3, 4]) == pytest.approx(math.sqrt(12.5))
    # the NaN pair is dropped before anything is computed
    assert plcc([1, 2, np.nan, 3, 4], [2, 4, 100, 5, 9]) == pytest.approx(11 / math.sqrt(130))
    assert math.isnan(srcc([1, 1, 1], [1, 2, 3]))  # constant side
    assert math.isnan(krcc([1], [2]))
    with pytest.raises(ValueError, match="differ in length"):
        srcc([1, 2, 3], [1, 2])


# --------------------------------------------------------------------------------------------------
# Logistic fit


@pytest.mark.parametrize("true", [(80.0, 20.0, 50.0, 8.0), (15.0, 90.0, 40.0, 12.0)])
def test_logistic_fit_recovers_a_synthetic_logistic(true):
    rng = np.random.default_rng(7)
    x = rng.uniform(0, 100, 400)
    y = logistic4(x, *true) + rng.normal(0, 1.0, x.size)
    b1, b2, b3, b4 = logistic4_fit(x, y)
    assert b1 == pytest.approx(true[0], abs=1.5)
    assert b2 == pytest.approx(true[1], abs=1.5)
    assert b3 == pytest.approx(true[2], abs=1.5)
    assert b4 == pytest.approx(true[3], abs=1.0)


def test_quality_metrics_after_the_fit():
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 100, 300)
    mos = logistic4(x, 90.0, 10.0, 55.0, 10.0) + rng.normal(0, 2.0, x.size)
    m = quality_metrics(x, mos)
    assert set(m) == {"n", "srcc", "krcc", "plcc_raw", "plcc", "rmse", "fit", "params"}
    assert m["n"] == 300 and m["fit"] == "logistic4"
    assert m["plcc"] > m["plcc_raw"]  # the mapping straightens the S-curve
    assert m["rmse"] == pytest.approx(2.0, abs=0.4)  # about the noise put in, in MOS units
    # rank statistics ignore a monotone re-mapping of the predictions; the fitted ones nearly do
    m2 = quality_metrics(np.log1p(x), mos)
    assert m2["srcc"] == pytest.approx(m["srcc"]) and m2["krcc"] == pytest.approx(m["krcc"])


def test_fit_falls_back_to_raw_and_says_so():
    m = quality_metrics([1.0, 2.0, 3.0], [2.0, 1.0, 4.0])  # too few points to fit 4 parameters
    assert m["fit"] == "raw" and m["params"] is None
    assert m["plcc"] == pytest.approx(m["plcc_raw"])
    assert logistic4_fit([5.0] * 10, np.arange(10.0)) is None  # constant predictions


def test_fit_cannot_collapse_into_a_step():
    # two clusters: a free fit would put a vertical step between them
    x = np.r_[np.linspace(0, 10, 10), np.linspace(90, 100, 10)]
    y = np.r_[np.full(10, 20.0), np.full(10, 80.0)]
    params = logistic4_fit(x, y)
    assert params[3] >= MIN_SCALE * np.std(x) * (1 - 1e-9)


# --------------------------------------------------------------------------------------------------
# Scene metrics

CLASSES = ("a", "b", "c")


def test_top1_any_hit_by_hand():
    probs = [[0.7, 0.2, 0.1],   # top a, labels {a}     -> hit
             [0.1, 0.3, 0.6],   # top c, labels {b, c}  -> hit
             [0.5, 0.4, 0.1],   # top a, labels {b}     -> miss
             [0.2, 0.3, 0.5]]   # no labels             -> left out
    labels = [["a"], ["b", "c"], ["b"], []]
    assert top1_any_hit(probs, labels, CLASSES) == pytest.approx(2 / 3)
    assert top1_any_hit(probs, [[0], [1, 2], [1], []]) == pytest.approx(2 / 3)  # column indices
    assert math.isnan(top1_any_hit(probs, [[], [], [], []], CLASSES))


def test_average_precision_by_hand_and_ties():
    # hits at ranks 1 and 3: (1/1 + 2/3) / 2
    assert average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx((1 + 2 / 3) / 2)
    # a tie between a positive and a negative counts them together, whatever their order
    assert average_precision([0.5, 0.5], [1, 0]) == pytest.approx(0.5)
    assert average_precision([0.5, 0.5], [0, 1]) == pytest.approx(0.5)
    assert math.isnan(average_precision([0.1, 0.2], [0, 0]))


def test_average_precision_matches_scikit_learn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(11)
    scores = np.round(rng.random(200), 2)  # rounding makes ties
    truth = rng.random(200) < 0.3
    assert average_precision(scores, truth) == pytest.approx(sklearn_metrics.average_precision_score(truth, scores))


def test_map_of_a_perfect_ranking_is_one():
    rng = np.random.default_rng(5)
    labels = [list(rng.choice(CLASSES, size=rng.integers(1, 3), replace=False)) for _ in range(30)]
    # every labelled class scores above every unlabelled one
    probs = [[0.6 + 0.3 * rng.random() if c in ls else 0.5 * rng.random() for c in CLASSES] for ls in labels]
    assert mean_average_precision(probs, labels, CLASSES) == pytest.approx(1.0)
    reversed_probs = [[1 - p for p in row] for row in probs]
    assert mean_average_precision(reversed_probs, labels, CLASSES) < 0.7


def test_map_skips_classes_without_positives_and_checks_labels():
    probs = [[0.9, 0.1, 0.0], [0.2, 0.8, 0.0]]
    ap = per_class_average_precision(probs, [["a"], ["b"]], CLASSES)
    assert ap["a"] == 1.0 and ap["b"] == 1.0 and math.isnan(ap["c"])
    assert mean_average_precision(probs, [["a"], ["b"]], CLASSES) == 1.0
    with pytest.raises(ValueError, match="'z'"):
        mean_average_precision(probs, [["z"], ["b"]], CLASSES)
    with pytest.raises(ValueError, match="2 probability rows but 1 label sets"):
        top1_any_hit(probs, [["a"]], CLASSES)
