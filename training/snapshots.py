"""Reads the database into the plain frames the ML core trains on (no ORM objects per row)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from django.db import connection

from movies.models import Genre, Movie, Rating

FETCH_CHUNK = 200_000


def epoch_sql(column: str) -> str:
    """SQL for a datetime column as unix seconds, for a query run with a parameter list.

    The ``%%`` matters: Django turns ``%s`` into a placeholder whenever parameters are passed.
    """
    if connection.vendor == "postgresql":
        return f"CAST(EXTRACT(EPOCH FROM {column}) AS BIGINT)"
    return f"CAST(strftime('%%s', {column}) AS INTEGER)"


def ratings_frame(*, rater_ids: Iterable[int] | None = None) -> pd.DataFrame:
    """Every rating (dataset users and site accounts) as ``user, item, rating, timestamp``.

    ``user`` is the Rater primary key, the same key for dataset users and site accounts.
    """
    table = Rating._meta.db_table
    sql = f"SELECT rater_id, movie_id, rating, {epoch_sql('rated_at')} FROM {table}"
    params: list = []
    if rater_ids is not None:
        ids = list(rater_ids)
        if not ids:
            return pd.DataFrame({"user": [], "item": [], "rating": [], "timestamp": []}).astype(
                {"user": np.int64, "item": np.int64, "rating": np.float32, "timestamp": np.int64}
            )
        sql += f" WHERE rater_id IN ({', '.join(['%s'] * len(ids))})"
        params = ids
    chunks = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(FETCH_CHUNK):
            chunks.append(np.array(rows, dtype=np.float64))
    data = np.concatenate(chunks) if chunks else np.zeros((0, 4))
    return pd.DataFrame(
        {
            "user": data[:, 0].astype(np.int64),
            "item": data[:, 1].astype(np.int64),
            "rating": data[:, 2].astype(np.float32),
            "timestamp": data[:, 3].astype(np.int64),
        }
    )


def movies_frame() -> pd.DataFrame:
    """Every movie as ``item, title, year, genres`` (genres a list of names)."""
    genre_names = dict(Genre.objects.values_list("id", "name"))
    genres: dict[int, list[str]] = {}
    for movie_id, genre_id in Movie.genres.through.objects.values_list("movie_id", "genre_id").iterator(
        chunk_size=50_000
    ):
        genres.setdefault(movie_id, []).append(genre_names[genre_id])
    rows = list(Movie.objects.values_list("id", "title", "year").iterator(chunk_size=50_000))
    frame = pd.DataFrame(rows, columns=["item", "title", "year"])
    frame["item"] = frame["item"].astype(np.int64)
    frame["year"] = pd.to_numeric(frame["year"], errors="coerce").astype("Float64")
    frame["genres"] = [sorted(genres.get(movie_id, [])) for movie_id in frame["item"]]
    return frame


def snapshot_summary(ratings: pd.DataFrame) -> dict:
    """Counts and latest timestamp of a ratings frame, recorded with every model version."""
    return {
        "ratings": len(ratings),
        "users": int(ratings["user"].nunique()) if len(ratings) else 0,
        "movies": int(ratings["item"].nunique()) if len(ratings) else 0,
        "latest_timestamp": int(ratings["timestamp"].max()) if len(ratings) else None,
    }


def new_ratings_since_active_recommender() -> int | None:
    """Ratings newer than the newest one the active recommender learned from (a changed rating
    counts: its time moves); None when no recommender is active or its snapshot has no time."""
    from datetime import UTC, datetime

    from .models import ModelVersion

    snapshot = (
        ModelVersion.objects.filter(algorithm="base", status=ModelVersion.Status.ACTIVE)
        .values_list("data_snapshot", flat=True)
        .first()
    )
    latest = (snapshot or {}).get("latest_timestamp")
    if latest is None:
        return None
    return Rating.objects.filter(rated_at__gt=datetime.fromtimestamp(latest, tz=UTC)).count()
