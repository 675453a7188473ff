"""The table of algorithms: every model the project trains, what its artifact holds and how it is served.

One row per algorithm; every list of algorithm names elsewhere (the registry's kinds, the store's
loaders, the run settings' stages, the model field's choices, the admin and the API filters) is
read from it. Config classes and trainers are named by their dotted path and imported on demand,
so reading the table never loads TensorFlow or scipy (the web process reads it on every page).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any, Literal

ArtifactKind = Literal["recommender", "reward_model", "policy"]
Loader = Literal["scorer", "reward_model", "slate_policy", "reranker"]


@dataclass(frozen=True)
class Algorithm:
    """One algorithm: its stored name, how people read it, and how it is trained, stored and served."""

    name: str  # stored in ModelVersion.algorithm, in artifact names and as a run's settings stage
    label: str  # how people read it: in messages, on pages and in the admin
    kind: ArtifactKind  # what its artifact is (ModelVersion.kind): a recommender, a reward model or a policy
    loader: Loader  # what reads its artifact back: a scorer, a reward model, a slate network or a reranker
    config: str = ""  # "module:Class" of its hyperparameters, when it is trained by a stage of its own
    trainer: str = ""  # "module:function" that trains it, when it is trained by a stage of its own
    learns_from_feedback: bool = True  # trained on annotators' comparisons (or on a reward model of them)

    @property
    def servable(self) -> bool:
        """End users can be shown its lists (everything but the reward model)."""
        return self.kind != "reward_model"

    @property
    def over_reference(self) -> bool:
        """A policy that re-ranks the reference recommender's candidates (stored with its version id)."""
        return self.kind == "policy"

    @property
    def has_stage(self) -> bool:
        """Trained by a stage of its own, whose settings a run may change."""
        return bool(self.config)

    def config_class(self) -> type:
        """The hyperparameters' dataclass, imported now (the trainers' modules load scipy)."""
        return _resolve(self.config, self.name)

    def train(self, *args: Any, **kwargs: Any) -> Any:
        """Call the trainer (imported now: it loads TensorFlow)."""
        return _resolve(self.trainer, self.name)(*args, **kwargs)


def _resolve(path: str, name: str) -> Any:
    if not path:
        raise LookupError(f"{name} is not trained by a stage of its own")
    module, _, attribute = path.partition(":")
    return getattr(import_module(module), attribute)


ALGORITHMS: tuple[Algorithm, ...] = (
    Algorithm(
        "base",
        "Base",
        "recommender",
        "scorer",
        config="training.ml.recommender:RecommenderConfig",
        trainer="training.ml.recommender:train_recommender",
        learns_from_feedback=False,
    ),
    Algorithm(
        "reward",
        "Reward model",
        "reward_model",
        "reward_model",
        config="training.ml.reward_model:RewardModelConfig",
        trainer="training.ml.reward_model:train_reward_model",
    ),
    Algorithm(
        "ppo",
        "PPO",
        "policy",
        "slate_policy",
        config="training.ml.ppo:PPOConfig",
        trainer="training.ml.ppo:train_ppo",
    ),
    Algorithm(
        "qlearning",
        "Q-learning",
        "policy",
        "slate_policy",
        config="training.ml.dqn:DQNConfig",
        trainer="training.ml.dqn:train_dqn",
    ),
    Algorithm("quality_rerank", "Quality re-rank", "policy", "reranker", learns_from_feedback=False),
    Algorithm("rm_rerank", "Reward re-rank", "policy", "reranker"),
    Algorithm("best_of_n", "Best-of-n", "policy", "reranker"),
    Algorithm("mmr", "Diversity re-rank (MMR)", "policy", "reranker", learns_from_feedback=False),
    Algorithm("rm_greedy", "Reward greedy", "policy", "reranker"),
    Algorithm("rm_mmr", "Reward MMR", "policy", "reranker"),
)
BY_NAME: dict[str, Algorithm] = {algorithm.name: algorithm for algorithm in ALGORITHMS}

NAMES = tuple(BY_NAME)
SERVABLE = tuple(a.name for a in ALGORITHMS if a.servable)  # base and every policy
POLICIES = tuple(a.name for a in ALGORITHMS if a.over_reference)  # lists built over the base recommender
SLATE_POLICIES = tuple(a.name for a in ALGORITHMS if a.loader == "slate_policy")  # PPO and Q-learning
RERANKERS = tuple(a.name for a in ALGORITHMS if a.loader == "reranker")
STAGES = tuple(a.name for a in ALGORITHMS if a.has_stage)  # base, reward, ppo, qlearning
FEEDBACK_FREE_POLICIES = tuple(a.name for a in ALGORITHMS if a.over_reference and not a.learns_from_feedback)
CHOICES = [(a.name, a.label) for a in ALGORITHMS]


def algorithm(name: str) -> Algorithm:
    """The row of ``name``; ``LookupError`` names the known ones."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise LookupError(f"unknown algorithm {name!r}; expected one of {', '.join(NAMES)}") from None
