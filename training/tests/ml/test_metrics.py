"""Ranking metrics against cases computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.ml.metrics import (
    average_precision_at_k,
    bootstrap_mean,
    catalogue_coverage,
    evaluate_rankings,
    hit_rate_at_k,
    intra_list_diversity,
    jaccard_distance,
    ndcg_at_k,
    novelty,
    popularity_probabilities,
    precision_at_k,
    recall_at_k,
)

# One list used by most cases: positions 1..5 hold items 7, 3, 9, 1, 4; items 3 and 4 are
# relevant (plus item 8, never recommended), so hits sit at ranks 2 and 5.
RANKED = np.array([7, 3, 9, 1, 4])
RELEVANT = {3, 4, 8}


def test_ndcg_matches_the_hand_computed_value():
    # DCG@5  = 1/log2(3) + 1/log2(6) = 0.63093 + 0.38685 = 1.01778
    # IDCG@5 = 1/log2(2) + 1/log2(3) + 1/log2(4) = 1 + 0.63093 + 0.5 = 2.13093 (3 relevant)
    expected = (1 / math.log2(3) + 1 / math.log2(6)) / (1 + 1 / math.log2(3) + 1 / math.log2(4))
    assert ndcg_at_k(RANKED, RELEVANT, 5) == pytest.approx(expected)
    assert ndcg_at_k(RANKED, RELEVANT, 5) == pytest.approx(0.47762, abs=1e-5)


def test_ndcg_is_one_for_a_perfect_list_and_zero_without_hits():
    assert ndcg_at_k(np.array([3, 4, 8, 1]), RELEVANT, 3) == pytest.approx(1.0)
    assert ndcg_at_k(np.array([1, 2]), RELEVANT, 2) == 0.0


def test_ndcg_only_looks_at_the_first_k_positions():
    # @2: DCG = 1/log2(3) = 0.63093; IDCG@2 = 1 + 0.63093 = 1.63093 -> 0.38685
    assert ndcg_at_k(RANKED, RELEVANT, 2) == pytest.approx(0.38685, abs=1e-5)


def test_recall_divides_by_the_smaller_of_k_and_the_relevant_count():
    # @5: 2 hits / min(5, 3) = 2/3 ; @2: 1 hit / min(2, 3) = 1/2
    assert recall_at_k(RANKED, RELEVANT, 5) == pytest.approx(2 / 3)
    assert recall_at_k(RANKED, RELEVANT, 2) == pytest.approx(1 / 2)


def test_precision_divides_by_k():
    # @5: 2 hits / 5 ; @2: 1 hit / 2
    assert precision_at_k(RANKED, RELEVANT, 5) == pytest.approx(0.4)
    assert precision_at_k(RANKED, RELEVANT, 2) == pytest.approx(0.5)


def test_hit_rate_is_one_when_any_relevant_movie_is_in_the_top_k():
    assert hit_rate_at_k(RANKED, RELEVANT, 1) == 0.0  # item 7 only
    assert hit_rate_at_k(RANKED, RELEVANT, 2) == 1.0


def test_average_precision_matches_the_hand_computed_value():
    # hits at ranks 2 and 5: precision@2 = 1/2, precision@5 = 2/5
    # AP@5 = (1/2 + 2/5) / min(5, 3) = 0.9 / 3 = 0.3
    assert average_precision_at_k(RANKED, RELEVANT, 5) == pytest.approx(0.3)


def test_coverage_counts_distinct_recommended_movies_over_the_catalogue():
    # lists @2: {7, 3} and {3, 5} -> 3 distinct movies of 10
    assert catalogue_coverage([np.array([7, 3, 9]), np.array([3, 5, 1])], 10, 2) == pytest.approx(0.3)


def test_novelty_is_the_mean_self_information_of_recommended_movies():
    # 4 users; movie 0 rated by 2 (p=1/2, 1 bit), movie 1 by 1 (p=1/4, 2 bits),
    # movie 2 by nobody (counted as 1 user: 2 bits). List [0, 1] and [2] -> (1 + 2 + 2) / 3
    popularity = popularity_probabilities(np.array([2, 1, 0]), n_users=4)
    assert novelty([np.array([0, 1]), np.array([2])], popularity, 2) == pytest.approx(5 / 3)


def test_jaccard_distance_of_genre_sets():
    # {A, B} vs {B, C}: intersection 1, union 3 -> 1 - 1/3
    assert jaccard_distance(frozenset("AB"), frozenset("BC")) == pytest.approx(2 / 3)
    assert jaccard_distance(frozenset(), frozenset()) == 0.0


def test_intra_list_diversity_averages_pairwise_jaccard_distances():
    # items: 0={A,B}, 1={B,C}, 2={A,B}; pairs (0,1)=2/3, (0,2)=0, (1,2)=2/3 -> mean 4/9
    genres = [frozenset("AB"), frozenset("BC"), frozenset("AB")]
    assert intra_list_diversity([np.array([0, 1, 2])], genres, 3) == pytest.approx(4 / 9)


def test_evaluate_rankings_skips_users_without_relevant_movies():
    topk = {0: RANKED, 1: np.array([1, 2, 3]), 2: np.array([4, 5, 6])}
    relevant = {0: RELEVANT, 1: set(), 3: {1}}
    results = evaluate_rankings(topk, relevant, (5,), n_items=10)
    # only user 0 has both a list and relevant movies
    assert results["n_users"] == 1
    assert results["ndcg@5"] == pytest.approx(0.47762, abs=1e-5)
    assert results["map@5"] == pytest.approx(0.3)
    assert results["coverage@5"] == pytest.approx(0.5)  # items 7, 3, 9, 1, 4 of 10


def test_evaluate_rankings_reports_every_metric_for_every_k():
    results = evaluate_rankings(
        {0: RANKED},
        {0: RELEVANT},
        (2, 5),
        n_items=10,
        item_popularity=np.full(10, 0.5),
        item_genres=[frozenset("A")] * 10,
    )
    for k in (2, 5):
        for name in ("ndcg", "recall", "precision", "hit_rate", "map", "coverage", "novelty", "diversity"):
            assert f"{name}@{k}" in results


def test_bootstrap_mean_brackets_the_mean_and_narrows_with_more_values():
    few = bootstrap_mean([0.0, 1.0] * 10, rounds=2000, seed=1)
    many = bootstrap_mean([0.0, 1.0] * 1000, rounds=2000, seed=1)
    assert few["mean"] == many["mean"] == 0.5 and (few["n"], many["n"]) == (20, 2000)
    assert few["low"] < 0.5 < few["high"] and many["low"] < 0.5 < many["high"]
    assert many["high"] - many["low"] < (few["high"] - few["low"]) / 5  # ~1/sqrt(100) as wide
    assert bootstrap_mean([0.3] * 5) == {"mean": 0.3, "low": 0.3, "high": 0.3, "n": 5}
    empty = bootstrap_mean([])
    assert empty["n"] == 0 and np.isnan(empty["mean"])
