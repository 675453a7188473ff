from __future__ import annotations

import numpy as np

from training.ml.steering import Steering, steer, zscore

# A pool of four in the policy's order: an obscure old film, a popular new one, an obscure new one,
# a popular old one.
RANKS = -np.arange(4.0)
NUM_RATINGS = np.array([5, 5000, 8, 4000])
YEARS = np.array([1950, 2015, 2018, 1960], dtype=float)
NO_GENRE = np.zeros(4, bool)


def order(steering: Steering, *, k: int = 4, in_genre=NO_GENRE, years=YEARS) -> list[int]:
    return steer(
        rank_scores=RANKS, num_ratings=NUM_RATINGS, years=years, in_genre=in_genre, steering=steering, k=k
    ).tolist()


def test_as_is_keeps_the_policys_order():
    assert order(Steering()) == [0, 1, 2, 3]
    assert not Steering().active


def test_more_popular_moves_a_popular_movie_up():
    steered = order(Steering(popularity=1))
    assert steered.index(3) < 3
    assert steered.index(0) > 0


def test_less_popular_moves_an_obscure_movie_up():
    steered = order(Steering(popularity=-1))
    assert steered.index(2) < 2
    assert steered.index(1) > 1


def test_more_recent_moves_a_new_movie_up_and_less_recent_an_old_one():
    assert order(Steering(recency=1))[0] in (1, 2)
    assert order(Steering(recency=-1)).index(3) < 3


def test_a_genre_focus_leads_with_that_genre():
    in_genre = np.array([False, False, False, True])
    assert order(Steering(genre="Drama"), in_genre=in_genre)[0] == 3


def test_it_returns_k_positions():
    assert len(order(Steering(popularity=1), k=2)) == 2


def test_unknown_years_count_as_average():
    years = np.array([np.nan, 2015, np.nan, 1960])
    assert sorted(order(Steering(recency=1), years=years)) == [0, 1, 2, 3]


def test_a_constant_column_standardises_to_zeros():
    assert zscore(np.array([3.0, 3.0])).tolist() == [0.0, 0.0]
    assert zscore(np.array([np.nan])).tolist() == [0.0]
