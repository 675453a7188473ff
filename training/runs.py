"""Training-run lifecycle: create (one at a time), report progress, finish, and reap runs whose worker died."""

from __future__ import annotations

import logging
import math
import time
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from .exceptions import InvalidRunConfig, RunAlreadyInFlight
from .models import TrainingRun
from .overrides import overrides_clean

logger = logging.getLogger(__name__)

# A running run whose heartbeat is older than this is taken as dead (worker killed, machine lost).
STALE_AFTER = timedelta(seconds=getattr(settings, "TRAINING_STALE_SECONDS", 300))
MAX_LOG_CHARS = 200_000


def json_safe(value):
    """JSON columns reject NaN and infinity: they become null, numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def training_run_reap_stale(*, now=None) -> int:
    """Mark runs whose worker stopped reporting as failed, freeing the one-run-at-a-time slot."""
    now = now or timezone.now()
    stale = TrainingRun.objects.filter(
        status=TrainingRun.Status.RUNNING, heartbeat_at__lt=now - STALE_AFTER
    ) | TrainingRun.objects.filter(status=TrainingRun.Status.QUEUED, created_at__lt=now - STALE_AFTER * 12)
    count = 0
    for run in stale:
        run.status = TrainingRun.Status.FAILED
        run.in_flight = None
        run.finished_at = now
        run.error = (
            run.error or "The worker stopped reporting (killed or lost); the active models were not changed."
        )
        run.save(update_fields=["status", "in_flight", "finished_at", "error"])
        count += 1
        logger.warning("Reaped stale training run %s", run.pk)
    return count


def training_run_create(
    *, kind: str, trigger: str, user=None, seed: int = 0, config: dict | None = None
) -> TrainingRun:
    """A queued run; ``overrides.overrides_clean`` checks the kind and the stage settings in ``config``."""
    try:
        config = overrides_clean(kind, config)
    except ValueError as error:
        raise InvalidRunConfig(str(error)) from None
    training_run_reap_stale()
    try:
        with transaction.atomic():
            return TrainingRun.objects.create(
                kind=kind, trigger=trigger, created_by=user, seed=seed, config=config
            )
    except IntegrityError:
        current = TrainingRun.objects.filter(in_flight=True).first()
        raise RunAlreadyInFlight(
            f"Training run {current.pk if current else '?'} is still in progress."
        ) from None


class RunReporter:
    """Writes a run's step, percent, log lines and heartbeat; at most every `interval` seconds."""

    def __init__(self, run: TrainingRun, *, interval: float = 0.5, echo=None, on_progress=None):
        self.run = run
        self.interval = interval
        self.echo = echo
        self.on_progress = on_progress
        self._last_write = 0.0
        self._log: list[str] = [run.log] if run.log else []

    def start(self) -> None:
        now = timezone.now()
        self.run.status = TrainingRun.Status.RUNNING
        self.run.started_at = now
        self.run.heartbeat_at = now
        self.run.save(update_fields=["status", "started_at", "heartbeat_at"])

    def log(self, line: str) -> None:
        stamped = f"{timezone.now():%H:%M:%S} {line}"
        self._log.append(stamped)
        if self.echo:
            self.echo(line)
        self._flush(force=True)

    def progress(self, *, step: str | None = None, percent: float | None = None, force: bool = False) -> None:
        if step is not None:
            self.run.step = step[:128]
        if percent is not None:
            self.run.progress = float(max(0.0, min(100.0, percent)))
        if self.on_progress:
            self.on_progress(self.run.step, self.run.progress)
        self._flush(force=force)

    def record_history(self, key: str, entry: dict) -> None:
        self.run.history.setdefault(key, []).append(json_safe(entry))
        self._flush()

    def _flush(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_write < self.interval:
            return
        self._last_write = now
        self.run.log = "\n".join(self._log)[-MAX_LOG_CHARS:]
        self.run.heartbeat_at = timezone.now()
        TrainingRun.objects.filter(pk=self.run.pk).update(
            step=self.run.step,
            progress=self.run.progress,
            log=self.run.log,
            history=self.run.history,
            heartbeat_at=self.run.heartbeat_at,
        )

    def succeed(self, *, metrics: dict) -> None:
        self.run.metrics = json_safe(metrics)
        self.run.progress = 100.0
        self._finish(TrainingRun.Status.SUCCEEDED)

    def fail(self, *, error: str) -> None:
        self.run.error = error
        self._finish(TrainingRun.Status.FAILED)

    def _finish(self, status: str) -> None:
        self.run.status = status
        self.run.in_flight = None
        self.run.finished_at = timezone.now()
        self.run.log = "\n".join(self._log)[-MAX_LOG_CHARS:]
        self.run.save(
            update_fields=[
                "status",
                "in_flight",
                "finished_at",
                "metrics",
                "progress",
                "error",
                "log",
                "history",
                "step",
            ]
        )


def training_run_start(
    *, kind: str, trigger: str, user=None, seed: int = 0, config: dict | None = None
) -> TrainingRun:
    """Create a queued run and hand it to the training queue once the row is committed."""
    from .tasks import execute_training_run

    run = training_run_create(kind=kind, trigger=trigger, user=user, seed=seed, config=config)

    def enqueue() -> None:
        result = execute_training_run.delay(run.pk)
        TrainingRun.objects.filter(pk=run.pk).update(celery_task_id=result.id or "")

    transaction.on_commit(enqueue)
    return run
