"""Export top-k recommendations of one policy for every dataset user as CSV."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from training.offline import EXPORT_POLICIES, PolicyUnavailable, export_recommendations


class Command(BaseCommand):
    help = (
        "Write user_id,movie_id,rank,score (MovieLens ids) for every dataset user; rated movies never appear."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--policy", choices=EXPORT_POLICIES, default="active")
        parser.add_argument("--k", type=int, default=10)
        parser.add_argument("--out", type=Path, required=True)
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, policy: str, k: int, out: Path, no_progress: bool, **options) -> None:
        if not 1 <= k <= 1000:
            raise CommandError("--k must be between 1 and 1000")
        bar = tqdm(unit=" users", disable=no_progress or not sys.stderr.isatty())

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            rows = export_recommendations(policy=policy, k=k, out=out, progress=progress)
        except PolicyUnavailable as error:
            raise CommandError(str(error)) from None
        finally:
            bar.close()
        self.stdout.write(self.style.SUCCESS(f"Wrote {rows:,} rows to {out}"))
