"""The NumPy serving interface shared by every policy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training.ml.baselines import EASE, EASEConfig, Popularity
from training.ml.data import History
from training.ml.scoring import NumpyRecommender, input_weights, recency_ranks, scorer_from_arrays


def random_recommender(n_items: int = 50, dim: int = 8, seed: int = 0) -> NumpyRecommender:
    rng = np.random.default_rng(seed)
    return NumpyRecommender(
        input_embeddings=rng.normal(size=(n_items, dim)),
        encoder_bias=rng.normal(size=dim),
        item_embeddings=rng.normal(size=(n_items, dim)),
        item_bias=rng.normal(size=n_items),
        rating_weights=np.linspace(0.1, 1.0, 10),
        recency_half_life=5.0,
    )


@pytest.fixture(scope="module")
def policies(taste_split):
    return {
        "recommender": random_recommender(taste_split.train.n_items),
        "popularity": Popularity.fit(taste_split.train),
        "ease": EASE.fit(taste_split.train, EASEConfig(l2=50.0)),
    }


@pytest.mark.parametrize("name", ["recommender", "popularity", "ease"])
def test_top_k_never_recommends_a_rated_movie(policies, taste_split, name):
    model = policies[name]
    for user in range(0, taste_split.train.n_users, 17):
        history = taste_split.train.history(user)
        items, scores = model.top_k(history, k=20)
        assert len(items) == 20
        assert not set(items.tolist()) & set(history.item_idx.tolist())
        assert (np.diff(scores) <= 0).all()


@pytest.mark.parametrize("name", ["recommender", "popularity", "ease"])
def test_top_k_can_include_rated_movies_when_asked(policies, taste_split, name):
    model = policies[name]
    history = taste_split.train.history(3)
    items, scores = model.top_k(history, k=model.n_items, exclude_rated=False)
    assert sorted(items.tolist()) == list(range(model.n_items))
    assert np.allclose(scores, np.sort(model.score(history))[::-1])


@pytest.mark.parametrize("name", ["recommender", "popularity", "ease"])
def test_every_policy_round_trips_through_its_arrays(policies, taste_split, name):
    model = policies[name]
    history = taste_split.train.history(5)
    rebuilt = scorer_from_arrays(model.kind, model.export_arrays())
    assert type(rebuilt) is type(model)
    assert np.array_equal(rebuilt.score(history), model.score(history))


@pytest.mark.parametrize("name", ["recommender", "popularity", "ease"])
def test_score_batch_matches_scoring_one_user_at_a_time(policies, taste_split, name):
    model = policies[name]
    histories = [taste_split.train.history(u) for u in range(4)]
    expected = np.stack([model.score(h) for h in histories])
    assert np.allclose(model.score_batch(histories), expected, atol=1e-5)


@pytest.mark.parametrize("name", ["recommender", "popularity", "ease"])
def test_explain_points_at_a_movie_the_user_rated(policies, taste_split, name):
    model = policies[name]
    history = taste_split.train.history(7)
    item = int(model.top_k(history, 1)[0][0])
    assert model.explain(history, item) in set(history.item_idx.tolist())


@pytest.mark.parametrize("name", ["recommender", "popularity", "ease"])
def test_explaining_a_whole_list_matches_explaining_each_movie(policies, taste_split, name):
    model = policies[name]
    for user in (2, 11):
        history = taste_split.train.history(user)
        items = model.top_k(history, 10)[0]
        expected = [model.explain(history, int(item)) for item in items]
        assert model.explain_many(history, items).tolist() == expected


def test_the_recommender_explains_with_the_most_similar_liked_movie():
    model = random_recommender()
    history = History([1, 2, 3], [5.0, 1.0, 4.0], [10, 20, 30])
    target = 9
    model.item_embeddings[1] = model.item_embeddings[target] * 3.0  # same direction as the target
    model.item_embeddings[2] = model.item_embeddings[target]  # also identical, but disliked
    assert model.explain(history, target) == 1


def test_a_user_with_no_ratings_still_gets_recommendations():
    items, _ = random_recommender().top_k(History.empty(), k=5)
    assert len(items) == 5


def test_recency_ranks_count_strictly_newer_ratings():
    # timestamps 5, 9, 9, 1: two ratings are newer than 5, none than 9, three than 1
    assert recency_ranks(np.array([5, 9, 9, 1])).tolist() == [2, 0, 0, 3]


def test_input_weights_multiply_rating_level_and_recency_decay():
    history = History([0, 1], [5.0, 0.5], [100, 50])
    weights = input_weights(history, np.linspace(0.1, 1.0, 10), recency_half_life=1.0)
    # 5 stars -> level 9 -> 1.0, newest; 0.5 stars -> level 0 -> 0.1, one newer rating -> halved
    assert weights.tolist() == pytest.approx([1.0, 0.05])


def test_serving_modules_never_import_tensorflow():
    code = (
        "import sys, training.ml.scoring, training.ml.baselines, training.ml.artifacts, "
        "training.ml.evaluation, training.ml.recommender; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'django')))"
    )
    repo = Path(__file__).resolve().parents[3]
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo
    )
    assert result.stdout.strip() == "[]"
