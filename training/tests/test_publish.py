"""Publishing writes the artifact, registers the version and carries out the gate's verdict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.conf import settings

from training.ml.artifacts import load_artifact
from training.ml.gate import Verdict
from training.models import ModelEvent, ModelVersion, TrainingRun
from training.publish import model_version_gate, model_version_publish

pytestmark = pytest.mark.django_db


def publish(verdict: Verdict | None = None, run: TrainingRun | None = None) -> ModelVersion:
    return model_version_publish(
        algorithm="reward",
        arrays={"weights": np.ones(3, np.float32)},
        item_ids=np.array([1, 5, 9]),
        manifest={"kind": "reward", "metrics": {"heldout/accuracy": 0.7}},
        metrics={"heldout/accuracy": np.float64(0.7)},
        config={"epochs": 3},
        seed=4,
        data_snapshot={"comparisons": 12},
        run=run,
        verdict=verdict,
    )


def test_the_artifact_is_named_after_the_version_and_run_and_holds_the_catalogue(sam):
    run = TrainingRun.objects.create(kind="reward", created_by=sam, seed=4)
    version = publish(run=run)
    assert version.artifact == f"reward-v1-run{run.pk}" and version.run == run
    arrays, meta = load_artifact(Path(settings.ARTIFACTS_DIR) / version.artifact)
    assert arrays["item_ids"].tolist() == [1, 5, 9] and arrays["item_ids"].dtype == np.int64
    assert meta == {
        "kind": "reward",
        "metrics": {"heldout/accuracy": 0.7},
        "algorithm": "reward",
        "version": 1,
    }
    assert publish().artifact == "reward-v2-run0"


def test_without_a_verdict_the_version_stays_a_candidate_for_the_gate():
    version = publish()
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.CANDIDATE and version.gate == {}
    assert (version.kind, version.seed, version.config) == (ModelVersion.Kind.REWARD_MODEL, 4, {"epochs": 3})
    assert list(version.events.values_list("action", flat=True)) == [ModelEvent.Action.REGISTERED]


def test_a_served_verdict_activates_the_version_with_its_note_and_stores_the_report(sam):
    run = TrainingRun.objects.create(kind="reward", created_by=sam)
    version = publish(Verdict(True, {"passed": True, "reason": "good"}, "good"), run=run)
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.ACTIVE and version.gate == {"passed": True, "reason": "good"}
    activated = version.events.get(action=ModelEvent.Action.ACTIVATED)
    assert (activated.note, activated.actor) == ("good", sam)


def test_a_held_verdict_rejects_the_version_with_the_reports_reason():
    version = publish(Verdict(False, {"passed": False, "reason": "too few", "accuracy": np.float64(0.5)}))
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.CANDIDATE
    assert version.gate == {"passed": False, "reason": "too few", "accuracy": 0.5}
    assert version.events.get(action=ModelEvent.Action.GATE_REJECTED).note == "too few"


def test_the_gate_adds_its_metrics_to_the_versions_own():
    version = publish()
    model_version_gate(
        version=version, verdict=Verdict(False, {"reason": "no"}, metrics={"gate/win_rate": 0.4})
    )
    version.refresh_from_db()
    assert version.metrics == {"heldout/accuracy": 0.7, "gate/win_rate": 0.4}
