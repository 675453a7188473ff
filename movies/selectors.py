"""Reads of the catalogue and of ratings; each selector owns its joins and prefetches."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, Prefetch, Q, QuerySet

from training.ml.text.movielens_titles import article_last

from .models import Genre, Movie, Rater, Rating, Tag, WatchlistEntry

SORTS = {
    "popularity": (F("num_ratings").desc(), "id"),
    "rating": (F("avg_rating").desc(nulls_last=True), F("num_ratings").desc(), "id"),
    "year": (F("year").desc(nulls_last=True), "title", "id"),
    "title": ("title", "id"),
}
DEFAULT_SORT = "popularity"


@dataclass(frozen=True)
class MovieFilters:
    q: str = ""
    genre: str = ""
    year_min: int | None = None
    year_max: int | None = None
    min_ratings: int | None = None
    sort: str = DEFAULT_SORT


def title_matches(query: str) -> Q:
    """Titles containing the query, as stored or as written: "the matrix" finds "Matrix, The"."""
    query = query.strip()
    condition = Q(title__icontains=query)
    split = article_last(query)
    if split is not None:
        rest, article = split
        condition |= Q(title__icontains=rest) & Q(title__iregex=rf",\s*{re.escape(article)}(\s*[()]|$)")
    return condition


def movie_list(*, filters: MovieFilters) -> QuerySet[Movie]:
    movies = Movie.objects.all()
    if filters.q:
        movies = movies.filter(title_matches(filters.q))
    if filters.genre:
        movies = movies.filter(genres__name=filters.genre)
    if filters.year_min is not None:
        movies = movies.filter(year__gte=filters.year_min)
    if filters.year_max is not None:
        movies = movies.filter(year__lte=filters.year_max)
    if filters.min_ratings:
        movies = movies.filter(num_ratings__gte=filters.min_ratings)
    ordering = SORTS.get(filters.sort, SORTS[DEFAULT_SORT])
    return movies.order_by(*ordering).prefetch_related(
        Prefetch("genres", queryset=Genre.objects.order_by("name"))
    )


def movie_get(*, movie_id: int) -> Movie | None:
    return (
        Movie.objects.prefetch_related(Prefetch("genres", queryset=Genre.objects.order_by("name")))
        .filter(pk=movie_id)
        .first()
    )


def movie_top_tags(*, movie: Movie, limit: int = 15) -> list[str]:
    """The movie's most frequent tags, case-folded, most common first."""
    counts: dict[str, tuple[int, str]] = {}
    for tag in Tag.objects.filter(movie=movie).values_list("tag", flat=True).iterator():
        key = tag.strip().lower()
        if key:
            n, shown = counts.get(key, (0, tag.strip()))
            counts[key] = (n + 1, shown)
    ranked = sorted(counts.values(), key=lambda pair: (-pair[0], pair[1].lower()))
    return [shown for _, shown in ranked[:limit]]


def genre_list() -> QuerySet[Genre]:
    return Genre.objects.order_by("name")


def rater_for_user(user) -> Rater | None:
    """The account's rater: no query when it was loaded with the user (token authentication)."""
    if not user.is_authenticated:
        return None
    return getattr(user, "rater", None)  # a missing rater raises RelatedObjectDoesNotExist, an AttributeError


RATING_SORTS = {
    "recent": ("-rated_at", "-id"),
    "oldest": ("rated_at", "id"),
    "highest": ("-rating", "-rated_at", "-id"),
    "lowest": ("rating", "-rated_at", "-id"),
    "title": ("movie__title", "id"),
}
DEFAULT_RATING_SORT = "recent"


@dataclass(frozen=True)
class RatingFilters:
    rating: float | None = None  # exactly this many stars
    genre: str = ""
    rated_since: datetime | None = None
    sort: str = DEFAULT_RATING_SORT


def user_ratings(*, user, filters: RatingFilters | None = None) -> QuerySet[Rating]:
    filters = filters or RatingFilters()
    ratings = Rating.objects.filter(rater__user=user)
    if filters.rating is not None:
        ratings = ratings.filter(rating=filters.rating)
    if filters.genre:
        ratings = ratings.filter(movie__genres__name=filters.genre)
    if filters.rated_since is not None:
        ratings = ratings.filter(rated_at__gte=filters.rated_since)
    return (
        ratings.select_related("movie")
        .prefetch_related(Prefetch("movie__genres", queryset=Genre.objects.order_by("name")))
        .order_by(*RATING_SORTS.get(filters.sort, RATING_SORTS[DEFAULT_RATING_SORT]))
    )


def user_ratings_for_movies(*, user, movie_ids) -> dict[int, float]:
    """The user's ratings of the given movies, in one query."""
    if not user.is_authenticated:
        return {}
    rows = Rating.objects.filter(rater__user=user, movie_id__in=list(movie_ids)).values_list(
        "movie_id", "rating"
    )
    return dict(rows)


def user_watchlist(*, user) -> QuerySet[WatchlistEntry]:
    """The user's watchlist, most recently added first, with movies and genres."""
    return (
        WatchlistEntry.objects.filter(user=user)
        .select_related("movie")
        .prefetch_related(Prefetch("movie__genres", queryset=Genre.objects.order_by("name")))
        .order_by("-added_at", "-id")
    )


def watchlist_mark(*, user, movies) -> None:
    """Set ``on_watchlist`` on each movie, for the cards' "want to watch" buttons (one query)."""
    movies = list(movies)
    listed = watchlist_movie_ids(user=user, movie_ids=[movie.pk for movie in movies])
    for movie in movies:
        movie.on_watchlist = movie.pk in listed


def watchlist_movie_ids(*, user, movie_ids) -> set[int]:
    """Which of the given movies are on the user's watchlist, in one query."""
    if not user.is_authenticated:
        return set()
    return set(
        WatchlistEntry.objects.filter(user=user, movie_id__in=list(movie_ids)).values_list(
            "movie_id", flat=True
        )
    )


def user_rating_count(*, user) -> int:
    if not user.is_authenticated:
        return 0
    return Rating.objects.filter(rater__user=user).count()


def onboarding_movies(*, user, count: int = 12, pool: int = 300) -> list[Movie]:
    """Well-known, genre-diverse movies the user has not rated yet.

    Greedy over the most-rated movies: take a movie when it brings a genre not yet covered,
    then fill up with the most popular of the rest.
    """
    rated = (
        set(Rating.objects.filter(rater__user=user).values_list("movie_id", flat=True))
        if user.is_authenticated
        else set()
    )
    candidates = [
        movie
        for movie in Movie.objects.filter(num_ratings__gt=0)
        .order_by(F("num_ratings").desc(), "id")
        .prefetch_related("genres")[:pool]
        if movie.pk not in rated
    ]
    chosen: list[Movie] = []
    covered: set[str] = set()
    for movie in candidates:
        names = {genre.name for genre in movie.genres.all()}
        if names - covered:
            chosen.append(movie)
            covered |= names
        if len(chosen) == count:
            return chosen
    for movie in candidates:
        if movie not in chosen:
            chosen.append(movie)
            if len(chosen) == count:
                break
    return chosen


def movie_search_ids(*, q: str, limit: int = 10) -> list[int]:
    return list(
        Movie.objects.filter(title_matches(q))
        .order_by(F("num_ratings").desc())
        .values_list("id", flat=True)[:limit]
    )
