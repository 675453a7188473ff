"""Fixtures shared by every test: a small named cast and a tiny catalogue."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _isolated_artifacts(settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"


@pytest.fixture(autouse=True)
def _no_exploration(settings):
    """Lists are the served policy's top k in tests; the exploration tests turn sampling on."""
    settings.FOR_YOU_EXPLORE_SHARE = 0.0


@pytest.fixture
def alice(db):
    """An end user."""
    from movies.services import account_create

    return account_create(username="alice", password="alice-pass-123")


@pytest.fixture
def bob(db):
    """Another end user, to prove isolation."""
    from movies.services import account_create

    return account_create(username="bob", password="bob-pass-123")


@pytest.fixture
def annie(db):
    """An annotator."""
    from movies.services import account_create

    return account_create(username="annie", password="annie-pass-123", annotator=True)


@pytest.fixture
def sam(db):
    """Staff: an admin."""
    from movies.services import account_create

    return account_create(username="sam", password="sam-pass-123", staff=True)


@pytest.fixture
def catalogue(db):
    """A dozen movies over several genres and years, with dataset ratings."""
    from datetime import UTC, datetime

    from movies.models import Genre, Movie, Rater, Rating

    genres = {
        name: Genre.objects.create(name=name)
        for name in ["Action", "Comedy", "Drama", "Horror", "Sci-Fi", "Romance"]
    }
    specs = [
        (1, "Toy Story", 1995, ["Comedy"]),
        (2, "Alien", 1979, ["Horror", "Sci-Fi"]),
        (3, "Heat", 1995, ["Action", "Drama"]),
        (4, "Matrix, The", 1999, ["Action", "Sci-Fi"]),
        (5, "Notting Hill", 1999, ["Comedy", "Romance"]),
        (6, "Shining, The", 1980, ["Horror"]),
        (7, "Godfather, The", 1972, ["Drama"]),
        (8, "Amelie", 2001, ["Comedy", "Romance"]),
        (9, "Aliens", 1986, ["Action", "Horror", "Sci-Fi"]),
        (10, "Casablanca", 1942, ["Drama", "Romance"]),
        (11, "Airplane!", 1980, ["Comedy"]),
        (12, "Untitled Project", None, []),
    ]
    movies = {}
    for movie_id, title, year, names in specs:
        movie = Movie.objects.create(id=movie_id, title=title, year=year)
        movie.genres.set([genres[name] for name in names])
        movies[movie_id] = movie
    when = datetime(2020, 1, 1, tzinfo=UTC)
    raters = [Rater.objects.create(movielens_id=n) for n in range(1, 6)]
    for i, rater in enumerate(raters):
        for movie_id in range(1, 12 - i):
            Rating.objects.create(
                rater=rater, movie_id=movie_id, rating=1.0 + (movie_id + i) % 9 / 2, rated_at=when
            )
    from movies.stats import movie_stats_refresh

    movie_stats_refresh()
    return movies


pytest_plugins = ["browser_testing"]
