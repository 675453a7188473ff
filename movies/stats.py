"""Set-based refresh of the denormalised per-movie rating statistics."""

from __future__ import annotations

from django.db import connection


def movie_stats_refresh() -> None:
    """Recompute num_ratings and avg_rating of every movie from all ratings, in one statement.

    One pass over the ratings, aggregated per movie, instead of two correlated subqueries per
    movie (which cost a random row fetch per rating: 3-4x slower on millions of ratings). The
    NULL row per movie gives movies without ratings 0 and NULL, since COUNT and AVG skip NULLs.
    UPDATE ... FROM runs on PostgreSQL and SQLite 3.33+.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE movies_movie SET num_ratings = stats.n, avg_rating = stats.mean
            FROM (
                SELECT movie_id, COUNT(rating) AS n, AVG(rating) AS mean
                FROM (
                    SELECT movie_id, rating FROM movies_rating
                    UNION ALL
                    SELECT id, NULL FROM movies_movie
                ) AS ratings_and_movies
                GROUP BY movie_id
            ) AS stats
            WHERE movies_movie.id = stats.movie_id
            """
        )
