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


def test_ease_neighbours_keep_each_movies_largest_weights_by_magnitude():
    weights = np.array(
        [
            [0.0, 0.3, -0.9, 0.1],
            [0.2, 0.0, 0.05, -0.01],
            [-0.4, 0.6, 0.0, 0.5],
            [0.7, 0.0, 0.0, 0.0],
        ],
        np.float32,
    )
    model = EASE(weights, item_subset=[0, 2, 3, 5], n_items=6, min_rating=4.0)  # movies 1 and 4 not modelled
    items, kept = model.neighbours(2, chunk=3)  # a chunk that does not divide the four rows
    assert items.shape == kept.shape == (6, 2)
    by_movie = {
        movie: dict(zip(items[movie].tolist(), kept[movie].tolist(), strict=True)) for movie in range(6)
    }
    assert by_movie[0] == pytest.approx({3: -0.9, 2: 0.3})  # the negative weight is the largest
    assert by_movie[2] == pytest.approx({0: 0.2, 3: 0.05})
    assert by_movie[3] == pytest.approx({2: 0.6, 5: 0.5})
    assert kept[5].tolist()[0] == pytest.approx(0.7) and kept[5].tolist()[1] == 0.0
    assert (kept[[1, 4]] == 0).all()  # unmodelled movies move nothing
    assert model.neighbours(10)[0].shape == (6, 4)  # at most every modelled movie


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
