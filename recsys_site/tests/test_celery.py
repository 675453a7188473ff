from __future__ import annotations

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings

from movies.tasks import ping
from recsys_site.celery import app


def test_the_broker_is_redis_when_configured_and_embedded_otherwise():
    if settings.REDIS_URL:
        assert app.conf.broker_url.startswith("redis://")
    else:
        assert app.conf.broker_url == "filesystem://"


@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_a_task_from_the_broker_and_stores_its_result():
    from django_celery_results.models import TaskResult

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10, queues=["default"]):
        result = ping.delay("hello")
        assert result.get(timeout=20) == "hello"
    assert TaskResult.objects.get(task_id=result.id).status == "SUCCESS"
