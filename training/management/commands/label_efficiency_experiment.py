"""Measure label efficiency: reward-model accuracy per label budget, random pairs against active ones."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from training.management.commands.rlhf_experiment import parse_seeds
from training.ml.active import PosteriorConfig
from training.ml.data import read_movielens
from training.ml.experiment import ExperimentConfig
from training.ml.label_efficiency import LabelEfficiencyConfig, run_seed, write


def _numbers(text: str, kind=float) -> tuple:
    try:
        return tuple(kind(v) for v in text.split(","))
    except ValueError:
        raise CommandError(f"{text!r}: give comma-separated numbers") from None


class Command(BaseCommand):
    help = (
        "Train the reward model on growing label budgets of round-1 pairs, drawn at random or chosen by "
        "the reward model's disagreement (a share kept random); report held-out-user accuracy per budget "
        "and the smallest active budget that reaches random pairs' accuracy at the largest budget."
    )

    def add_arguments(self, parser) -> None:
        defaults = LabelEfficiencyConfig()
        parser.add_argument("--data", default=None, help="MovieLens CSV folder (default: the bundled one).")
        parser.add_argument("--seeds", default="0-9", help="Seeds, e.g. 0-9 (default) or 0,4.")
        parser.add_argument("--population", choices=("taste", "norms"), default="norms")
        parser.add_argument("--budgets", default=",".join(map(str, defaults.budgets)))
        parser.add_argument("--batch", type=int, default=defaults.batch, help="Labels per active step.")
        parser.add_argument("--active-shares", default=",".join(f"{s:g}" for s in defaults.active_shares))
        parser.add_argument("--pool", type=int, default=defaults.pool, help="Candidate pairs per seed.")
        parser.add_argument("--validation", type=int, default=defaults.validation)
        parser.add_argument("--out", default="docs/experiment/label_efficiency")
        parser.add_argument(
            "--combine",
            default=None,
            help="Comma-separated output folders of earlier runs (e.g. seeds run in parallel): write their "
            "seeds' summary to --out instead of running anything.",
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options) -> None:
        if options["combine"]:
            self.combine(options["combine"].split(","), options["out"], options["population"])
            return
        data = Path(options["data"] or Path(settings.BASE_DIR) / "data" / "ml-latest-small")
        if not (data / "ratings.csv").is_file():
            raise CommandError(f"{data} has no ratings.csv and movies.csv")
        budgets = tuple(sorted(_numbers(options["budgets"], int)))
        shares = _numbers(options["active_shares"])
        if min(budgets) < 1 or options["batch"] < 1 or not all(0 <= s <= 1 for s in shares):
            raise CommandError("budgets and --batch must be positive, shares in [0, 1]")
        if any(b % options["batch"] or b < budgets[0] for b in budgets):
            raise CommandError("every budget must be a multiple of --batch")
        efficiency = LabelEfficiencyConfig(
            budgets=budgets,
            seed_batch=budgets[0],
            batch=options["batch"],
            active_shares=shares,
            pool=options["pool"],
            validation=options["validation"],
        )
        if efficiency.pool < max(budgets):
            raise CommandError("--pool must hold at least the largest budget")
        ratings, movies = read_movielens(data)
        seeds = parse_seeds(options["seeds"])
        steps_per_seed = 3 + len(budgets) * (1 + len(shares))
        bar = tqdm(
            total=steps_per_seed * len(seeds),
            unit="step",
            disable=options["no_progress"] or not sys.stderr.isatty(),
        )
        runs = []
        for seed in seeds:

            def progress(line: str, seed=seed) -> None:
                bar.update(1)
                bar.write(f"seed {seed}: {line}")
                sys.stdout.flush()

            config = ExperimentConfig(seed=seed, population=options["population"])
            runs.append(run_seed(ratings, movies, config, efficiency, progress))
        bar.close()
        command = "python manage.py label_efficiency_experiment " + " ".join(
            shlex.quote(a) for a in sys.argv[2:]
        )
        paths = write(runs, options["out"], command, options["population"], efficiency)
        self.stdout.write(paths["summary"].read_text())
        self.stdout.write(self.style.SUCCESS(f"wrote {', '.join(str(p) for p in paths.values())}"))

    def combine(self, folders: list[str], out: str, population: str) -> None:
        runs, commands, config = [], [], None
        for folder in folders:
            path = Path(folder) / "results.json"
            if not path.is_file():
                raise CommandError(f"{path} does not exist")
            document = json.loads(path.read_text())
            runs.extend(document["runs"])
            commands.append(document["command"])
            config = config or document["config"]
        if {run["population"] for run in runs} != {population}:
            raise CommandError(f"the runs are not all of population {population!r}")
        runs.sort(key=lambda run: run["seed"])
        efficiency = LabelEfficiencyConfig(
            **{key: tuple(value) if isinstance(value, list) else value for key, value in config.items()}
            | {"posterior": PosteriorConfig(**config["posterior"])}
        )
        command = "; ".join(commands)
        paths = write(runs, out, command, population, efficiency)
        self.stdout.write(paths["summary"].read_text())
        self.stdout.write(self.style.SUCCESS(f"wrote {', '.join(str(p) for p in paths.values())}"))
