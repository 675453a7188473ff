"""Training-run lifecycle: create (one at a time), report progress, finish, and reap runs whose worker died."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from celery import current_app, signature
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from .exceptions import BrokerUnavailable, InvalidRunConfig, RunAlreadyInFlight
from .jsonsafe import json_safe
from .models import TrainingRun
from .overrides import overrides_clean

logger = logging.getLogger(__name__)

# A running run whose heartbeat is older than this is taken as dead (worker killed, machine lost).
STALE_AFTER = timedelta(seconds=getattr(settings, "TRAINING_STALE_SECONDS", 300))
# A queued run that never got a task id: its enqueue was lost (web process killed between the
# commit and the broker, or a failure that escaped handling). Nothing will ever run it.
ENQUEUE_GRACE = timedelta(seconds=30)
# What a client is told to wait before retrying when the broker cannot take a task.
BROKER_RETRY_AFTER_SECONDS = 30
MAX_LOG_CHARS = 200_000
# The Celery task that runs a queued run, by its registered name: tasks are the layer above this one.
EXECUTE_TASK = "training.tasks.execute_training_run"


def training_run_reap_stale(*, now=None) -> int:
    """Mark runs that will never finish as failed, freeing the one-run-at-a-time slot.

    Three kinds: running with a heartbeat older than ``STALE_AFTER`` (the worker died); queued
    for over ``ENQUEUE_GRACE`` with no task id (the enqueue was lost: nothing will ever pick it up; runs
    from ``manage.py train`` are never enqueued and start at once); queued for over an hour (the
    broker lost the task, or no training worker is running).
    """
    now = now or timezone.now()
    dead_worker = Q(status=TrainingRun.Status.RUNNING, heartbeat_at__lt=now - STALE_AFTER)
    lost_enqueue = Q(
        status=TrainingRun.Status.QUEUED, celery_task_id="", created_at__lt=now - ENQUEUE_GRACE
    ) & ~Q(trigger=TrainingRun.Trigger.COMMAND)
    never_picked = Q(status=TrainingRun.Status.QUEUED, created_at__lt=now - STALE_AFTER * 12)
    count = 0
    for run in TrainingRun.objects.filter(dead_worker | lost_enqueue | never_picked):
        if run.status == TrainingRun.Status.QUEUED and not run.celery_task_id:
            error = "The run was never handed to a worker (its enqueue was lost); nothing was trained."
        elif run.status == TrainingRun.Status.QUEUED:
            error = "No worker picked the run up within the hour; nothing was trained."
        else:
            error = "The worker stopped reporting (killed or lost); the active models were not changed."
        if training_run_fail(run_id=run.pk, error=error, now=now):
            count += 1
            logger.warning("Reaped stale training run %s: %s", run.pk, error)
    return count


def training_run_fail(*, run_id: int, error: str, now=None) -> bool:
    """Mark a queued or running run failed and free the slot; False when it had already finished."""
    return bool(
        TrainingRun.objects.filter(
            pk=run_id, status__in=[TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING]
        ).update(
            status=TrainingRun.Status.FAILED,
            in_flight=None,
            finished_at=now or timezone.now(),
            error=error,
        )
    )


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

    def start(self) -> bool:
        """Claim the queued run; False when it is no longer queued (cancelled or reaped meanwhile)."""
        now = timezone.now()
        claimed = TrainingRun.objects.filter(pk=self.run.pk, status=TrainingRun.Status.QUEUED).update(
            status=TrainingRun.Status.RUNNING, started_at=now, heartbeat_at=now
        )
        if claimed:
            self.run.status = TrainingRun.Status.RUNNING
            self.run.started_at = now
            self.run.heartbeat_at = now
        return bool(claimed)

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


def enqueue_run(run_id: int):
    """Hand a run to the training queue (``CELERY_TASK_ROUTES``) and return the task's result handle.

    The one call that reaches the broker; tests replace it. Sent by the task's name, with the same
    routing as ``execute_training_run.delay``: a process that has imported ``training.tasks`` (a
    worker) applies the registered task, so only there does ``CELERY_TASK_ALWAYS_EAGER`` run it in place.
    """
    return signature(EXECUTE_TASK, args=(run_id,)).delay()


def training_run_start(
    *, kind: str, trigger: str, user=None, seed: int = 0, config: dict | None = None
) -> TrainingRun:
    """Create a queued run and hand it to the training queue once the row is committed.

    If the broker refuses the task (Redis down), the run is marked failed at once, so it does not
    hold the one-run slot, and ``BrokerUnavailable`` tells the caller to try again later. Inside
    an outer transaction the enqueue happens at its commit, after this returns: a failure then
    only marks the run failed (and logs it).
    """
    run = training_run_create(kind=kind, trigger=trigger, user=user, seed=seed, config=config)
    failure: list[Exception] = []

    def enqueue() -> None:
        try:
            result = enqueue_run(run.pk)
        except Exception as error:  # kombu's OperationalError, redis' ConnectionError, ...
            logger.error("Could not queue training run %s: %s: %s", run.pk, type(error).__name__, error)
            training_run_fail(
                run_id=run.pk,
                error=f"Could not hand the run to the task broker ({type(error).__name__}: {error}); "
                "nothing was trained.",
            )
            failure.append(error)
            return
        TrainingRun.objects.filter(pk=run.pk).update(celery_task_id=result.id or "")

    transaction.on_commit(enqueue)
    if failure:
        raise BrokerUnavailable(
            f"The task broker is unreachable, so training run {run.pk} could not be queued and was "
            f"marked failed. Try again in a minute."
        )
    return run


def training_run_cancel(*, run: TrainingRun, actor=None, now=None) -> bool:
    """Cancel a queued run, or a running one whose worker stopped reporting; a live run is left alone.

    The task, if any, is revoked so that a worker skips it; a worker that picks it up anyway finds
    the run no longer queued and does nothing (``RunReporter.start``).
    """
    now = now or timezone.now()
    stuck = run.status == TrainingRun.Status.QUEUED or (
        run.status == TrainingRun.Status.RUNNING
        and (run.heartbeat_at is None or run.heartbeat_at < now - STALE_AFTER)
    )
    if not stuck:
        return False
    who = getattr(actor, "username", None) or "an administrator"
    if not training_run_fail(run_id=run.pk, error=f"Cancelled by {who}.", now=now):
        return False
    if run.celery_task_id:
        try:
            current_app.control.revoke(run.celery_task_id)
        except Exception as error:  # the broker is down: the worker-side check still skips it
            logger.warning("Could not revoke task %s of run %s: %s", run.celery_task_id, run.pk, error)
    logger.info("Training run %s cancelled by %s", run.pk, who)
    return True
