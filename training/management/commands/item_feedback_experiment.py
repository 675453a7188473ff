"""Measure item feedback on shown lists (issue 15): NDCG@10 of the next list with and without reactions."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from training.management.commands.rlhf_experiment import parse_seeds
from training.ml.data import read_movielens
from training.ml.item_feedback import item_feedback_experiment


def _cell(d: dict) -> str:
    return f"{d['mean']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]"


class Command(BaseCommand):
    help = (
        "Each loop user reacts (like, dislike, not interested) to the recommender's list from their "
        "feedback-period ratings; NDCG@10 of the next list on the test period, with the reactions in "
        "the profile and without, per seed and across seeds. Writes results.json and summary.md."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--seeds", default="0-9", metavar="A-B|A,B,...")
        parser.add_argument("--data", default=None, help="MovieLens CSV folder; default the bundled one.")
        parser.add_argument("--out", default="docs/experiment/item_feedback")

    def handle(self, *args, **options) -> None:
        data = Path(options["data"] or Path(settings.BASE_DIR) / "data" / "ml-latest-small")
        if not (data / "ratings.csv").is_file():
            raise CommandError(f"{data} has no ratings.csv and movies.csv")
        seeds = parse_seeds(options["seeds"])
        ratings, movies = read_movielens(data)
        result = item_feedback_experiment(ratings, movies, seeds, log_line=self.stdout.write)
        result["command"] = "python manage.py item_feedback_experiment " + " ".join(
            shlex.quote(a) for a in sys.argv[2:]
        )
        out = Path(options["out"])
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
        s = result["summary"]
        table = (
            f"## Item feedback on the shown list, {len(seeds)} seeds (per-user split)\n\n"
            f"`{result['command']}`\n\n"
            "| NDCG@10 without reactions | with reactions | difference | (per-user ±) | users | reactions per user |\n"
            "|---|---|---|---:|---|---|\n"
            f"| {s['ndcg@10_without']['mean']:.4f} [{s['ndcg@10_without']['low']:.4f}, {s['ndcg@10_without']['high']:.4f}] "
            f"| {s['ndcg@10_with']['mean']:.4f} [{s['ndcg@10_with']['low']:.4f}, {s['ndcg@10_with']['high']:.4f}] "
            f"| {_cell(s['difference'])} | {s['per_user_half_width']:.4f} | {s['users']['mean']:.0f} "
            f"| {s['reactions_per_user']['mean']:.2f} |\n"
        )
        (out / "summary.md").write_text(table)
        self.stdout.write(table)
