"""Promotion and roll-back verify the artifact; the API never passes off an unserved version as served."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from training import registry
from training.models import ModelEvent, ModelVersion
from training.store import models as served_models

from .conftest import make_version

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_serving_cache():
    served_models.clear()
    yield
    served_models.clear()


def corrupt(version: ModelVersion) -> None:
    """Flip bytes in one array file, as a bad disk or a stray edit would."""
    array_file = sorted((Path(settings.ARTIFACTS_DIR) / version.artifact).glob("*.npy"))[0]
    data = bytearray(array_file.read_bytes())
    data[-4:] = b"\xff\xff\xff\xff"
    array_file.write_bytes(bytes(data))


def staff(sam) -> APIClient:
    client = APIClient()
    client.force_authenticate(sam)
    return client


def test_promoting_a_version_with_a_corrupt_artifact_is_refused_and_changes_nothing(sam):
    first, second = make_version(number=1), make_version(number=2)
    registry.model_version_activate(version=first)
    corrupt(second)
    response = staff(sam).post(f"/api/models/{second.pk}/promote/", {"note": "try"}, format="json")
    assert response.status_code == 409
    assert "base v2 cannot be activated: its artifact failed verification" in response.data["detail"]
    assert "does not match its checksum" in response.data["detail"]
    assert ModelVersion.objects.get(status="active") == first
    assert not second.events.filter(action=ModelEvent.Action.PROMOTED).exists()


def test_promoting_a_version_whose_artifact_is_gone_is_refused(sam):
    first, second = make_version(number=1), make_version(number=2)
    registry.model_version_activate(version=first)
    ModelVersion.objects.filter(pk=second.pk).update(artifact="nowhere")
    response = staff(sam).post(f"/api/models/{second.pk}/promote/", {}, format="json")
    assert response.status_code == 409 and "has no manifest.json" in response.data["detail"]


def test_the_admin_says_why_it_refuses_to_promote_a_corrupt_version(client, sam):
    first, second = make_version(number=1), make_version(number=2)
    registry.model_version_activate(version=first)
    corrupt(second)
    client.force_login(sam)
    response = client.post(
        "/admin/training/modelversion/",
        {"action": "promote", "_selected_action": [second.pk], "confirm": "yes"},
        follow=True,
    )
    assert "v2 cannot be activated: its artifact failed verification" in response.content.decode()
    assert ModelVersion.objects.get(status="active") == first


def test_rolling_back_to_a_corrupt_version_is_refused(sam):
    first, second = make_version(number=1), make_version(number=2)
    registry.model_version_activate(version=first)
    registry.model_version_activate(version=second)
    corrupt(first)
    response = staff(sam).post("/api/models/rollback/", {"algorithm": "base"}, format="json")
    assert response.status_code == 409 and "base v1 cannot be activated" in response.data["detail"]
    assert ModelVersion.objects.get(status="active") == second


def test_the_model_list_says_which_version_is_served_when_the_active_one_cannot_load(sam):
    first, second = make_version(number=1), make_version(number=2)
    reward = make_version("reward", number=1)
    registry.model_version_activate(version=first)
    listed = {row["label"]: row for row in staff(sam).get("/api/models/").data["results"]}
    assert (listed["base v1"]["status"], listed["base v1"]["served"]) == ("active", True)
    assert listed["reward v1"]["served"] is None  # never served
    assert reward.status == "candidate"

    registry.model_version_activate(version=second)  # then its file goes bad on disk
    corrupt(second)
    listed = {row["label"]: row for row in staff(sam).get("/api/models/").data["results"]}
    assert (listed["base v2"]["status"], listed["base v2"]["served"]) == ("active", False)
    assert (listed["base v1"]["status"], listed["base v1"]["served"]) == ("retired", True)
