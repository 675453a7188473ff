"""Print and save the offline evaluation of every policy on the per-user temporal holdout."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from training.exceptions import NotEnoughData
from training.offline import METRIC_COLUMNS, evaluation_report


class Command(BaseCommand):
    help = "Evaluate popularity, EASE and the active models (NDCG, recall, coverage, novelty, diversity)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--out", type=Path, default=None, help="Report folder (default var/reports/evaluate-<time>)."
        )
        parser.add_argument(
            "--no-ease", action="store_true", help="Skip EASE (it inverts an items x items matrix)."
        )

    def handle(self, *args, out: Path | None, no_ease: bool, **options) -> None:
        out = out or Path(settings.VAR_DIR) / "reports" / f"evaluate-{timezone.now():%Y%m%d-%H%M%S}"
        try:
            report = evaluation_report(out=out, include_ease=not no_ease, progress=self.stderr.write)
        except NotEnoughData as error:
            raise CommandError(str(error)) from None
        columns = [c for c in METRIC_COLUMNS if c in report.table.columns]
        self.stdout.write(report.table[columns].to_string(float_format=lambda v: f"{v:.4f}"))
        if report.versus_ease:
            self.stdout.write("\nNDCG@10 minus EASE's, per user (mean, paired bootstrap 95% interval):")
        for name, gap in report.versus_ease.items():
            self.stdout.write(
                f"  {name}: {gap['mean']:+.4f} [{gap['low']:+.4f}, {gap['high']:+.4f}] over {gap['n']} users"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Report written to {out}/ (metrics.json, metrics.csv, metrics.png, genre_mix.png)"
            )
        )
