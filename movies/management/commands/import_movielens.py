"""manage.py import_movielens PATH: import a GroupLens MovieLens release (folder or .zip)."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser

from movies.importers import MovieLensImportError
from movies.importers.services import DEFAULT_BATCH_SIZE, movielens_release_import


class Command(BaseCommand):
    help = (
        "Import a MovieLens release (ml-latest-small, ml-latest, ml-20m/25m/32m, ml-1m, ml-10m, ml-100k) from "
        "its folder or .zip: movies, genres, links, dataset users, tags and ratings, all or nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="The release's folder, or the .zip GroupLens distributes.")
        parser.add_argument(
            "--replace",
            action="store_true",
            help="Replace a different release imported before: its users, their ratings and tags, and the "
            "movies the new release lacks that no site account has rated.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=f"Ratings written per batch (default {DEFAULT_BATCH_SIZE:,}).",
        )
        parser.add_argument(
            "--no-progress", action="store_true", help="No progress bar (it only shows on a terminal)."
        )

    def handle(self, *args, path: str, replace: bool, batch_size: int, no_progress: bool, **options) -> None:
        try:
            record = movielens_release_import(
                path=path,
                replace=replace,
                batch_size=batch_size,
                progress=not no_progress and sys.stderr.isatty(),
            )
        except MovieLensImportError as exc:
            raise CommandError(f"Import failed, nothing was changed: {exc}") from exc
        rate = record.ratings / record.seconds if record.seconds else 0.0
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {record.name} ({record.format}): {record.movies:,} movies, {record.ratings:,} ratings, "
                f"{record.tags:,} tags, {record.users:,} users in {record.seconds:.1f} s ({rate:,.0f} ratings/s)."
            )
        )
