"""Measure reward over-optimisation: gold and proxy list quality against sqrt(KL), PPO and best-of-n."""

from __future__ import annotations

import shlex
import sys
from dataclasses import replace
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from training.management.commands.rlhf_experiment import parse_seeds
from training.ml.data import read_movielens
from training.ml.experiment import ExperimentConfig
from training.ml.overoptimisation import SweepConfig, run_overoptimisation, write


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise CommandError(f"{text!r}: give comma-separated numbers") from None


class Command(BaseCommand):
    help = (
        "Run the closed loop's rounds, then push PPO (larger KL targets, no penalty) and best-of-n further "
        "from the reference; plot gold (annotators' taste) and proxy (reward model) against sqrt(KL) on "
        "validation users, and name the KL target where the gold peaks."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--data", default=None, help="MovieLens CSV folder (default: the bundled one).")
        parser.add_argument("--seeds", default="0-2", help="Seeds, e.g. 0-2 (default) or 0,4.")
        parser.add_argument("--rounds", type=int, default=ExperimentConfig().rounds)
        parser.add_argument(
            "--comparisons-per-round", type=int, default=ExperimentConfig().comparisons_per_round
        )
        parser.add_argument("--split", choices=("user", "global"), default="user")
        parser.add_argument("--kl-targets", default="1,2,4,8,16,32", help="PPO's KL targets (nats per list).")
        parser.add_argument("--kl-coefs", default="0", help="Fixed KL coefficients (0 = no penalty).")
        parser.add_argument("--best-of-n", default="1,2,4,8,16,32,64")
        parser.add_argument("--out", default="docs/experiment/overoptimisation")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options) -> None:
        data = Path(options["data"] or Path(settings.BASE_DIR) / "data" / "ml-latest-small")
        if not (data / "ratings.csv").is_file():
            raise CommandError(f"{data} has no ratings.csv and movies.csv")
        if options["rounds"] < 1 or options["comparisons_per_round"] < 1:
            raise CommandError("--rounds and --comparisons-per-round must be at least 1")
        sweep = SweepConfig(
            kl_targets=_floats(options["kl_targets"]),
            kl_coefs=_floats(options["kl_coefs"]) if options["kl_coefs"] else (),
            best_of_n=tuple(int(v) for v in _floats(options["best_of_n"])),
        )
        if (
            min(sweep.kl_targets) <= 0
            or min(sweep.best_of_n) < 1
            or (sweep.kl_coefs and min(sweep.kl_coefs) < 0)
        ):
            raise CommandError("KL targets must be positive, coefficients at least 0 and n at least 1")
        config = ExperimentConfig(
            rounds=options["rounds"],
            comparisons_per_round=options["comparisons_per_round"],
            split=options["split"],
        )
        ratings, movies = read_movielens(data)
        seeds = parse_seeds(options["seeds"])
        steps = config.rounds + len(sweep.kl_targets) + len(sweep.kl_coefs) + len(sweep.best_of_n)
        bar = tqdm(
            total=steps * len(seeds), unit="step", disable=options["no_progress"] or not sys.stderr.isatty()
        )
        runs = []
        for seed in seeds:

            def progress(line: str, seed=seed) -> None:
                bar.update(1)
                bar.write(f"seed {seed}: {line}")

            runs.append(run_overoptimisation(ratings, movies, replace(config, seed=seed), sweep, progress))
        bar.close()
        command = "python manage.py overoptimisation " + " ".join(shlex.quote(a) for a in sys.argv[2:])
        paths = write(runs, options["out"], command=command, max_kl=config.gate_max_kl)
        self.stdout.write(paths["table"].read_text())
        self.stdout.write(self.style.SUCCESS(f"wrote {', '.join(str(p) for p in paths.values())}"))
