"""Per-run hyperparameter overrides, ``{stage: {setting: value}}``, stored on the TrainingRun.

A run records what it changed from the stages' defaults (``manage.py train base --epochs 5``
stores ``{"base": {"epochs": 5}}``), so the record says how its versions were made, and a run
queued for a Celery worker carries its settings with it. Values are JSON: lists become the
tuples the configs use. Seeds come from the run, never from overrides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any

from training.ml.dqn import DQNConfig
from training.ml.ppo import PPOConfig
from training.ml.recommender import RecommenderConfig
from training.ml.reward_model import RewardModelConfig

STAGE_CONFIGS: dict[str, type] = {
    "base": RecommenderConfig,
    "reward": RewardModelConfig,
    "ppo": PPOConfig,
    "qlearning": DQNConfig,
}
STAGES_OF_KIND = {
    "base": ("base",),
    "reward": ("reward",),
    "ppo": ("ppo",),
    "qlearning": ("qlearning",),
    "all": ("reward", "ppo", "qlearning"),
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fits(default: Any, value: Any) -> bool:
    """Whether a JSON ``value`` can replace a setting whose default is ``default``."""
    if default is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, int | float)
    if isinstance(default, int):
        return isinstance(value, int)
    if isinstance(default, tuple):
        return isinstance(value, list | tuple)
    return isinstance(value, type(default))


def overrides_clean(kind: str, overrides: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """A validated copy of ``overrides`` for a run of ``kind``; ValueError names what is wrong."""
    stages = STAGES_OF_KIND[kind]
    cleaned: dict[str, dict[str, Any]] = {}
    for stage, settings in (overrides or {}).items():
        if stage not in stages:
            raise ValueError(f"a {kind!r} run has no stage {stage!r}; its stages: {', '.join(stages)}")
        if not isinstance(settings, Mapping):
            raise ValueError(f"the overrides of {stage!r} must be an object of setting: value")
        defaults = {f.name: f.default for f in fields(STAGE_CONFIGS[stage]) if f.name != "seed"}
        defaults |= {
            f.name: f.default_factory()
            for f in fields(STAGE_CONFIGS[stage])
            if f.name in defaults and callable(f.default_factory)
        }
        optional = {f.name for f in fields(STAGE_CONFIGS[stage]) if "None" in str(f.type)}
        for name, value in settings.items():
            if name not in defaults:
                raise ValueError(
                    f"{stage} has no setting {name!r}; its settings: {', '.join(sorted(defaults))}"
                )
            if value is None and name in optional:
                continue
            if not _fits(defaults[name], value):
                raise ValueError(f"{stage}.{name} = {value!r}: expected a value like {defaults[name]!r}")
            if _is_number(value) and _is_number(defaults[name]) and value < 0 <= defaults[name]:
                raise ValueError(f"{stage}.{name} = {value!r}: must not be negative")
        cleaned[stage] = dict(settings)
    return cleaned


def with_overrides(config: Any, overrides: Mapping[str, Any] | None) -> Any:
    """``config`` with one stage's overrides applied."""
    if not overrides:
        return config
    return replace(config, **{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})
