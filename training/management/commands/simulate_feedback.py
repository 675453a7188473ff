"""Answer comparison tasks as simulated annotators whose taste is an oracle ratings file."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from feedback.exceptions import FeedbackError
from training.simulation import OracleFileError, simulate_feedback


class Command(BaseCommand):
    help = (
        "Create comparison tasks through the web page's services and answer them from an oracle ratings file."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--oracle-ratings", type=Path, required=True, help="MovieLens ratings file of dataset users."
        )
        parser.add_argument("--comparisons", type=int, required=True)
        parser.add_argument("--annotators", type=int, default=3)
        parser.add_argument(
            "--noise", type=float, default=0.1, help="Bradley-Terry temperature T of the choice."
        )
        parser.add_argument(
            "--population",
            choices=("taste", "norms"),
            default="taste",
            help="'taste': a list is judged by per-movie utility (default); 'norms': plus list-level norms "
            "(repeats, variety, a quality floor) at per-annotator strengths.",
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--k", type=int, default=10, help="Movies per list.")
        parser.add_argument("--no-progress", action="store_true")

    def handle(
        self,
        *args,
        oracle_ratings: Path,
        comparisons: int,
        annotators: int,
        noise: float,
        seed: int,
        k: int,
        population: str,
        no_progress: bool,
        **options,
    ):
        if comparisons < 1 or annotators < 1 or noise <= 0 or not 1 <= k <= 50:
            raise CommandError(
                "--comparisons and --annotators must be positive, --noise > 0 and 1 <= --k <= 50"
            )
        bar = tqdm(total=comparisons, unit=" comparisons", disable=no_progress or not sys.stderr.isatty())
        try:
            counts = simulate_feedback(
                oracle_path=oracle_ratings,
                comparisons=comparisons,
                annotators=annotators,
                temperature=noise,
                seed=seed,
                k=k,
                population=population,
                progress=lambda done, total: bar.update(done - bar.n),
            )
        except (OracleFileError, FeedbackError) as error:
            raise CommandError(str(error)) from None
        finally:
            bar.close()
        summary = ", ".join(f"{choice} {n}" for choice, n in sorted(counts.items()))
        self.stdout.write(self.style.SUCCESS(f"Recorded {comparisons} simulated comparisons ({summary})."))
