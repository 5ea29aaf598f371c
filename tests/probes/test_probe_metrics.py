"""The benchmark's rank metrics against worked examples computed by hand and against scipy.stats."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from scoring.probes import auc_mann_whitney, spearman_rho


def test_auc_worked_example_with_a_tie() -> None:
    # pos 3 beats 1, 2 and ties 3 (2.5); 4 and 5 beat all three (3 + 3): U = 8.5 of 9 pairs.
    assert auc_mann_whitney([3, 4, 5], [1, 2, 3]) == pytest.approx(8.5 / 9)


def test_auc_extremes_and_chance() -> None:
    assert auc_mann_whitney([10, 11], [1, 2, 3]) == 1.0
    assert auc_mann_whitney([1, 2, 3], [10, 11]) == 0.0
    assert auc_mann_whitney([5, 5], [5, 5, 5]) == 0.5


def test_auc_matches_scipy_mann_whitney_u() -> None:
    rng = np.random.default_rng(3)
    pos = np.round(rng.normal(1.0, 1.0, 37), 1)  # rounding makes ties, which both must count as halves
    neg = np.round(rng.normal(0.0, 1.0, 23), 1)
    u = stats.mannwhitneyu(pos, neg, alternative="two-sided").statistic
    assert auc_mann_whitney(pos, neg) == pytest.approx(u / (pos.size * neg.size), abs=1e-12)


def test_auc_refuses_an_empty_side() -> None:
    with pytest.raises(ValueError, match="at least one"):
        auc_mann_whitney([], [1.0])


def test_spearman_worked_example_without_ties() -> None:
    # d = rank differences (-1, 1, -1, 1, 0): rho = 1 - 6 * 4 / (5 * 24) = 0.8.
    assert spearman_rho([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
    assert spearman_rho([0, 1, 2, 3], [9, 7, 5, 1]) == pytest.approx(-1.0)


def test_spearman_worked_example_with_ties() -> None:
    # ranks of y = (1, 2, 3.5, 5, 3.5); centred x ranks (-2..2), centred y ranks (-2, -1, .5, 2, .5):
    # cov = 4 + 1 + 0 + 2 + 1 = 8; rho = 8 / sqrt(10 * 9.5).
    assert spearman_rho([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(8 / math.sqrt(95))


def test_spearman_matches_scipy() -> None:
    rng = np.random.default_rng(5)
    x = rng.integers(0, 6, 40)
    y = x + rng.integers(-3, 4, 40)
    assert spearman_rho(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)


def test_spearman_constant_side_is_nan_and_bad_lengths_raise() -> None:
    assert math.isnan(spearman_rho([0, 1, 2], [7, 7, 7]))
    with pytest.raises(ValueError, match="equal-length"):
        spearman_rho([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match=">= 2 points"):
        spearman_rho([1], [1])
