"""Staff REST endpoints for training runs and model versions: who may call them, validation, effects."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from training import registry
from training.models import ModelEvent, TrainingRun

from .conftest import gate_report, make_version

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    ("get", "/api/training/runs/"),
    ("post", "/api/training/runs/"),
    ("get", "/api/training/runs/1/"),
    ("get", "/api/models/"),
    ("get", "/api/models/1/"),
    ("post", "/api/models/1/promote/"),
    ("post", "/api/models/rollback/"),
]


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_only_staff_may_use_the_training_endpoints(method, url, alice):
    assert getattr(client_for(alice), method)(url, {}, format="json").status_code == 403
    assert getattr(client_for(), method)(url, {}, format="json").status_code in (401, 403)
    assert not TrainingRun.objects.exists()


def test_staff_queue_a_run_with_settings_and_it_is_enqueued_once_committed(
    sam, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client_for(sam).post(
            "/api/training/runs/",
            {"kind": "base", "seed": 3, "config": {"base": {"epochs": 2}}},
            format="json",
        )
    assert response.status_code == 202, response.data
    run = TrainingRun.objects.get()
    assert (run.kind, run.status, run.trigger, run.seed, run.created_by) == ("base", "queued", "api", 3, sam)
    assert run.config == {"base": {"epochs": 2}}
    assert response.data["id"] == run.pk and response.data["config"] == run.config
    assert len(callbacks) == 1  # the Celery task is sent only after the row is committed

    detail = client_for(sam).get(f"/api/training/runs/{run.pk}/")
    assert detail.status_code == 200
    assert {"log", "history", "progress", "step", "versions"} <= set(detail.data)
    listed = client_for(sam).get("/api/training/runs/?status=queued")
    assert [row["id"] for row in listed.data["results"]] == [run.pk]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"kind": "everything"}, "kind", "is not a valid choice"),
        ({"kind": "base", "seed": -1}, "seed", "greater than or equal to 0"),
        ({"kind": "base", "config": {"ppo": {"iterations": 3}}}, "config", "has no stage 'ppo'"),
        ({"kind": "all", "config": {"reward": {"epochs": "many"}}}, "config", "expected a value like 20"),
        ({"kind": "all", "config": "fast"}, "config", "Expected a dictionary"),
    ],
)
def test_a_bad_run_request_is_a_400_naming_the_field_and_queues_nothing(body, field, message, sam):
    response = client_for(sam).post("/api/training/runs/", body, format="json")
    assert response.status_code == 400
    assert message in str(response.data[field])
    assert not TrainingRun.objects.exists()


def test_a_second_run_while_one_is_in_flight_is_a_409(sam):
    assert client_for(sam).post("/api/training/runs/", {"kind": "all"}, format="json").status_code == 202
    response = client_for(sam).post("/api/training/runs/", {"kind": "base"}, format="json")
    assert response.status_code == 409 and "still in progress" in response.data["detail"]
    assert TrainingRun.objects.count() == 1
    assert client_for(sam).get("/api/training/runs/?status=done").status_code == 400


def test_staff_promote_and_roll_back_versions_and_each_decision_is_recorded(sam):
    first, second = make_version("base", number=1), make_version("base", number=2)
    registry.model_version_activate(version=first)

    response = client_for(sam).post(
        f"/api/models/{second.pk}/promote/", {"note": "wins on review"}, format="json"
    )
    assert response.status_code == 200 and response.data["status"] == "active"
    event = second.events.get(action=ModelEvent.Action.PROMOTED)
    assert (event.actor, event.note) == (sam, "wins on review")
    listed = client_for(sam).get("/api/models/?algorithm=base&status=retired")
    assert [row["label"] for row in listed.data["results"]] == ["base v1"]

    response = client_for(sam).post("/api/models/rollback/", {"algorithm": "base"}, format="json")
    assert response.status_code == 200 and response.data["label"] == "base v1"
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("active", "retired")
    assert first.events.filter(actor=sam, note="rolled back through the API").exists()


def test_staff_read_one_version_with_the_gates_full_report(sam):
    version = make_version("quality_rerank")
    version.gate = gate_report("quality_rerank")
    version.save(update_fields=["gate"])
    response = client_for(sam).get(f"/api/models/{version.pk}/")
    assert response.status_code == 200 and response.data["algorithm"] == "quality_rerank"
    gate = response.data["gate"]
    assert (gate["served"], gate["passed"], gate["judge"]["accuracy"]) == ("ppo", False, 0.7)
    checks = {entry["name"]: entry["checks"] for entry in gate["candidates"]}
    assert checks["ppo"]["judge_low"] == 0.7 and checks["quality_rerank"]["judge_win_rate"] == 0.45
    assert client_for(sam).get("/api/models/999/").status_code == 404


def test_impossible_version_requests_are_refused_clearly(sam):
    staff = client_for(sam)
    assert staff.post("/api/models/999/promote/", {}, format="json").status_code == 404
    response = staff.post("/api/models/rollback/", {"algorithm": "reward"}, format="json")
    assert response.status_code == 409 and "No active reward version" in response.data["detail"]
    response = staff.post("/api/models/rollback/", {"algorithm": "everything"}, format="json")
    assert response.status_code == 400 and "algorithm" in response.data
    assert staff.get("/api/models/?status=best").status_code == 400
    assert "algorithm" in staff.get("/api/models/?algorithm=everything").data


def test_the_openapi_schema_describes_the_training_endpoints(sam):
    schema = client_for(sam).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path in ["/api/training/runs/", "/api/training/runs/{id}/", "/api/models/", "/api/models/rollback/"]:
        assert path in schema["paths"]
    assert "requestBody" in schema["paths"]["/api/training/runs/"]["post"]
