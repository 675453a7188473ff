"""Run the closed-loop RLHF experiment on a MovieLens release and write its report (no database needed)."""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from training.ml.data import read_movielens
from training.ml.experiment import (
    ExperimentConfig,
    combined_table,
    load_report,
    markdown_table,
    policy_table,
    run_experiment,
    summary_table,
    targets_table,
    write_report,
    write_summary,
)
from training.ml.experiment_compare import config_overrides

DEFAULTS = ExperimentConfig()
OVERRIDABLE = {"ppo_set": "ppo", "reward_set": "reward"}  # option -> ExperimentConfig field it overrides


def with_overrides(config: ExperimentConfig, option: str, assignments: list[str]) -> ExperimentConfig:
    """``config`` with ``FIELD=VALUE`` overrides of one of its model configs; a clear error otherwise."""
    name = OVERRIDABLE[option]
    try:
        model = config_overrides(getattr(config, name), assignments, option="--" + option.replace("_", "-"))
    except ValueError as error:
        raise CommandError(str(error)) from None
    return replace(config, **{name: model})


class Command(BaseCommand):
    help = (
        "Closed-loop RLHF experiment: simulated feedback rounds, retraining of the reward model, PPO and "
        "Q-learning, evaluation on each user's latest ratings. Writes results.json, table.md and plot.png."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--rounds", type=int, default=DEFAULTS.rounds, help="Feedback rounds (retraining after each)."
        )
        parser.add_argument(
            "--comparisons-per-round",
            type=int,
            default=DEFAULTS.comparisons_per_round,
            help="Simulated judgements per round.",
        )
        parser.add_argument(
            "--data",
            default=None,
            help="Folder of a MovieLens CSV release (ratings.csv, movies.csv); default: the bundled ml-latest-small.",
        )
        parser.add_argument("--seed", type=int, default=0, help="One seed (see --seeds for several).")
        parser.add_argument(
            "--seeds",
            default=None,
            metavar="A-B|A,B,...",
            help="Several seeds, e.g. 0-9: each seed's report goes to OUT/seedN/, the across-seed summary "
            "(mean and 95%% interval over seeds) to OUT/summary.md and summary.json.",
        )
        parser.add_argument(
            "--split",
            choices=("user", "global"),
            default=DEFAULTS.split,
            help="'user': each user's ratings cut by time (default); 'global': one cut-off date for all users.",
        )
        parser.add_argument(
            "--population",
            choices=("taste", "norms"),
            default=DEFAULTS.population,
            help="'taste': annotators judge a list by per-movie utility (default); 'norms': plus list-level "
            "norms (repeats, variety, a quality floor) at per-annotator strengths (docs/experiment.md).",
        )
        parser.add_argument(
            "--annotators",
            type=int,
            default=None,
            help=f"Simulated annotators (default {DEFAULTS.annotators}).",
        )
        parser.add_argument(
            "--noise",
            type=float,
            default=None,
            help=f"Annotators' Bradley-Terry temperature on oracle list quality (default {DEFAULTS.temperature}).",
        )
        parser.add_argument(
            "--recommender-epochs", type=int, default=None, help="Override the recommender's epochs."
        )
        parser.add_argument(
            "--qlearning-kl-coef",
            type=float,
            default=None,
            help=f"Override Q-learning's KL weight to the recommender (default {DEFAULTS.dqn.kl_coef}; 0 = plain DQN).",
        )
        parser.add_argument(
            "--ppo-set",
            action="append",
            default=[],
            metavar="FIELD=VALUE",
            help="Override a PPOConfig field of the experiment's PPO, e.g. target_kl_for_controller=2.0 (repeatable).",
        )
        parser.add_argument(
            "--reward-set",
            action="append",
            default=[],
            metavar="FIELD=VALUE",
            help="Override a RewardModelConfig field of the experiment's reward model, e.g. l2=1.0 (repeatable).",
        )
        parser.add_argument(
            "--out", default="docs/experiment/user", help="Output folder for the report files."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")
        parser.add_argument(
            "--summarise",
            action="store_true",
            help="Write OUT/summary.md and summary.json from the OUT/seed*/results.json already there, and run nothing.",
        )
        parser.add_argument(
            "--combine",
            nargs="+",
            metavar="SUMMARY_JSON",
            help="Print one table of every policy x split x metric from earlier runs' summary.json files, "
            "and run nothing.",
        )

    def handle(self, *args, **options) -> None:
        if options["combine"]:
            try:
                summaries = [json.loads(Path(path).read_text()) for path in options["combine"]]
            except (OSError, ValueError) as error:
                raise CommandError(f"--combine: {error}") from None
            self.stdout.write(combined_table(summaries))
            return
        if options["summarise"]:
            paths = sorted(
                Path(options["out"]).glob("seed*/results.json"), key=lambda p: int(p.parent.name[4:])
            )
            if not paths:
                raise CommandError(f"no seed*/results.json under {options['out']}")
            reports = [load_report(path) for path in paths]
            command = json.loads(paths[0].read_text()).get("command")
            written = write_summary(reports, options["out"], command=command)
            self.stdout.write(written["table"].read_text())
            return
        data = Path(options["data"] or Path(settings.BASE_DIR) / "data" / "ml-latest-small")
        if not (data / "ratings.csv").is_file() or not (data / "movies.csv").is_file():
            raise CommandError(f"{data} has no ratings.csv and movies.csv")
        if options["rounds"] < 1 or options["comparisons_per_round"] < 1:
            raise CommandError("--rounds and --comparisons-per-round must be at least 1")
        seeds = parse_seeds(options["seeds"]) if options["seeds"] else [options["seed"]]
        config = ExperimentConfig(
            rounds=options["rounds"],
            comparisons_per_round=options["comparisons_per_round"],
            seed=seeds[0],
            split=options["split"],
            population=options["population"],
        )
        if options["annotators"] is not None:
            config = replace(config, annotators=options["annotators"])
        if options["noise"] is not None:
            config = replace(config, temperature=options["noise"])
        if options["recommender_epochs"] is not None:
            config = replace(
                config, recommender=replace(config.recommender, epochs=options["recommender_epochs"])
            )

        if options["qlearning_kl_coef"] is not None:
            if options["qlearning_kl_coef"] < 0:
                raise CommandError("--qlearning-kl-coef must be at least 0")
            config = replace(config, dqn=replace(config.dqn, kl_coef=options["qlearning_kl_coef"]))

        for option in OVERRIDABLE:
            if options[option]:
                config = with_overrides(config, option, options[option])

        ratings, movies = read_movielens(data)
        steps = 1 + 5 * config.rounds
        bar = tqdm(
            total=steps * len(seeds),
            unit="step",
            disable=options["no_progress"] or not sys.stderr.isatty(),
        )
        command = "python manage.py rlhf_experiment " + " ".join(shlex.quote(a) for a in sys.argv[2:])
        reports = []
        for j, seed in enumerate(seeds):

            def on_progress(stage: str, done: int, total: int, j=j, seed=seed) -> None:
                bar.set_description_str(f"seed {seed}: {stage}"[:45])
                bar.update(j * steps + done - bar.n)

            report = run_experiment(
                ratings, movies, replace(config, seed=seed), progress=on_progress, log_line=bar.write
            )
            reports.append(report)
            out = Path(options["out"]) / f"seed{seed}" if len(seeds) > 1 else Path(options["out"])
            paths = write_report(report, out, command=command)
            self.stdout.write(markdown_table(report))
            self.stdout.write(policy_table(report.rounds[-1]))
            for entry in report.rounds:
                seconds = entry["seconds"]
                qlearning = f" (Q-learning {seconds['qlearning']:.1f} s)" if "qlearning" in seconds else ""
                self.stdout.write(
                    f"seed {seed} round {entry['round']}: retrain with {entry['comparisons']} comparisons: reward "
                    f"model {seconds['reward_model']:.1f} s + PPO {seconds['ppo']:.1f} s = "
                    f"{seconds['reward_model+ppo']:.1f} s{qlearning}"
                )
            self.stdout.write(self.style.SUCCESS(f"wrote {', '.join(str(p) for p in paths.values())}"))
        bar.close()
        if len(seeds) > 1:
            paths = write_summary(reports, options["out"], command=command)
            summary = paths["summary"].read_text()
            document = json.loads(summary)
            self.stdout.write(summary_table(document))
            self.stdout.write(targets_table(document))
            self.stdout.write(self.style.SUCCESS(f"wrote {', '.join(str(p) for p in paths.values())}"))


def parse_seeds(text: str) -> list[int]:
    """'0-9' or '0,3,5' (or both, '0-2,7') as a list of distinct seeds; a clear error otherwise."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part.strip()[1:]:
                first, last = part.strip().split("-", 1)
                seeds.extend(range(int(first), int(last) + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise CommandError(f"--seeds {text!r}: give a range like 0-9 or a list like 0,3,5") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise CommandError(f"--seeds {text!r}: give distinct seeds of at least 0")
    return seeds
