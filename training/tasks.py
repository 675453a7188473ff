"""Celery tasks of the training queue: thin wrappers that own retries and time limits."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

logger = logging.getLogger(__name__)

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
)
def execute_training_run(run_id: int) -> str:
    # TensorFlow is imported inside the pipeline's training functions, in this worker, never at import.
    from .dashboard_plots import dashboard_plots_render
    from .models import TrainingRun
    from .pipeline import training_run_execute

    run = training_run_execute(run_id=run_id)
    if run.status == TrainingRun.Status.SUCCEEDED:
        dashboard_plots_render()  # the staff dashboard's first view after the run then serves files
    return run.status


@shared_task(name="training.tasks.training_runs_reap")
def training_runs_reap() -> str:
    """The minute check: fail runs that will never finish (lost enqueue, dead worker), freeing the slot."""
    from .runs import training_run_reap_stale

    return f"reaped {training_run_reap_stale()} runs"


@shared_task(name="training.tasks.retrain_if_enough_feedback")
def retrain_if_enough_feedback() -> str:
    """The periodic trigger: retrain the recommender once enough new ratings have arrived, else the
    RLHF pipeline once enough new feedback has (one run at a time; the other waits for a later tick)."""
    from .exceptions import BrokerUnavailable, RunAlreadyInFlight
    from .models import TrainingRun
    from .rlhf import new_feedback_since_last_run
    from .runs import training_run_reap_stale, training_run_start
    from .snapshots import new_ratings_since_active_recommender

    training_run_reap_stale()
    ratings = new_ratings_since_active_recommender()
    if ratings is not None and ratings >= settings.RETRAIN_MIN_NEW_RATINGS:
        try:
            run = training_run_start(kind=TrainingRun.Kind.BASE, trigger=TrainingRun.Trigger.SCHEDULE)
        except (RunAlreadyInFlight, BrokerUnavailable) as error:
            return str(error)
        return f"started run {run.pk} (the recommender) after {ratings} new ratings"
    new = new_feedback_since_last_run()
    if new < settings.RETRAIN_MIN_NEW_FEEDBACK:
        return f"{new} new feedback items; waiting for {settings.RETRAIN_MIN_NEW_FEEDBACK}"
    try:
        run = training_run_start(kind=TrainingRun.Kind.ALL, trigger=TrainingRun.Trigger.SCHEDULE)
    except (RunAlreadyInFlight, BrokerUnavailable) as error:
        return str(error)
    return f"started run {run.pk} after {new} new feedback items"


@shared_task(name="training.tasks.impressions_prune")
def impressions_prune() -> str:
    """The daily clean-up: shown lists older than IMPRESSIONS_KEEP_DAYS go."""
    from .serving import shown_lists_prune

    return f"deleted {shown_lists_prune(keep_days=settings.IMPRESSIONS_KEEP_DAYS)} shown lists"
