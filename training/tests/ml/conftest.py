"""Shared fixtures: a tiny synthetic MovieLens-like world with real taste structure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.ml.data import Snapshot, temporal_split

GENRES = ("Action", "Comedy", "Drama", "Horror")


def make_taste_world(
    n_users: int = 240, n_items: int = 120, ratings_per_user: int = 30, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Users love one genre cluster and dislike the rest; movie ids are sparse like MovieLens.

    Each user rates mostly movies of their favourite genre (4-5 stars) and a few others (1-3
    stars), one rating per day, so the future is predictable from the past but not from global
    popularity alone.
    """
    rng = np.random.default_rng(seed)
    movie_ids = np.sort(rng.choice(np.arange(1, 10 * n_items), size=n_items, replace=False))
    genre_of = np.arange(n_items) % len(GENRES)
    rows = []
    for user in range(n_users):
        favourite = user % len(GENRES)
        liked = rng.permutation(np.flatnonzero(genre_of == favourite))
        others = rng.permutation(np.flatnonzero(genre_of != favourite))
        n_liked = int(ratings_per_user * 0.8)
        chosen = np.concatenate([liked[:n_liked], others[: ratings_per_user - n_liked]])
        rng.shuffle(chosen)
        for day, item in enumerate(chosen):
            stars = (
                rng.choice([4.0, 4.5, 5.0]) if genre_of[item] == favourite else rng.choice([1.0, 2.0, 3.0])
            )
            rows.append((f"user-{user}", int(movie_ids[item]), float(stars), 1_500_000_000 + 86_400 * day))
    ratings = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    movies = pd.DataFrame(
        {
            "item": movie_ids,
            "title": [f"Movie {m}" for m in movie_ids],
            "year": pd.array([2000 + i % 20 for i in range(n_items)], dtype="Int64"),
            "genres": [[GENRES[g]] for g in genre_of],
        }
    )
    return ratings, movies


@pytest.fixture(scope="session")
def taste_world() -> tuple[pd.DataFrame, pd.DataFrame]:
    return make_taste_world()


@pytest.fixture(scope="session")
def taste_snapshot(taste_world) -> Snapshot:
    ratings, movies = taste_world
    return Snapshot.from_ratings(ratings, movies)


@pytest.fixture(scope="session")
def taste_split(taste_snapshot):
    return temporal_split(taste_snapshot, holdout=0.2)
