"""A lost enqueue never holds the one-run slot: broker outages, lost tasks, and cancelling stuck runs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError
from rest_framework.test import APIClient

from recsys_site.celery import app as celery_app
from training.models import TrainingRun
from training.pipeline import training_run_execute
from training.runs import enqueue_run, training_run_create, training_run_reap_stale

# The enqueue runs when the run's row is committed: these tests need real commits.
transactional = pytest.mark.django_db(transaction=True)


def broker_down(*args, **kwargs):
    raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


def broker_up(run_id):
    return type("Result", (), {"id": f"task-{run_id}"})()


@transactional
def test_retrain_now_during_a_broker_outage_says_so_and_the_next_retrain_works(client, sam, monkeypatch):
    monkeypatch.setattr("training.runs.enqueue_run", broker_down)
    client.force_login(sam)
    response = client.post("/admin/training/trainingrun/retrain/", {"kind": "base"}, follow=True)
    assert response.status_code == 200
    assert "task broker is unreachable" in response.content.decode()
    lost = TrainingRun.objects.get()
    assert lost.status == TrainingRun.Status.FAILED and lost.in_flight is None
    assert "nothing was trained" in lost.error

    monkeypatch.setattr("training.runs.enqueue_run", broker_up)
    client.post("/admin/training/trainingrun/retrain/", {"kind": "base"})
    run = TrainingRun.objects.exclude(pk=lost.pk).get()
    assert run.status == TrainingRun.Status.QUEUED and run.celery_task_id == f"task-{run.pk}"


@transactional
def test_the_api_answers_503_with_retry_after_when_the_broker_is_down(sam, monkeypatch):
    monkeypatch.setattr("training.runs.enqueue_run", broker_down)
    api = APIClient()
    api.force_authenticate(sam)
    refused = api.post("/api/training/runs/", {"kind": "base"}, format="json")
    assert refused.status_code == 503 and refused["Retry-After"] == "30"
    assert "Try again in a minute" in refused.json()["detail"]
    assert TrainingRun.objects.get().status == TrainingRun.Status.FAILED

    monkeypatch.setattr("training.runs.enqueue_run", broker_up)
    assert api.post("/api/training/runs/", {"kind": "base"}, format="json").status_code == 202


@transactional
def test_the_schedule_reports_a_broker_outage_instead_of_crashing(settings, monkeypatch):
    from training.tasks import retrain_if_enough_feedback

    settings.RETRAIN_MIN_NEW_FEEDBACK = 1
    monkeypatch.setattr("training.rlhf.new_feedback_since_last_run", lambda: 5)
    monkeypatch.setattr("training.runs.enqueue_run", broker_down)
    assert "task broker is unreachable" in retrain_if_enough_feedback()
    assert not TrainingRun.objects.filter(in_flight=True).exists()


def test_a_run_is_sent_by_the_tasks_registered_name_to_the_training_queue(monkeypatch):
    from training.tasks import execute_training_run

    sent = []
    monkeypatch.setattr(
        celery_app, "send_task", lambda name, args=None, *rest, **options: sent.append((name, args)) or "r"
    )
    assert enqueue_run(7) == "r"
    assert sent == [(execute_training_run.name, (7,))]
    route = celery_app.amqp.router.route({}, execute_training_run.name, (7,), {})
    assert route["queue"].name == "training"


def age(run: TrainingRun, seconds: float) -> None:
    TrainingRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(seconds=seconds))


@pytest.mark.django_db
def test_a_queued_run_that_never_got_a_task_is_reaped_within_the_grace_and_frees_the_slot():
    lost = training_run_create(kind="all", trigger="admin")  # committed, but never enqueued
    age(lost, 5)
    assert training_run_reap_stale() == 0  # its enqueue may still be under way
    age(lost, 31)
    run = training_run_create(kind="base", trigger="api")  # the lock reaps it first
    lost.refresh_from_db()
    assert lost.status == TrainingRun.Status.FAILED and "never handed to a worker" in lost.error
    assert run.status == TrainingRun.Status.QUEUED


@pytest.mark.django_db
def test_the_minute_check_reaps_a_lost_run_but_not_a_waiting_or_foreground_one():
    from django_celery_beat.models import PeriodicTask

    from training.tasks import training_runs_reap

    schedule = PeriodicTask.objects.get(task="training.tasks.training_runs_reap")
    assert (schedule.interval.every, schedule.interval.period, schedule.queue) == (1, "minutes", "default")
    waiting = training_run_create(kind="all", trigger="admin")
    TrainingRun.objects.filter(pk=waiting.pk).update(celery_task_id="task-1")
    age(waiting, 120)
    assert training_runs_reap() == "reaped 0 runs"  # its task is in the queue, waiting for a worker
    waiting.refresh_from_db()
    assert waiting.status == TrainingRun.Status.QUEUED
    TrainingRun.objects.filter(pk=waiting.pk).update(celery_task_id="", trigger="command")
    assert training_runs_reap() == "reaped 0 runs"  # `manage.py train` runs it in the foreground
    TrainingRun.objects.filter(pk=waiting.pk).update(trigger="schedule")
    assert training_runs_reap() == "reaped 1 runs"


@pytest.mark.django_db
def test_the_admin_shows_a_stuck_run_and_cancels_it_and_a_late_worker_does_nothing(client, sam, monkeypatch):
    revoked = []
    monkeypatch.setattr(celery_app.control, "revoke", lambda task_id: revoked.append(task_id))
    stuck = training_run_create(kind="all", trigger="admin")
    TrainingRun.objects.filter(pk=stuck.pk).update(celery_task_id="task-9")
    client.force_login(sam)
    listing = client.get("/admin/training/trainingrun/").content.decode()
    assert "waiting for a worker since" in listing
    response = client.post(
        "/admin/training/trainingrun/", {"action": "cancel", "_selected_action": [stuck.pk]}, follow=True
    )
    assert f"Cancelled runs {stuck.pk}" in response.content.decode()
    stuck.refresh_from_db()
    assert stuck.status == TrainingRun.Status.FAILED and stuck.error == "Cancelled by sam."
    assert stuck.in_flight is None and revoked == ["task-9"]
    assert training_run_execute(run_id=stuck.pk).status == TrainingRun.Status.FAILED  # skipped
    assert training_run_create(kind="base", trigger="admin").status == TrainingRun.Status.QUEUED


@pytest.mark.django_db
def test_the_admin_leaves_a_live_running_run_alone(client, sam):
    live = training_run_create(kind="all", trigger="admin")
    TrainingRun.objects.filter(pk=live.pk).update(status="running", heartbeat_at=timezone.now())
    client.force_login(sam)
    response = client.post(
        "/admin/training/trainingrun/", {"action": "cancel", "_selected_action": [live.pk]}, follow=True
    )
    assert "still reporting, so they were left alone" in response.content.decode()
    assert TrainingRun.objects.get(pk=live.pk).status == TrainingRun.Status.RUNNING
    TrainingRun.objects.filter(pk=live.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert (
        "stuck: the worker stopped reporting" in client.get("/admin/training/trainingrun/").content.decode()
    )
