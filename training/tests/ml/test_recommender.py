"""The Keras fold-in recommender: learning effect, fold-in for new users, run records."""

from __future__ import annotations

import numpy as np
import pytest

from training.ml.baselines import Popularity
from training.ml.data import History
from training.ml.evaluation import evaluate_model
from training.ml.recommender import RecommenderConfig, train_recommender
from training.ml.scoring import NumpyRecommender

FAST = RecommenderConfig(embedding_dim=16, epochs=15, batch_size=32, learning_rate=0.01, seed=7)


@pytest.fixture(scope="module")
def trained(taste_split):
    progress = []
    result = train_recommender(
        taste_split.train, FAST, progress=lambda epoch, n, logs: progress.append((epoch, n, logs))
    )
    return result, progress


def test_the_recommender_beats_popularity_on_data_with_taste_structure(trained, taste_split):
    result, _ = trained
    popularity = evaluate_model(Popularity.fit(taste_split.train), taste_split, (10,))
    recommender = evaluate_model(result.scorer, taste_split, (10,))
    assert recommender["ndcg@10"] > popularity["ndcg@10"] + 0.2


def test_training_lowers_the_loss_and_reports_progress_every_epoch(trained):
    result, progress = trained
    assert [(epoch, n) for epoch, n, _ in progress] == [(e, FAST.epochs) for e in range(1, FAST.epochs + 1)]
    assert result.history[-1]["loss"] < result.history[0]["loss"]


def test_the_result_exports_servable_arrays_and_records_the_run(trained, taste_split):
    result, _ = trained
    assert set(result.arrays) == set(NumpyRecommender.ARRAY_NAMES)
    assert result.arrays["item_embeddings"].shape == (taste_split.train.n_items, FAST.embedding_dim)
    assert result.arrays["item_embeddings"].dtype == np.float32
    manifest = result.manifest()
    assert manifest["seed"] == 7 and manifest["config"]["embedding_dim"] == 16
    assert manifest["data_fingerprint"] == taste_split.train.fingerprint()
    assert result.train_seconds > 0


def test_a_new_users_recommendations_follow_the_movies_they_rate(trained, taste_world, taste_snapshot):
    result, _ = trained
    _, movies = taste_world
    genre = {
        taste_snapshot.item_index[m]: g[0] for m, g in zip(movies["item"], movies["genres"], strict=True)
    }
    model = result.scorer
    cold, _ = model.top_k(History.empty(), k=10)
    horror = [i for i in range(model.n_items) if genre[i] == "Horror"][:5]
    rated = History(horror, [5.0] * 5, np.arange(5))
    warm, _ = model.top_k(rated, k=10)
    assert set(cold.tolist()) != set(warm.tolist())
    assert sum(genre[i] == "Horror" for i in warm.tolist()) >= 8
    assert not np.allclose(model.user_embedding(History.empty()), model.user_embedding(rated))
