"""The Keras fold-in recommender: learning effect, fold-in for new users, run records."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from training.ml.baselines import EASE, Popularity
from training.ml.data import History, Snapshot
from training.ml.evaluation import evaluate_model
from training.ml.recommender import (
    EaseTeacher,
    RecommenderConfig,
    _sample_epoch,
    _timelines,
    train_recommender,
)
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
    expected = {
        *NumpyRecommender.ARRAY_NAMES,
        *NumpyRecommender.OPTIONAL_ARRAY_NAMES,
    }  # with the item-item term
    assert set(result.arrays) == expected
    width = min(FAST.ease_neighbours, result.teacher["items"])
    assert result.arrays["neighbour_items"].shape == (taste_split.train.n_items, width)
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


def one_user_snapshot(stars):
    ratings = pd.DataFrame(
        {"user": 1, "item": np.arange(len(stars)) + 100, "rating": stars, "timestamp": np.arange(len(stars))}
    )
    return Snapshot.from_ratings(ratings)


def test_each_epoch_splits_a_timeline_into_visible_input_and_future_targets():
    snapshot = one_user_snapshot([5.0] * 10)
    config = RecommenderConfig(input_dropout=0.0, recency_half_life=1.0)
    lines = _timelines(snapshot, config)
    input_weight, target_weight = _sample_epoch(snapshot, lines, config, np.random.default_rng(0))
    cut = int((input_weight > 0).sum())
    assert 5 <= cut <= 9  # cuts fall in [min_cut_fraction, 1) of the timeline
    assert (input_weight[:cut] > 0).all() and (target_weight[:cut] == 0).all()  # visible: input only
    assert (input_weight[cut:] == 0).all() and (target_weight[cut:] == 1).all()  # future: targets only
    # the newest visible rating weighs 1, each older one half as much (half-life of one rating)
    assert input_weight[:cut].tolist() == pytest.approx([2.0 ** -(cut - 1 - i) for i in range(cut)])


def test_hidden_past_movies_become_targets_and_disliked_movies_are_neither():
    snapshot = one_user_snapshot([5.0, 2.0, 4.5, 1.0, 4.0, 5.0])
    config = RecommenderConfig(input_dropout=1.0, reconstruction_weight=0.5, recency_half_life=0.0)
    lines = _timelines(snapshot, config)
    input_weight, target_weight = _sample_epoch(snapshot, lines, config, np.random.default_rng(0))
    assert (input_weight == 0).all()  # everything in the past is hidden
    liked = snapshot.rating >= 4.0
    assert (target_weight[~liked] == 0).all()
    assert set(target_weight[liked].tolist()) <= {0.5, 1.0}  # hidden past 0.5, future 1


def test_the_ease_teacher_gives_each_user_soft_targets_over_movies_not_in_the_input(taste_split):
    ease = EASE.fit(taste_split.train)
    teacher = EaseTeacher(ease, temperature=0.02, top_k=5)
    liked = [int(i) for i in ease.item_subset[:3]]
    # Batch row 0 liked three movies; row 1 only disliked one (EASE reads 4+ stars: no targets);
    # row 2 lists one liked movie twice (it counts once).
    rows = np.array([0, 0, 0, 1, 2, 2], np.int32)
    items = np.array([*liked, liked[0], liked[1], liked[1]], np.int32)
    ratings = np.array([5.0, 4.0, 4.5, 2.0, 4.0, 4.0], np.float32)
    target_rows, target_items, probabilities = teacher.targets(rows, items, ratings, n_users=3)

    assert sorted(set(target_rows.tolist())) == [0, 2] and (np.bincount(target_rows) == [5, 0, 5]).all()
    for row in (0, 2):
        mine = target_rows == row
        assert probabilities[mine].sum() == pytest.approx(1.0, abs=1e-5)
        assert not set(target_items[mine].tolist()) & set(items[rows == row].tolist())
    # Row 0's most probable target is EASE's best movie for that input.
    scores = ease.score(History(np.array(liked), np.full(3, 5.0), np.arange(3)))
    scores[liked] = -np.inf
    mine = target_rows == 0
    assert target_items[mine][np.argmax(probabilities[mine])] == int(np.argmax(scores))


def test_the_teacher_pulls_the_student_towards_what_it_recommends(taste_split):
    """A planted teacher that points every liked movie at one movie: the student learns to recommend it."""
    train = taste_split.train
    planted = int(np.argmin(train.item_counts()))  # a rarely rated movie the data alone would not push
    weights = np.zeros((train.n_items, train.n_items), np.float32)
    weights[:, planted] = 1.0
    weights[planted, planted] = 0.0
    teacher = EASE(weights, np.arange(train.n_items), train.n_items, min_rating=4.0)
    teacher.l2 = 1.0
    histories = [h for h in train.histories() if planted not in h.item_idx.tolist()][:80]

    def share_recommending_it(scorer) -> float:
        return float(np.mean([planted in scorer.top_k(h, 10)[0].tolist() for h in histories]))

    # The item-item term is off: it would add the planted weights to the scores directly.
    alone = train_recommender(train, replace(FAST, teacher_weight=0.0, ease_weight=0.0))
    taught = train_recommender(train, replace(FAST, teacher_weight=10.0, ease_weight=0.0), teacher=teacher)
    assert alone.teacher is None and taught.teacher == {"l2": 1.0, "items": train.n_items}
    assert share_recommending_it(alone.scorer) < 0.4
    assert share_recommending_it(taught.scorer) > 0.9
