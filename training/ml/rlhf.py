"""RLHF glue shared by the product pipeline and the closed-loop experiment: the world, slates, KL, gate.

Nothing here trains; it assembles what the reward model, PPO and Q-learning consume (user contexts
and item features over the supervised recommender's catalogue) and measures a policy's KL from the
reference policy and a win rate with a bootstrap interval. The gate's rules are in ``gate.py``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.ml.data import History
from training.ml.env import candidate_set, ref_log_policy
from training.ml.metrics import bootstrap_mean
from training.ml.policy import NumpySlatePolicy
from training.ml.scoring import NumpyRecommender
from training.ml.user_features import ItemFeatures, UserContext, build_item_features, make_user_context

OUTCOME_OF_CHOICE = {"left": "a", "right": "b", "tie": "tie", "both_bad": "both_bad"}


@dataclass
class World:
    """Everything the RLHF models see: the reference recommender, item features and user contexts."""

    recommender: NumpyRecommender
    item_features: ItemFeatures
    contexts: dict[Hashable, UserContext]

    def context(self, key: Hashable) -> UserContext:
        return self.contexts[key]


def build_world(
    *,
    recommender: NumpyRecommender,
    histories: Mapping[Hashable, History],
    genres: Sequence[Sequence[str]],
    years: np.ndarray,
    popularity: np.ndarray,
    signals: Mapping[Hashable, Sequence[Mapping[str, Any]]] | None = None,
    mean_rating: np.ndarray | None = None,
) -> World:
    """Item features over the recommender's catalogue and one context per user key.

    ``mean_rating`` (each movie's shrunk mean rating, ``rerankers.shrunk_mean_ratings``) adds what
    people thought of each movie to the features the reward model and the policies see.
    """
    features = build_item_features(
        recommender.item_embeddings, genres, years, popularity, mean_rating=mean_rating
    )
    signals = signals or {}
    contexts = {
        key: make_user_context(history, recommender, features, signals=signals.get(key) or None, key=key)
        for key, history in histories.items()
    }
    return World(recommender, features, contexts)


@dataclass
class SlateSource:
    """Something that builds a list for a user: the reference recommender or a trained slate policy."""

    name: str
    policy: NumpySlatePolicy | Any = None  # None = the reference recommender's top-k; or a reranker

    def slate(self, world: World, ctx: UserContext, k: int) -> np.ndarray:
        if self.policy is None:
            items, _ = world.recommender.top_k(ctx.history, k, exclude_rated=True)
            return np.asarray(items, np.int64)
        if not isinstance(self.policy, NumpySlatePolicy):  # a reranker (training.ml.rerankers)
            return np.asarray(self.policy.slate(world.recommender, ctx, k), np.int64)
        items, _ = self.policy.recommend(ctx, world.recommender, world.item_features.matrix, k=k)
        return np.asarray(items, np.int64)

    def sample(
        self, world: World, ctx: UserContext, k: int, rng: np.random.Generator, temperature: float = 1.0
    ):
        """A sampled list and its probability (Plackett-Luce over the reference's top 200 for the reference)."""
        if self.policy is not None:
            items, probs = self.policy.sample(
                ctx, world.recommender, world.item_features.matrix, k=k, rng=rng, temperature=temperature
            )
            return np.asarray(items, np.int64), float(np.prod(probs))
        cands = candidate_set(world.recommender, [ctx.history], 200)
        available = cands.valid[0].copy()
        chosen, logprob = [], 0.0
        for _ in range(min(k, int(available.sum()))):
            logp = ref_log_policy(cands.ref_scores[0], available, temperature)
            p = np.where(available, np.exp(logp), 0.0)
            pick = int(rng.choice(len(p), p=p / p.sum()))
            logprob += float(logp[pick])
            available[pick] = False
            chosen.append(int(cands.items[0, pick]))
        return np.asarray(chosen, np.int64), float(np.exp(logprob))


def kl_from_reference(
    policy: NumpySlatePolicy,
    world: World,
    users: Sequence[UserContext],
    *,
    k: int = 10,
    samples: int = 4,
    ref_temperature: float = 1.0,
    seed: int = 0,
) -> float:
    """Monte-Carlo KL(policy || reference) per slate, in nats: E_policy[log p_policy - log p_ref].

    The reference policy is the one PPO is regularised towards: softmax(ref_score / T) over the
    remaining candidates at each step. Q-learning is measured through its Boltzmann policy.
    """
    rng = np.random.default_rng(seed)
    estimates = []
    for ctx in users:
        cands = candidate_set(world.recommender, [ctx.history], policy.n_candidates)
        position = {int(item): c for c, item in enumerate(cands.items[0]) if cands.valid[0, c]}
        for _ in range(samples):
            items, probs = policy.sample(ctx, world.recommender, world.item_features.matrix, k=k, rng=rng)
            available = cands.valid[0].copy()
            ref_logprob = 0.0
            for item in items:
                logp = ref_log_policy(cands.ref_scores[0], available, ref_temperature)
                c = position[int(item)]
                ref_logprob += float(logp[c])
                available[c] = False
            estimates.append(float(np.sum(np.log(np.maximum(probs, 1e-30)))) - ref_logprob)
    return float(np.mean(estimates)) if estimates else 0.0


def bootstrap_win_rate(outcomes: Sequence[float], *, rounds: int = 1000, seed: int = 0) -> dict[str, float]:
    """Win rate (ties count 0.5) with a percentile bootstrap 95% interval."""
    summary = bootstrap_mean(outcomes, rounds=rounds, seed=seed)
    return {"win_rate": summary.pop("mean"), **summary}
