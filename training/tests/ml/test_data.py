"""Snapshots, histories and the per-user temporal split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.ml.data import History, Snapshot, hold_out_users, item_genres, temporal_split


def ratings_frame(rows):
    return pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])


def test_a_snapshot_maps_users_and_movies_to_dense_indices():
    ratings = ratings_frame([("bob", 50, 4.0, 10), ("alice", 7, 3.0, 20), ("bob", 7, 5.0, 5)])
    snapshot = Snapshot.from_ratings(ratings)
    assert snapshot.user_keys.tolist() == ["alice", "bob"]
    assert snapshot.item_ids.tolist() == [7, 50]
    assert snapshot.item_index == {7: 0, 50: 1}
    bob = snapshot.history(snapshot.user_index["bob"])
    assert bob.item_idx.tolist() == [0, 1]  # time order: movie 7 at t=5, movie 50 at t=10
    assert bob.ratings.dtype == np.float32 and bob.timestamps.dtype == np.int64


def test_the_catalogue_includes_unrated_movies_when_movies_are_given():
    ratings = ratings_frame([(1, 7, 3.0, 20)])
    movies = pd.DataFrame(
        {"item": [3, 7, 9], "title": ["a", "b", "c"], "year": [None] * 3, "genres": [[]] * 3}
    )
    snapshot = Snapshot.from_ratings(ratings, movies)
    assert snapshot.item_ids.tolist() == [3, 7, 9]
    assert snapshot.history(0).item_idx.tolist() == [1]


def test_a_rerated_movie_keeps_only_the_latest_rating():
    ratings = ratings_frame([(1, 7, 2.0, 10), (1, 7, 5.0, 30), (1, 8, 3.0, 20)])
    snapshot = Snapshot.from_ratings(ratings)
    assert snapshot.n_ratings == 2
    assert snapshot.history(0).ratings.tolist() == [3.0, 5.0]


def test_csr_holds_ratings_or_ones():
    snapshot = Snapshot.from_ratings(ratings_frame([(1, 7, 2.0, 10), (2, 8, 4.5, 20)]))
    assert snapshot.csr("rating").toarray().tolist() == [[2.0, 0.0], [0.0, 4.5]]
    assert snapshot.csr().toarray().tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_the_split_holds_out_each_users_latest_fifth_with_ties_broken_by_movie_id():
    # user 1: 10 ratings, the last three share a timestamp; floor(0.2 * 10) = 2 go to test,
    # and among the tie (movies 30, 20, 10 at t=100) the two highest movie ids are "latest".
    rows = [(1, 100 + i, 4.0, i) for i in range(7)] + [(1, m, 4.0, 100) for m in (30, 20, 10)]
    split = temporal_split(ratings_frame(rows), holdout=0.2)
    assert sorted(split.train.item_ids[split.test.item_idx].tolist()) == [20, 30]
    assert split.test.n_ratings == 2 and split.train.n_ratings == 8


def test_users_with_few_ratings_stay_in_train_and_others_give_at_least_one():
    rows = [(1, m, 4.0, m) for m in range(4)] + [(2, m, 4.0, m) for m in range(6)]
    split = temporal_split(ratings_frame(rows), holdout=0.1, min_ratings=5)
    test_users = split.test.user_keys[split.test.user_idx].tolist()
    assert test_users == [2]  # user 1 has 4 < 5 ratings; user 2 gives max(1, floor(0.6)) = 1


def test_the_split_is_leak_free_and_later_than_train(taste_split):
    train, test = taste_split.train, taste_split.test
    train_pairs = set(zip(train.user_idx.tolist(), train.item_idx.tolist(), strict=True))
    test_pairs = set(zip(test.user_idx.tolist(), test.item_idx.tolist(), strict=True))
    assert not train_pairs & test_pairs
    last_train = np.full(train.n_users, -1, np.int64)
    np.maximum.at(last_train, train.user_idx, train.timestamp)
    assert (test.timestamp >= last_train[test.user_idx]).all()


def test_the_split_is_deterministic(taste_world):
    ratings, _ = taste_world
    first = temporal_split(ratings, holdout=0.3)
    shuffled = temporal_split(ratings.sample(frac=1.0, random_state=1), holdout=0.3)
    assert first.test.fingerprint() == shuffled.test.fingerprint()
    assert first.train.fingerprint() == shuffled.train.fingerprint()


def test_relevant_movies_are_held_out_ratings_of_four_or_more():
    rows = [(1, m, 5.0, m) for m in range(8)] + [(1, 8, 3.5, 8), (1, 9, 4.0, 9)]
    split = temporal_split(ratings_frame(rows), holdout=0.2)
    # held out: movies 8 (3.5 stars) and 9 (4 stars); only 9 is relevant
    assert split.relevant() == {0: {split.train.item_index[9]}}


def test_a_user_sample_keeps_train_and_the_chosen_users_whole_test_periods(taste_split):
    sample = taste_split.sample_users(10, seed=3)
    assert sample.train is taste_split.train
    users = np.unique(sample.test.user_idx)
    assert len(users) == 10
    for user in users.tolist():  # each chosen user keeps all of their held-out ratings
        assert (sample.test.user_idx == user).sum() == (taste_split.test.user_idx == user).sum()
    again = taste_split.sample_users(10, seed=3)
    assert np.array_equal(np.unique(again.test.user_idx), users)  # deterministic for a seed
    everyone = len(np.unique(taste_split.test.user_idx))
    assert taste_split.sample_users(0) is taste_split and taste_split.sample_users(everyone) is taste_split


def test_unseen_users_keep_their_histories_but_leave_the_training_data(taste_split):
    split, fit_on = hold_out_users(taste_split, 0.25, seed=3)
    unseen = np.unique(split.test.user_idx)
    evaluated = np.unique(taste_split.test.user_idx)
    assert len(unseen) == round(0.25 * len(evaluated)) and set(unseen) <= set(evaluated)
    # only their held-out ratings are evaluated, all of them
    assert split.test.n_ratings == np.isin(taste_split.test.user_idx, unseen).sum()
    # their train ratings are the histories they are folded in from, but nothing is fitted on them
    assert split.train is taste_split.train
    assert not np.isin(fit_on.user_idx, unseen).any()
    assert fit_on.n_ratings == taste_split.train.n_ratings - np.isin(taste_split.train.user_idx, unseen).sum()
    assert fit_on.n_users == taste_split.train.n_users and fit_on.n_items == taste_split.train.n_items
    again, _ = hold_out_users(taste_split, 0.25, seed=3)
    assert np.array_equal(np.unique(again.test.user_idx), unseen)
    folds = [np.unique(hold_out_users(taste_split, 0.25, fold=f, seed=3)[0].test.user_idx) for f in range(4)]
    assert np.array_equal(folds[0], unseen)
    assert np.array_equal(np.sort(np.concatenate(folds)), evaluated)  # disjoint, and every user once
    with pytest.raises(ValueError, match="fold 4 does not exist"):
        hold_out_users(taste_split, 0.25, fold=4)
    for fraction in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="users held out"):
            hold_out_users(taste_split, fraction)


def test_a_holdout_outside_zero_one_is_rejected():
    with pytest.raises(ValueError):
        temporal_split(ratings_frame([(1, 1, 4.0, 1)]), holdout=1.0)


def test_item_genres_align_with_catalogue_indices(taste_world, taste_snapshot):
    _, movies = taste_world
    genres = item_genres(taste_snapshot, movies)
    first = movies.set_index("item").loc[int(taste_snapshot.item_ids[0]), "genres"]
    assert genres[0] == frozenset(first)
    assert len(genres) == taste_snapshot.n_items


def test_a_history_casts_its_arrays_and_can_be_empty():
    history = History([1, 2], [4, 5], [10, 20])
    assert history.item_idx.dtype == np.int32 and len(history) == 2
    assert len(History.empty()) == 0
    with pytest.raises(ValueError):
        History([1], [4.0, 5.0], [1])
