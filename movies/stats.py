"""Set-based refresh of the denormalised per-movie rating statistics."""

from __future__ import annotations

from django.db import connection


def movie_stats_refresh() -> None:
    """Recompute num_ratings and avg_rating of every movie from all ratings, in one statement each."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE movies_movie SET
              num_ratings = COALESCE((SELECT COUNT(*) FROM movies_rating r WHERE r.movie_id = movies_movie.id), 0),
              avg_rating = (SELECT AVG(r.rating) FROM movies_rating r WHERE r.movie_id = movies_movie.id)
            """
        )
