from __future__ import annotations

import math

import numpy as np
import pytest

from feedback.leaderboard import bootstrap_intervals, bradley_terry, plot_win_rates, win_rate_matrix

TRUE_LOG_STRENGTH = {"ppo v2": 1.5, "base v3": 0.7, "base v2": 0.0, "popularity": -0.6, "random": -1.6}


def synthetic_pairs(n: int = 3000, seed: int = 0, tie_share: float = 0.1) -> list[tuple[str, str, float]]:
    """Comparisons drawn from a Bradley-Terry model with known strengths, some ties and "both bad"."""
    rng = np.random.default_rng(seed)
    labels = list(TRUE_LOG_STRENGTH)
    pairs = []
    for _ in range(n):
        a, b = rng.choice(labels, size=2, replace=False)
        p = 1.0 / (1.0 + math.exp(-(TRUE_LOG_STRENGTH[a] - TRUE_LOG_STRENGTH[b])))
        tie = rng.random() < tie_share
        score = 0.5 if tie else float(rng.random() < p)
        pairs.append((str(a), str(b), score))
    return pairs


def test_bradley_terry_recovers_the_known_strength_order():
    strengths = bradley_terry(synthetic_pairs())
    assert list(strengths) == list(TRUE_LOG_STRENGTH)  # strongest first
    fitted = {label: math.log(s) for label, s in strengths.items()}
    # ties pull strengths together a little; the spacing is still close to the truth
    for label, truth in TRUE_LOG_STRENGTH.items():
        assert fitted[label] == pytest.approx(truth - np.mean(list(TRUE_LOG_STRENGTH.values())), abs=0.35)


def test_strengths_have_geometric_mean_one():
    strengths = bradley_terry(synthetic_pairs(n=500))
    assert np.mean(np.log(list(strengths.values()))) == pytest.approx(0.0, abs=1e-9)


def test_ties_count_as_half_a_win_for_each_side():
    # a beats b once, b beats a once, one tie: each has 1.5 wins out of 3 -> equal strength
    strengths = bradley_terry([("a", "b", 1.0), ("b", "a", 1.0), ("a", "b", 0.5)])
    assert strengths["a"] == pytest.approx(strengths["b"])
    # two ties and one win for a: a has 2 of 3 -> s_a / (s_a + s_b) close to 2/3 (tiny prior aside)
    strengths = bradley_terry([("a", "b", 0.5), ("b", "a", 0.5), ("a", "b", 1.0)])
    assert strengths["a"] / (strengths["a"] + strengths["b"]) == pytest.approx(2 / 3, abs=1e-3)


def test_an_undefeated_source_gets_a_finite_strength():
    strengths = bradley_terry([("a", "b", 1.0)] * 5 + [("b", "c", 1.0)] * 5)
    assert list(strengths) == ["a", "b", "c"]
    assert all(math.isfinite(s) for s in strengths.values())


def test_comparing_a_source_with_itself_is_ignored():
    assert bradley_terry([("a", "a", 1.0)]) == {}
    assert bootstrap_intervals([]) == {}


def test_bootstrap_intervals_are_seeded_and_cover_the_point_estimate():
    pairs = synthetic_pairs(n=600, seed=3)
    strengths = bradley_terry(pairs)
    intervals = bootstrap_intervals(pairs, rounds=100, seed=1)
    assert intervals == bootstrap_intervals(pairs, rounds=100, seed=1)
    for label, (low, high) in intervals.items():
        assert low < strengths[label] < high
    assert intervals["ppo v2"][0] > intervals["random"][1]  # clearly separated


def test_the_win_rate_matrix_counts_ties_as_half_and_follows_the_given_order():
    pairs = [("a", "b", 1.0), ("a", "b", 0.5), ("b", "a", 1.0), ("a", "c", 1.0)]
    rates = win_rate_matrix(pairs, order=["c", "b", "a"])
    assert rates.labels == ["c", "b", "a"]
    a, b, c = 2, 1, 0
    assert rates.rates[a, b] == pytest.approx(1.5 / 3) and rates.rates[b, a] == pytest.approx(1.5 / 3)
    assert rates.rates[a, c] == 1.0 and rates.rates[c, a] == 0.0
    assert math.isnan(rates.rates[b, c]) and rates.games[a, b] == 3


def test_the_win_rate_heatmap_is_a_png():
    png = plot_win_rates(win_rate_matrix(synthetic_pairs(n=200)))
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
