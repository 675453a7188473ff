"""Per-run hyperparameter overrides, ``{stage: {setting: value}}``, stored on the TrainingRun.

A run records what it changed from the stages' defaults (``manage.py train base --epochs 5``
stores ``{"base": {"epochs": 5}}``), so the record says how its versions were made, and a run
queued for a Celery worker carries its settings with it. Each stage's settings are checked by
``training.ml.overrides.settings_check`` and applied by ``settings_apply``; seeds come from the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from training.ml.algorithms import STAGES, algorithm
from training.ml.overrides import settings_check


def stage_config_class(stage: str) -> type:
    """The config dataclass of a stage; imported when asked for, so the web process loads the
    trainers' modules (and scipy.linalg with them) only when a run's settings are checked."""
    return algorithm(stage).config_class()


RLHF_STAGES = tuple(stage for stage in STAGES if algorithm(stage).kind != "recommender")
STAGES_OF_KIND = {**{stage: (stage,) for stage in STAGES}, "all": RLHF_STAGES}


def overrides_clean(kind: str, overrides: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """A validated copy of ``overrides`` for a run of ``kind``; ValueError names what is wrong."""
    stages = STAGES_OF_KIND.get(kind)
    if stages is None:
        raise ValueError(f"Unknown kind {kind!r}.")
    cleaned: dict[str, dict[str, Any]] = {}
    for stage, settings in (overrides or {}).items():
        if stage not in stages:
            raise ValueError(
                f"A run of kind {kind!r} has no stage {stage!r}; its stages: {', '.join(stages)}"
            )
        if not isinstance(settings, Mapping):
            raise ValueError(f"The settings of stage {stage!r} must be an object of setting: value")
        settings_check(stage_config_class(stage), settings, stage)
        cleaned[stage] = dict(settings)
    return cleaned
