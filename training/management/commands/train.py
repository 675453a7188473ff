"""Run the training pipeline in the foreground, with a progress bar."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from training.dashboard_plots import dashboard_plots_render
from training.exceptions import TrainingError
from training.models import ModelVersion, TrainingRun
from training.pipeline import training_run_execute
from training.runs import training_run_create


class Command(BaseCommand):
    help = "Train models: base (recommender), reward, ppo, qlearning, or all (the RLHF pipeline)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("kind", choices=[choice for choice, _ in TrainingRun.Kind.choices])
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--epochs", type=int, default=None, help="Override the recommender's epochs.")
        parser.add_argument(
            "--no-ease",
            action="store_true",
            help=(
                "Train the recommender without EASE: no teacher, no item-item term "
                "(faster on big catalogues; see docs/recommender.md)."
            ),
        )
        parser.add_argument(
            "--if-missing", action="store_true", help="Do nothing if an active version exists."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar (logs only).")

    def handle(
        self,
        *args,
        kind: str,
        seed: int,
        epochs: int | None,
        no_ease: bool,
        if_missing: bool,
        no_progress: bool,
        **options,
    ):
        if (epochs is not None or no_ease) and kind != "base":
            raise CommandError("--epochs and --no-ease apply to `train base` only")
        algorithm = {"all": "ppo"}.get(kind, kind)
        if (
            if_missing
            and ModelVersion.objects.filter(algorithm=algorithm, status=ModelVersion.Status.ACTIVE).exists()
        ):
            self.stdout.write(f"An active {algorithm} version exists; nothing to do.")
            return
        base = {"epochs": epochs} if epochs is not None else {}
        if no_ease:
            base |= {"teacher_weight": 0.0, "ease_weight": 0.0}
        try:
            run = training_run_create(
                kind=kind,
                trigger=TrainingRun.Trigger.COMMAND,
                seed=seed,
                config={"base": base} if base else None,
            )
        except TrainingError as error:  # another run in flight, or an override the stage lacks
            raise CommandError(str(error)) from None
        bar = tqdm(
            total=100,
            unit="%",
            disable=no_progress or not sys.stderr.isatty(),
            bar_format="{l_bar}{bar}| {n:.0f}/100 [{elapsed}<{remaining}]",
        )

        def on_progress(step: str, percent: float) -> None:
            bar.set_description_str(step[:40])
            bar.update(percent - bar.n)

        run = training_run_execute(run_id=run.pk, echo=lambda line: bar.write(line), on_progress=on_progress)
        bar.close()
        if run.status != TrainingRun.Status.SUCCEEDED:
            raise CommandError(f"Training run {run.pk} failed: {run.error}")
        dashboard_plots_render()
        for version in run.versions.order_by("id"):
            verdict = version.gate.get("reason", "") if version.gate else ""
            self.stdout.write(
                self.style.SUCCESS(f"{version.label}: {version.status}; {version.headline}; {verdict}")
            )
