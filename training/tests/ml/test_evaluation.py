"""Evaluating and comparing scorers on a split."""

from __future__ import annotations

import numpy as np
import pytest

from training.ml.baselines import EASE, EASEConfig, Popularity
from training.ml.evaluation import (
    compare,
    evaluate_model,
    ndcg_by_activity,
    paired_ndcg_difference,
    rank_users,
)


def test_rankings_exclude_the_users_train_movies(taste_split):
    model = Popularity.fit(taste_split.train)
    rankings = rank_users(model, taste_split, list(range(taste_split.train.n_users)), k=20)
    for user, ranked in rankings.items():
        assert len(ranked) == 20
        assert not set(ranked.tolist()) & set(taste_split.train.history(user).item_idx.tolist())


def test_rankings_agree_with_top_k(taste_split):
    model = EASE.fit(taste_split.train, EASEConfig(l2=50.0))
    rankings = rank_users(model, taste_split, [0, 1, 2], k=10)
    for user in (0, 1, 2):
        expected, _ = model.top_k(taste_split.train.history(user), 10)
        assert np.array_equal(rankings[user], expected)


def test_evaluate_model_reports_accuracy_and_beyond_accuracy_metrics(taste_world, taste_split):
    _, movies = taste_world
    results = evaluate_model(Popularity.fit(taste_split.train), taste_split, (5, 10), movies)
    for k in (5, 10):
        for name in ("ndcg", "recall", "precision", "hit_rate", "map", "coverage", "novelty", "diversity"):
            assert 0.0 <= results[f"{name}@{k}"] <= (20.0 if name == "novelty" else 1.0)
    assert results["n_users"] == len(taste_split.relevant())


def test_compare_builds_one_row_per_scorer(taste_split):
    table = compare(
        {
            "popularity": Popularity.fit(taste_split.train),
            "ease": EASE.fit(taste_split.train, EASEConfig(l2=50.0)),
        },
        taste_split,
        (10,),
    )
    assert list(table.index) == ["popularity", "ease"]
    assert table.loc["ease", "ndcg@10"] > table.loc["popularity", "ndcg@10"]


def test_ndcg_by_activity_groups_users_by_train_ratings_and_matches_the_overall_mean(taste_split):
    popularity = Popularity.fit(taste_split.train)
    activity = np.diff(taste_split.train.indptr)
    edge = int(np.median(activity))
    table = ndcg_by_activity({"popularity": popularity}, taste_split, edges=(edge,))

    relevant = taste_split.relevant(4.0)
    counts = activity[sorted(relevant)]
    assert table.index.tolist() == [f"0-{edge - 1}", f"{edge}+"]
    assert table["users"].tolist() == [int((counts < edge).sum()), int((counts >= edge).sum())]
    # the user-weighted mean of the groups is the overall NDCG@10
    overall = evaluate_model(popularity, taste_split, k_values=(10,))["ndcg@10"]
    weighted = (table["users"] * table["popularity"]).sum() / table["users"].sum()
    assert weighted == pytest.approx(overall)


def test_the_paired_difference_is_the_gap_in_mean_ndcg_with_an_interval_around_it(taste_split):
    popularity = Popularity.fit(taste_split.train)
    ease = EASE.fit(taste_split.train, EASEConfig(l2=50.0))
    table = compare({"popularity": popularity, "ease": ease}, taste_split, (10,))
    difference = paired_ndcg_difference(ease, popularity, taste_split, bootstrap_rounds=500)
    assert difference["n"] == len(taste_split.relevant(4.0))
    assert difference["mean"] == pytest.approx(
        table.loc["ease", "ndcg@10"] - table.loc["popularity", "ndcg@10"]
    )
    assert difference["low"] < difference["mean"] < difference["high"]
    assert difference["low"] > 0  # EASE beats popularity on this world by more than noise
    itself = paired_ndcg_difference(ease, ease, taste_split, bootstrap_rounds=50)
    assert itself["mean"] == itself["low"] == itself["high"] == 0.0
