"""Celery tasks of the training queue: thin wrappers that own retries and time limits."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

TRAINING_SOFT_TIME_LIMIT = 60 * 60
TRAINING_TIME_LIMIT = TRAINING_SOFT_TIME_LIMIT + 120


@shared_task(
    name="training.tasks.execute_training_run",
    soft_time_limit=TRAINING_SOFT_TIME_LIMIT,
    time_limit=TRAINING_TIME_LIMIT,
    autoretry_for=(OperationalError, ConnectionError),
    retry_backoff=5,
    max_retries=3,
    acks_late=True,
    reject_on_worker_lost=False,
)
def execute_training_run(run_id: int) -> str:
    # TensorFlow is imported inside the pipeline's training functions, in this worker, never at import.
    from .pipeline import training_run_execute

    return training_run_execute(run_id=run_id).status
