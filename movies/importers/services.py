"""Import a MovieLens release into the catalogue: the service behind ``manage.py import_movielens``."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from django.db import connection, transaction
from tqdm import tqdm

from movies.models import DatasetImport, Genre, Movie, Rater, Rating, Tag
from movies.stats import movie_stats_refresh

from . import bulk
from .errors import MovieLensImportError
from .parsers import Release, release_parse
from .sources import release_source_open

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 100_000
# Rows per ORM query when deleting by primary key: under psycopg's 65,535 parameters and SQLite's 32,766.
_DELETE_CHUNK = 5_000


def movielens_release_import(
    *,
    path: Path | str,
    replace: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = False,
) -> DatasetImport:
    """Import the release at ``path`` (a folder or .zip) all-or-nothing, and record it.

    Every file is parsed and validated before the first write. Re-importing the same release
    replaces its users' ratings and tags and upserts movies, genres and links. A release with
    another name needs ``replace=True``, which removes the previous dataset users (with their
    ratings and tags) and the movies the new release lacks that no site account has rated or
    tagged. Site accounts' ratings are never touched.
    """
    if batch_size < 1:
        raise MovieLensImportError("the batch size must be at least 1")
    started = time.perf_counter()
    phases = _Phases()
    source = release_source_open(path=Path(path))
    _release_conflict_check(name=source.name, replace=replace)  # fail before minutes of parsing
    release = release_parse(source=source)
    fingerprint = source.fingerprint()
    phases.done("parse")
    logger.info(
        "parsed %s (%s): %d movies, %d ratings, %d tags, %d users",
        source.name, source.format, len(release.movies), len(release.ratings), len(release.tags), len(release.users),
    )  # fmt: skip

    with (
        bulk.foreign_keys_checked_once() as foreign_keys_check,
        transaction.atomic(),
        bulk.bulk_load_tuning(),
    ):
        bulk.import_lock()
        _release_conflict_check(name=source.name, replace=replace)
        _catalogue_upsert(release=release)
        phases.done("movies")
        if replace:
            _previous_release_remove(keep_movie_ids=release.movies["id"].to_numpy())
            phases.done("remove previous release")
        rater_ml_ids, rater_pks = _raters_upsert(users=release.users)
        phases.done("users")

        with bulk.indexes_suspended(model=Rating, rows=len(release.ratings)):
            if not replace:  # replace already removed them
                _dataset_rows_delete(model=Rating)
            phases.done("delete old ratings")
            _ratings_write(
                release=release,
                rater_ml_ids=rater_ml_ids,
                rater_pks=rater_pks,
                batch_size=batch_size,
                progress=progress,
            )
            phases.done("ratings")
        phases.done("rating indexes")
        with bulk.indexes_suspended(model=Tag, rows=len(release.tags)):
            if not replace:
                _dataset_rows_delete(model=Tag)
            tags = release.tags
            bulk.rows_insert(
                model=Tag,
                columns=["rater_id", "movie_id", "tag", "tagged_at"],
                arrays=[
                    rater_pks[np.searchsorted(rater_ml_ids, tags["user_id"].to_numpy())],
                    tags["movie_id"].to_numpy(),
                    tags["tag"].tolist(),
                    tags["timestamp"].to_numpy(),
                ],
                epoch_columns=["tagged_at"],
            )
        phases.done("tags")
        movie_stats_refresh()
        phases.done("movie stats")
        foreign_keys_check()
        phases.done("foreign key check")
        record = DatasetImport.objects.create(
            name=source.name[:64],
            format=source.format,
            source=str(source.location)[:1024],
            fingerprint=fingerprint,
            movies=len(release.movies),
            ratings=len(release.ratings),
            tags=len(release.tags),
            users=len(release.users),
            seconds=time.perf_counter() - started,
        )
    phases.done("commit")
    logger.info("imported %s in %.1f s: %s", source.name, time.perf_counter() - started, phases)
    return record


class _Phases:
    """Wall-clock seconds per import phase, for the log."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._mark = time.perf_counter()

    def done(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - self._mark
        self._mark = now

    def __str__(self) -> str:
        return ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in self.seconds.items())


def _release_conflict_check(*, name: str, replace: bool) -> None:
    previous = DatasetImport.objects.order_by("-imported_at", "-id").first()
    if previous is not None and previous.name != name and not replace:
        raise MovieLensImportError(
            f"the database holds the release {previous.name!r} (imported {previous.imported_at:%Y-%m-%d %H:%M} UTC); "
            f"importing {name!r} would replace its users, ratings and tags: re-run with --replace"
        )


def _chunks(values: np.ndarray, size: int = _DELETE_CHUNK):
    for start in range(0, len(values), size):
        yield values[start : start + size].tolist()


def _nullable(series: pd.Series) -> list:
    """Values for the database: pandas' missing values become None."""
    return series.astype(object).where(series.notna(), None).tolist()


def _catalogue_upsert(*, release: Release) -> None:
    """Genres, movies with their links, and each movie's genres, as the release has them."""
    names = release.genres
    Genre.objects.bulk_create([Genre(name=name) for name in names], ignore_conflicts=True)
    genre_ids = dict(Genre.objects.filter(name__in=names).values_list("name", "id"))

    movies = release.movies
    bulk.rows_upsert(
        model=Movie,
        columns=["id", "title", "year", "imdb_id", "tmdb_id", "num_ratings"],
        arrays=[
            movies["id"].to_numpy(),
            movies["title"].tolist(),
            _nullable(movies["year"]),
            movies["imdb_id"].tolist(),
            _nullable(movies["tmdb_id"]),
            np.zeros(len(movies), dtype=np.int64),  # new movies only; movie_stats_refresh sets it
        ],
        conflict_column="id",
        update_columns=["title", "year", "imdb_id", "tmdb_id"],
    )

    # Change only the genre links that differ from the release's.
    through = Movie.genres.through
    movie_column, genre_column = (
        through._meta.get_field("movie").column,
        through._meta.get_field("genre").column,
    )
    wanted = pd.DataFrame(
        {
            "movie_id": release.movie_genres["movie_id"].to_numpy(dtype=np.int64),
            "genre_id": release.movie_genres["genre"].map(genre_ids).to_numpy(dtype=np.int64),
        }
    )
    existing = pd.DataFrame(
        list(through.objects.values_list("id", "movie_id", "genre_id")),
        columns=["id", "movie_id", "genre_id"],
    ).astype(np.int64)
    existing = existing[existing["movie_id"].isin(movies["id"])]
    merged = existing.merge(wanted, on=["movie_id", "genre_id"], how="outer", indicator=True)
    for chunk in _chunks(merged.loc[merged["_merge"] == "left_only", "id"].to_numpy(dtype=np.int64)):
        through.objects.filter(pk__in=chunk).delete()
    missing = merged[merged["_merge"] == "right_only"]
    with bulk.indexes_suspended(model=through, rows=len(missing)):
        bulk.rows_insert(
            model=through,
            columns=[movie_column, genre_column],
            arrays=[
                missing["movie_id"].to_numpy(dtype=np.int64),
                missing["genre_id"].to_numpy(dtype=np.int64),
            ],
        )


def _previous_release_remove(*, keep_movie_ids: np.ndarray) -> None:
    """Remove every dataset user, and the movies outside ``keep_movie_ids`` no site account rated or tagged.

    Their ratings and tags go in one statement each; the users and movies go through the ORM, in
    chunks, so other apps' cascades (comparison tasks, item feedback) apply.
    """
    _dataset_rows_delete(model=Rating)
    _dataset_rows_delete(model=Tag)
    rater_pks = np.fromiter(
        Rater.objects.filter(movielens_id__isnull=False).values_list("id", flat=True), dtype=np.int64
    )
    for chunk in _chunks(rater_pks):
        Rater.objects.filter(pk__in=chunk).delete()
    existing = np.fromiter(Movie.objects.values_list("id", flat=True), dtype=np.int64)
    used_by_accounts = np.union1d(
        np.fromiter(
            Rating.objects.filter(rater__user__isnull=False).values_list("movie_id", flat=True),
            dtype=np.int64,
        ),
        np.fromiter(
            Tag.objects.filter(rater__user__isnull=False).values_list("movie_id", flat=True), dtype=np.int64
        ),
    )
    stale = np.setdiff1d(np.setdiff1d(existing, keep_movie_ids), used_by_accounts)
    for chunk in _chunks(stale):
        Movie.objects.filter(pk__in=chunk).delete()
    logger.info("removed %d dataset users and %d movies of the previous release", len(rater_pks), len(stale))


def _raters_upsert(*, users: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Create or update the dataset users; returns (movielens ids sorted, their Rater pks)."""
    bulk.rows_upsert(
        model=Rater,
        columns=["movielens_id", "gender", "age", "occupation", "zip_code"],
        arrays=[
            users["movielens_id"].to_numpy(),
            users["gender"].tolist(),
            _nullable(users["age"]),
            users["occupation"].tolist(),
            users["zip_code"].tolist(),
        ],
        conflict_column="movielens_id",
        update_columns=["gender", "age", "occupation", "zip_code"],
    )
    pairs = np.array(
        list(Rater.objects.filter(movielens_id__isnull=False).values_list("movielens_id", "id")),
        dtype=np.int64,
    ).reshape(-1, 2)
    order = np.argsort(pairs[:, 0])
    return pairs[order, 0], pairs[order, 1]


def _dataset_rows_delete(*, model: type[Rating] | type[Tag]) -> None:
    """Delete all dataset users' ratings (or tags) in one statement; nothing references either table."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE rater_id IN (SELECT id FROM {Rater._meta.db_table} WHERE movielens_id IS NOT NULL)"
        )


def _ratings_write(
    *, release: Release, rater_ml_ids: np.ndarray, rater_pks: np.ndarray, batch_size: int, progress: bool
) -> None:
    ratings = release.ratings
    with tqdm(
        total=len(ratings),
        desc="ratings",
        unit=" rows",
        unit_scale=True,
        file=sys.stderr,
        disable=not progress,
        mininterval=0.5,
        smoothing=0.1,
    ) as bar:
        bulk.ratings_insert(
            model=Rating,
            rater_ids=rater_pks[np.searchsorted(rater_ml_ids, ratings["user_id"].to_numpy())],
            movie_ids=ratings["movie_id"].to_numpy(),
            ratings=ratings["rating"].to_numpy(),  # float32; widened per batch
            timestamps=ratings["timestamp"].to_numpy(),
            batch_size=batch_size,
            on_rows=bar.update,
        )
