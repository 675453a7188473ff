"""Publishing a trained model: write its artifact, register the version, then serve it or hold it back.

Every stage that trains something (the recommender, the reward model, PPO and Q-learning, the
reranker baselines) ends here. The gate's rules are the pure functions of ``training.ml.gate``; they
return a ``Verdict``, and this module only carries it out: the report is stored on the version, and
the version is activated (with the verdict's note) or rejected (with the report as its reason).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from training.ml.artifacts import write_artifact
from training.ml.gate import Verdict

from . import registry
from .jsonsafe import json_safe
from .models import ModelEvent, ModelVersion, TrainingRun


def artifact_name(algorithm: str, number: int, run_id: int | None) -> str:
    """The artifact folder of a version, under ``ARTIFACTS_DIR``: ``ppo-v3-run12``."""
    return f"{algorithm}-v{number}-run{run_id or 0}"


def model_version_publish(
    *,
    algorithm: str,
    arrays: Mapping[str, np.ndarray],
    item_ids: np.ndarray,
    manifest: Mapping[str, Any],
    metrics: dict,
    config: dict,
    seed: int,
    data_snapshot: dict,
    run: TrainingRun | None,
    verdict: Verdict | None = None,
) -> ModelVersion:
    """Write the artifact and register the next version of ``algorithm``; then, given a ``verdict``,
    serve it or hold it back (``model_version_gate``). Without one it stays a candidate, for a gate
    that judges several candidates together.

    The artifact holds ``arrays`` and the movie ids of the catalogue indices (``item_ids``); its
    manifest is ``manifest`` with the algorithm and the version number.
    """
    number = registry.next_version_number(algorithm=algorithm)
    name = artifact_name(algorithm, number, run.pk if run else None)
    write_artifact(
        Path(settings.ARTIFACTS_DIR),
        name,
        {**arrays, "item_ids": np.asarray(item_ids, np.int64)},
        {**manifest, "algorithm": algorithm, "version": number},
    )
    version = registry.model_version_register(
        algorithm=algorithm,
        version=number,
        artifact=name,
        metrics=metrics,
        config=config,
        seed=seed,
        data_snapshot=data_snapshot,
        run=run,
    )
    if verdict is not None:
        model_version_gate(version=version, verdict=verdict, actor=run.created_by if run else None)
    return version


def model_version_gate(
    *, version: ModelVersion, verdict: Verdict, actor=None, action: str = ModelEvent.Action.ACTIVATED
) -> ModelVersion:
    """Store the gate's report (and any metrics it adds) on ``version``, then activate it with the
    verdict's note, or reject it with the report."""
    fields = ["gate"]
    if verdict.metrics:
        version.metrics = json_safe({**version.metrics, **verdict.metrics})
        fields.insert(0, "metrics")
    version.gate = json_safe(verdict.report)
    version.save(update_fields=fields)
    if verdict.serve:
        return registry.model_version_activate(version=version, actor=actor, action=action, note=verdict.note)
    return registry.model_version_reject(version=version, gate=verdict.report)
