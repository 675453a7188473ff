"""Recommendations for the request path: numpy scoring of the active model, never TensorFlow."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import F

from movies.models import Movie, Rating


@dataclass
class Recommendation:
    movie: Movie
    score: float
    reason: str


@dataclass
class RecommendationList:
    policy: str
    version: int | None
    items: list[Recommendation]


def popular_diverse(*, exclude: set[int], k: int, pool_factor: int = 8) -> list[Recommendation]:
    """The most-rated movies, interleaving genres so the list is not one genre deep."""
    pool = list(
        Movie.objects.filter(num_ratings__gt=0)
        .exclude(pk__in=exclude)
        .order_by(F("num_ratings").desc(), "id")
        .prefetch_related("genres")[: k * pool_factor]
    )
    chosen: list[Movie] = []
    genre_counts: dict[str, int] = {}
    remaining = pool
    while remaining and len(chosen) < k:
        # Penalise genres already shown: pick the candidate whose genres are least represented.
        best = min(
            remaining[: k * 2],
            key=lambda movie: (
                sum(genre_counts.get(genre.name, 0) for genre in movie.genres.all()) / max(1, len(movie.genres.all())),
                remaining.index(movie),
            ),
        )
        chosen.append(best)
        remaining = [movie for movie in remaining if movie.pk != best.pk]
        for genre in best.genres.all():
            genre_counts[genre.name] = genre_counts.get(genre.name, 0) + 1
    return [
        Recommendation(movie=movie, score=float(movie.num_ratings), reason=f"popular: {movie.num_ratings} ratings")
        for movie in chosen
    ]


def recommendations_for_user(*, user, k: int = 20) -> RecommendationList:
    rated = set(Rating.objects.filter(rater__user=user).values_list("movie_id", flat=True))
    return RecommendationList(policy="popularity", version=None, items=popular_diverse(exclude=rated, k=k))
