"""The training stages the product and the experiment share: reward model, policy, gate evidence.

``training.rlhf`` (the product's run: database snapshot in, registered versions out) and
``training.ml.experiment`` (the closed-loop experiment: simulated annotators) each call these
functions, so what the experiment measures is what the product trains. Each takes its inputs as
arguments (comparisons, contexts, configs) and returns plain results; none reads a database,
writes an artifact or reports progress by itself (``progress`` callbacks pass through).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.ml.algorithms import algorithm as algorithm_row
from training.ml.evaluation import ndcg_difference
from training.ml.gate import CandidateEvidence, GateRules, judge_outcomes, replay_outcomes, summarise
from training.ml.norms import ListAttributes
from training.ml.policy import NumpySlatePolicy
from training.ml.reward_model import (
    NumpyRewardModel,
    RatingPair,
    RewardModelConfig,
    RewardModelResult,
    sample_rating_pairs,
    train_reward_model,
)
from training.ml.user_features import ItemFeatures, UserContext


@dataclass
class RewardFit:
    """A fitted reward model: the NumPy model served and judged, and what its training returned."""

    model: NumpyRewardModel  # the exported NumPy model (what serving, the policies and the gate call)
    result: RewardModelResult  # the Keras training's result: final metrics, history, arrays
    rating_pairs: list[RatingPair]  # the pairs sampled from the raters' own ratings (empty: none asked)


def fit_reward_model(
    comparisons: Sequence[Any],
    *,
    raters: Mapping[Hashable, UserContext] | None,
    contexts: Mapping[Hashable, UserContext],
    item_features: ItemFeatures,
    config: RewardModelConfig,
    list_attributes: ListAttributes | None = None,
    progress: Callable[[int, dict[str, float]], None] | None = None,
) -> RewardFit:
    """Fit a reward model from scratch on ``comparisons`` and on rating pairs of ``raters``.

    ``raters``: the users whose own ratings add pairs (``sample_rating_pairs`` at the config's
    ``pairs_per_user``, ``min_rating_gap`` and ``seed``); None trains on the comparisons alone.
    ``contexts``: every user a comparison or a pair names, as they were known when they judged.
    """
    rating_pairs = (
        None
        if raters is None
        else sample_rating_pairs(raters, config.pairs_per_user, config.min_rating_gap, config.seed)
    )
    result = train_reward_model(
        comparisons,
        rating_pairs,
        contexts,
        item_features,
        config,
        progress=progress,
        list_attributes=list_attributes,
    )
    return RewardFit(result.numpy_model(), result, list(rating_pairs or []))


def fit_policy(
    algorithm: str,
    users: Sequence[UserContext],
    recommender: Any,
    reward_model: NumpyRewardModel,
    item_matrix: np.ndarray,
    config: Any,
    progress: Callable[[dict[str, float]], None] | None = None,
) -> tuple[NumpySlatePolicy, Any]:
    """Train PPO or Q-learning (``algorithm``, a name of ``training.ml.algorithms``) on ``users``
    against ``reward_model``, over the reference ``recommender``; (the NumPy policy, the trainer's result)."""
    result = algorithm_row(algorithm).train(
        users, recommender, reward_model, item_matrix, config, progress=progress
    )
    return NumpySlatePolicy.from_arrays(result.arrays, kind=algorithm), result


def judge_trusted(accuracy: float | None, n_strict: int, rules: GateRules) -> bool:
    """Whether a reward model may judge: enough strict held-out comparisons, and accurate enough on them."""
    return (
        accuracy is not None
        and n_strict >= rules.min_judge_comparisons
        and accuracy >= rules.min_judge_accuracy
    )


def candidate_evidence(
    *,
    name: str,
    lists: Mapping[Hashable, np.ndarray],
    served: Mapping[Hashable, np.ndarray],
    judge: Callable[[Hashable, np.ndarray], float] | None,
    judge_name: str,
    judge_trusted: bool | None,
    replayed: Sequence[tuple[Hashable, np.ndarray, np.ndarray, str]],
    relevant: Mapping[Hashable, set[int]],
    slate_size: int,
    rules: GateRules,
    kl: float | None,
    judged_users: Sequence[Hashable] | None = None,
) -> CandidateEvidence:
    """One candidate against the served policy on held-out users: judge, replay, held-out NDCG.

    ``lists`` and ``served``: each held-out user's list from the candidate and from the served
    policy. ``judge``: a list's score for a user (None: no judge, an empty verdict); it judges
    ``judged_users`` (None: every user of ``lists``). ``replayed``: the held-out annotators'
    comparisons ``(user, A, B, outcome)``; ``relevant``: their held-out relevant movies.
    """
    if judge is None:
        judged = summarise([], rules)
    else:
        users = list(lists) if judged_users is None else judged_users
        judged = summarise(judge_outcomes(judge, {u: lists[u] for u in users}, served), rules)
    return CandidateEvidence(
        name=name,
        judge=judged,
        judge_name=judge_name,
        judge_trusted=judge_trusted,
        replay=summarise(replay_outcomes(replayed, lists, served), rules),
        ndcg_difference=ndcg_difference(
            dict(lists), dict(served), dict(relevant), slate_size, rules.bootstrap_rounds, rules.seed
        ),
        kl=kl,
    )
