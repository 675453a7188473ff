"""Popularity and EASE behind the serving interface."""

from __future__ import annotations

import numpy as np
import pytest

from training.ml.baselines import EASE, UNSCORED, EASEConfig, Popularity, tune_ease
from training.ml.evaluation import evaluate_model


def test_popularity_ranks_movies_by_how_many_users_rated_them(taste_split):
    model = Popularity.fit(taste_split.train)
    history = taste_split.train.history(0)
    assert np.array_equal(model.score(history), taste_split.train.item_counts().astype(np.float32))


def test_ease_beats_popularity_on_data_with_taste_structure(taste_split):
    popularity = evaluate_model(Popularity.fit(taste_split.train), taste_split, (10,))
    ease = evaluate_model(EASE.fit(taste_split.train, EASEConfig(l2=50.0)), taste_split, (10,))
    assert ease["ndcg@10"] > popularity["ndcg@10"] + 0.2


def test_ease_weights_have_a_zero_diagonal(taste_split):
    model = EASE.fit(taste_split.train, EASEConfig(l2=10.0))
    assert np.allclose(np.diag(model.weights), 0.0)


def test_ease_models_only_the_most_rated_movies_when_capped(taste_split):
    model = EASE.fit(taste_split.train, EASEConfig(max_items=30))
    assert len(model.item_subset) == 30
    liked = taste_split.train.select(taste_split.train.rating >= model.min_rating)
    counts = liked.item_counts()
    left_out = np.setdiff1d(np.arange(model.n_items), model.item_subset)
    assert counts[left_out].max() <= counts[model.item_subset].min()
    scores = model.score(taste_split.train.history(0))
    assert scores.shape == (model.n_items,)
    assert (scores[left_out] == UNSCORED).all()


def test_ease_explains_with_the_rated_movie_of_largest_weight(taste_split):
    model = EASE.fit(taste_split.train, EASEConfig(l2=50.0))
    history = taste_split.train.history(0)
    item = int(model.top_k(history, 1)[0][0])
    reason = model.explain(history, item)
    assert reason in history.item_idx
    rows = model.position[history.item_idx]
    assert model.weights[model.position[reason], item] == pytest.approx(model.weights[rows, item].max())


def test_tune_ease_picks_lambda_from_the_grid_on_train_only(taste_split):
    seen = []

    def evaluate(model, split):
        seen.append(split.train.n_ratings + split.test.n_ratings)
        return evaluate_model(model, split, (10,))["ndcg@10"]

    model, scores = tune_ease(taste_split.train, EASEConfig(l2_grid=(10.0, 1000.0)), evaluate=evaluate)
    assert set(scores) == {10.0, 1000.0}
    assert set(seen) == {taste_split.train.n_ratings}  # validation carved from train, never test
    assert model.n_items == taste_split.train.n_items
