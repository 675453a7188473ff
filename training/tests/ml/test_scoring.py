"""The NumPy serving interface shared by every policy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training.ml.artifacts import scorer_from_arrays
from training.ml.baselines import EASE, EASEConfig, Popularity
from training.ml.data import History
from training.ml.scoring import NumpyRecommender, input_weights, recency_ranks


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


def with_item_item_term(model: NumpyRecommender, ease: EASE, m: int, scale: float) -> NumpyRecommender:
    items, weights = ease.neighbours(m)
    arrays = model.export_arrays() | {
        "neighbour_items": items,
        "neighbour_weights": weights * scale,
        "neighbour_min_rating": np.asarray(ease.min_rating, np.float32),
    }
    return NumpyRecommender.from_arrays(arrays)


def with_neighbours(model: NumpyRecommender, items: list, weights: list) -> NumpyRecommender:
    """``model`` with a hand-built item-item term (rows: each movie's neighbours and weights)."""
    return NumpyRecommender.from_arrays(
        model.export_arrays()
        | {"neighbour_items": np.array(items), "neighbour_weights": np.array(weights, np.float32)}
    )


@pytest.fixture(scope="module")
def policies(taste_split):
    ease = EASE.fit(taste_split.train, EASEConfig(l2=50.0))
    recommender = random_recommender(taste_split.train.n_items)
    return {
        "recommender": recommender,
        "recommender+ease": with_item_item_term(recommender, ease, m=10, scale=4.0),
        "popularity": Popularity.fit(taste_split.train),
        "ease": ease,
    }


POLICIES = ["recommender", "recommender+ease", "popularity", "ease"]


@pytest.mark.parametrize("name", POLICIES)
def test_top_k_never_recommends_a_rated_movie(policies, taste_split, name):
    model = policies[name]
    for user in range(0, taste_split.train.n_users, 17):
        history = taste_split.train.history(user)
        items, scores = model.top_k(history, k=20)
        assert len(items) == 20
        assert not set(items.tolist()) & set(history.item_idx.tolist())
        assert (np.diff(scores) <= 0).all()


@pytest.mark.parametrize("name", POLICIES)
def test_top_k_can_include_rated_movies_when_asked(policies, taste_split, name):
    model = policies[name]
    history = taste_split.train.history(3)
    items, scores = model.top_k(history, k=model.n_items, exclude_rated=False)
    assert sorted(items.tolist()) == list(range(model.n_items))
    assert np.allclose(scores, np.sort(model.score(history))[::-1])


@pytest.mark.parametrize("name", POLICIES)
def test_every_policy_round_trips_through_its_arrays(policies, taste_split, name):
    model = policies[name]
    history = taste_split.train.history(5)
    rebuilt = scorer_from_arrays(model.kind, model.export_arrays())
    assert type(rebuilt) is type(model)
    assert np.array_equal(rebuilt.score(history), model.score(history))


@pytest.mark.parametrize("name", POLICIES)
def test_score_batch_matches_scoring_one_user_at_a_time(policies, taste_split, name):
    model = policies[name]
    histories = [taste_split.train.history(u) for u in range(4)]
    expected = np.stack([model.score(h) for h in histories])
    assert np.allclose(model.score_batch(histories), expected, atol=1e-5)


@pytest.mark.parametrize("name", POLICIES)
def test_explain_points_at_a_movie_the_user_rated(policies, taste_split, name):
    model = policies[name]
    history = taste_split.train.history(7)
    item = int(model.top_k(history, 1)[0][0])
    assert model.explain(history, item) in set(history.item_idx.tolist())


@pytest.mark.parametrize("name", POLICIES)
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


def test_the_item_item_term_adds_the_neighbour_weights_of_each_liked_movie():
    plain = random_recommender(n_items=6)
    items = [[1, 2], [0, 0], [0, 0], [1, 4], [0, 0], [0, 0]]
    weights = [[0.5, -0.25], [0, 0], [0, 0], [1.0, 2.0], [0, 0], [0, 0]]
    model = with_neighbours(plain, items, weights)
    history = History([0, 3, 5], [5.0, 3.5, 4.0], [1, 2, 3])  # 3 is below the 4-star input threshold
    assert np.allclose(model.score(history) - plain.score(history), [0, 0.5, -0.25, 0, 0, 0])
    history = History([0, 3], [4.0, 4.5], [1, 2])  # both count; movie 1 gets two contributions
    assert np.allclose(model.score(history) - plain.score(history), [0, 1.5, -0.25, 0, 2.0, 0])
    assert np.allclose(model.score(History.empty()), plain.score(History.empty()))
    assert np.array_equal(model.user_embedding(history), plain.user_embedding(history))


def test_with_all_its_neighbours_the_term_is_ease_on_the_modelled_movies(taste_split):
    ease = EASE.fit(taste_split.train, EASEConfig(l2=50.0, max_items=40))
    plain = random_recommender(taste_split.train.n_items)
    model = with_item_item_term(plain, ease, m=40, scale=3.0)
    history = taste_split.train.history(2)
    term = model.score(history) - plain.score(history)
    assert np.allclose(term[ease.item_subset], 3.0 * ease.score(history)[ease.item_subset], atol=1e-5)
    left_out = np.setdiff1d(np.arange(ease.n_items), ease.item_subset)
    assert np.allclose(term[left_out], 0.0, atol=1e-5)


def test_recommender_arrays_without_the_item_item_term_still_load():
    """Artifacts written before the term existed have no neighbour arrays and score as before."""
    plain = random_recommender()
    assert set(plain.export_arrays()) == set(NumpyRecommender.ARRAY_NAMES)
    assert NumpyRecommender.from_arrays(plain.export_arrays()).neighbour_items is None


@pytest.mark.parametrize(
    "neighbours, message",
    [
        ({"neighbour_items": np.zeros((50, 3), np.int32)}, "come together"),
        (
            {"neighbour_items": np.zeros((49, 3), np.int32), "neighbour_weights": np.zeros((49, 3))},
            "must both be",
        ),
        (
            {"neighbour_items": np.full((50, 3), 50, np.int32), "neighbour_weights": np.zeros((50, 3))},
            "catalogue indices",
        ),
        (
            {"neighbour_items": np.zeros((50, 3)), "neighbour_weights": np.zeros((50, 3))},
            "catalogue indices",
        ),
    ],
)
def test_mismatched_neighbour_arrays_are_refused(neighbours, message):
    with pytest.raises(ValueError, match=message):
        NumpyRecommender.from_arrays(random_recommender().export_arrays() | neighbours)


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


def test_the_item_item_term_explains_with_the_liked_movie_that_adds_most():
    plain = random_recommender(n_items=6)
    items = [[5, 2], [5, 0], [0, 0], [5, 4], [5, 0], [0, 0]]
    weights = [[0.5, -1.0], [9.0, 0], [0, 0], [2.0, 3.0], [0.25, 0], [0, 0]]
    model = with_neighbours(plain, items, weights)
    # movie 1 would add most to movie 5 but is rated below the term's 4 stars
    history = History([0, 1, 3, 4], [4.0, 3.5, 5.0, 4.5], [1, 2, 3, 4])
    weight, supporter = model.item_item_support(history, np.array([5, 4, 2, 5]))
    assert np.allclose(weight, [2.0, 3.0, 0.0, 2.0])  # movie 2: -1 from movie 0, nothing from the others
    assert supporter.tolist() == [3, 3, -1, 3]
    assert model.explain(history, 5) == 3
    assert model.explain_many(history, np.array([5, 4])).tolist() == [3, 3]
    # no liked movie adds anything to movie 2: the embeddings explain it, as without the term
    assert model.explain(history, 2) == plain.explain(history, 2)
    assert model.explain(History([3], [3.0], [1]), 5) == 3  # nothing liked enough: embeddings
    weight, supporter = model.item_item_support(History([0], [5.0], [1]), np.array([2]))
    assert weight.tolist() == [0.0] and supporter.tolist() == [-1]  # only a negative contribution
