"""Simple rerankers of the recommender's top candidates: the baselines every RLHF policy must beat.

Each re-sorts (or re-samples) the reference recommender's top ``n_candidates`` unrated movies:

- ``QualityRerank``: z(recommender score) + a * z(movie's shrunk mean rating). Uses **no feedback**:
  only the ratings the recommender was trained on. A judge that likes well-rated movies rewards
  any shift towards them; this baseline measures how much of a policy's gain is that shift.
- ``RewardRerank`` (``rm_rerank``): z(recommender score) + b * z(reward model's score of the movie).
- ``BestOfN`` (``best_of_n``): n lists sampled from the reference policy PPO is held to
  (Plackett-Luce over softmax(score / T)), the one the reward model scores best. Its KL from the
  reference is at most ``log n - (n - 1) / n`` nats (Stiennon et al. 2020), the standard point of
  comparison for PPO at equal KL (Gao, Schulman and Hilton 2023).

Two more build the list slot by slot (issue 15), so a movie's worth can depend on what is already in
the list:

- ``MMRRerank`` (``mmr``): maximal marginal relevance, lambda * z(recommender score) - (1 - lambda) *
  the candidate's highest similarity to a movie already chosen (same franchise: 1; otherwise the
  Jaccard overlap of their genres). Uses **no feedback**.
- ``RewardGreedy`` (``rm_greedy``): at each slot the candidate maximising z(recommender score) + b *
  z(the reward model's score of the list with it added): greedy construction under a set-aware
  reward model.

All five have the ``slate(recommender, ctx, k)`` method of a policy and are deterministic for a
given user context, so they can be served, evaluated and gated like PPO and Q-learning.
"""

from __future__ import annotations

import zlib
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.ml.algorithms import RERANKERS
from training.ml.env import ReferenceRecommender, RewardModel

RERANKER_KINDS = RERANKERS  # all of them: the product serves each, as the experiment compares them


def zscore(values: np.ndarray) -> np.ndarray:
    """(x - mean) / std over one user's candidates; all zeros when they are all equal."""
    values = np.asarray(values, np.float64)
    std = values.std()
    return (values - values.mean()) / std if std > 1e-12 else np.zeros_like(values)


def shrunk_mean_ratings(
    item_idx: np.ndarray, ratings: np.ndarray, n_items: int, pseudo_ratings: float = 5.0
) -> np.ndarray:
    """float64 [n_items]: each movie's mean rating shrunk towards the global mean with pseudo-ratings.

    ``(sum + pseudo * global_mean) / (count + pseudo)``: a movie rated 5.0 once does not outrank one
    rated 4.5 by a hundred people. Unrated movies get the global mean.
    """
    item_idx = np.asarray(item_idx, np.int64)
    ratings = np.asarray(ratings, np.float64)
    global_mean = float(ratings.mean()) if len(ratings) else 0.0
    total = np.bincount(item_idx, weights=ratings, minlength=n_items)
    count = np.bincount(item_idx, minlength=n_items)
    return (total + pseudo_ratings * global_mean) / (count + pseudo_ratings)


def _candidates(recommender: ReferenceRecommender, ctx: Any, n_candidates: int):
    items, scores = recommender.top_k(ctx.history, n_candidates, exclude_rated=True)
    return np.asarray(items, np.int64), np.asarray(scores, np.float64)


def _sorted_by(items: np.ndarray, combined: np.ndarray, k: int) -> np.ndarray:
    order = np.argsort(-combined, kind="stable")  # ties keep the recommender's order
    return items[order[:k]]


@dataclass
class QualityRerank:
    """z(recommender score) + weight * z(shrunk mean rating) over the top candidates; no feedback."""

    item_quality: np.ndarray  # float [n_items]: shrunk mean rating of each movie (``shrunk_mean_ratings``)
    weight: float = 0.25  # a: how much the movie's rating counts beside the recommender's score
    n_candidates: int = 50  # the recommender's top-C unrated movies that are re-sorted
    kind: str = "quality_rerank"

    def scores(self, recommender: ReferenceRecommender, ctx: Any) -> tuple[np.ndarray, np.ndarray]:
        """(candidate items, combined scores) for one user."""
        items, ref = _candidates(recommender, ctx, self.n_candidates)
        return items, zscore(ref) + self.weight * zscore(self.item_quality[items])

    def slate(self, recommender: ReferenceRecommender, ctx: Any, k: int) -> np.ndarray:
        items, combined = self.scores(recommender, ctx)
        return _sorted_by(items, combined, k)


@dataclass
class RewardRerank:
    """z(recommender score) + weight * z(reward model's movie score) over the top candidates."""

    reward_model: Any  # NumpyRewardModel: ``item_rewards(ctx, items)``
    weight: float = 0.5  # b: how much the reward model counts beside the recommender's score
    n_candidates: int = 50
    kind: str = "rm_rerank"

    def scores(self, recommender: ReferenceRecommender, ctx: Any) -> tuple[np.ndarray, np.ndarray]:
        items, ref = _candidates(recommender, ctx, self.n_candidates)
        rewards = np.asarray(self.reward_model.item_rewards(ctx, items), np.float64)
        return items, zscore(ref) + self.weight * zscore(rewards)

    def slate(self, recommender: ReferenceRecommender, ctx: Any, k: int) -> np.ndarray:
        items, combined = self.scores(recommender, ctx)
        return _sorted_by(items, combined, k)


@dataclass
class MMRRerank:
    """Maximal marginal relevance over the top candidates: relevance against similarity; no feedback."""

    attributes: Any  # norms.ListAttributes: genres and franchises of every movie
    weight: float = 0.8  # lambda: 1 is the recommender's own order, lower trades relevance for variety
    n_candidates: int = 50
    kind: str = "mmr"

    def similarity(self, items: np.ndarray) -> np.ndarray:
        """float64 [n, n]: 1 for the same franchise, else the Jaccard overlap of the genre sets."""
        genre = (self.attributes.genre[items] > 0.5).astype(np.float64)
        shared = genre @ genre.T
        union = genre.sum(axis=1)[:, None] + genre.sum(axis=1)[None, :] - shared
        jaccard = np.where(union > 0, shared / np.maximum(union, 1.0), 0.0)
        franchise = self.attributes.franchise[items]
        same = (franchise[:, None] == franchise[None, :]) & (franchise[:, None] >= 0)
        return np.where(same, 1.0, jaccard)

    def slate(self, recommender: ReferenceRecommender, ctx: Any, k: int) -> np.ndarray:
        items, ref = _candidates(recommender, ctx, self.n_candidates)
        relevance, similarity = zscore(ref), self.similarity(items)
        chosen: list[int] = []
        closest = np.zeros(len(items))  # each candidate's highest similarity to a chosen movie
        available = np.ones(len(items), bool)
        for _ in range(min(k, len(items))):
            gain = self.weight * relevance - (1.0 - self.weight) * closest
            j = int(np.argmax(np.where(available, gain, -np.inf)))
            chosen.append(j)
            available[j] = False
            closest = np.maximum(closest, similarity[j])
        return items[chosen]


@dataclass
class RewardGreedy:
    """The list built slot by slot, each time the candidate that most raises the reward model's score."""

    reward_model: Any  # NumpyRewardModel (set-aware or not): ``list_scores(ctx, slates)``
    weight: float = 1.0  # b: how much the reward model's list score counts beside the recommender's
    n_candidates: int = 50
    kind: str = "rm_greedy"

    def slate(self, recommender: ReferenceRecommender, ctx: Any, k: int) -> np.ndarray:
        items, ref = _candidates(recommender, ctx, self.n_candidates)
        relevance = zscore(ref)
        chosen: list[int] = []
        available = np.ones(len(items), bool)
        for _ in range(min(k, len(items))):
            rest = np.flatnonzero(available)
            slates = np.column_stack([np.tile(items[chosen], (len(rest), 1)), items[rest]])
            scores = np.asarray(self.reward_model.list_scores(ctx, slates), np.float64)
            j = int(rest[np.argmax(relevance[rest] + self.weight * zscore(scores))])
            chosen.append(j)
            available[j] = False
        return items[chosen]


@dataclass
class RewardMMR:
    """MMR with the reward model's say added: at each slot the candidate maximising the MMR gain
    (lambda * z(recommender score) - (1 - lambda) * highest similarity to a chosen movie) + b *
    z(the reward model's score of the list with it added). b = 0 is ``MMRRerank`` itself, so the
    feedback is added on top of the best no-feedback list builder rather than in place of it."""

    reward_model: Any  # NumpyRewardModel (set-aware or not): ``list_scores(ctx, slates)``
    attributes: Any  # norms.ListAttributes, as MMRRerank's
    diversity: float = 0.5  # lambda, MMR's own (chosen for ``mmr`` first)
    weight: float = 1.0  # b: how much the reward model's list score counts
    n_candidates: int = 50
    kind: str = "rm_mmr"

    def slate(self, recommender: ReferenceRecommender, ctx: Any, k: int) -> np.ndarray:
        items, ref = _candidates(recommender, ctx, self.n_candidates)
        relevance = zscore(ref)
        similarity = MMRRerank(self.attributes).similarity(items)
        chosen: list[int] = []
        closest = np.zeros(len(items))
        available = np.ones(len(items), bool)
        for _ in range(min(k, len(items))):
            rest = np.flatnonzero(available)
            gain = self.diversity * relevance[rest] - (1.0 - self.diversity) * closest[rest]
            if self.weight:
                slates = np.column_stack([np.tile(items[chosen], (len(rest), 1)), items[rest]])
                scores = np.asarray(self.reward_model.list_scores(ctx, slates), np.float64)
                gain = gain + self.weight * zscore(scores)
            j = int(rest[np.argmax(gain)])
            chosen.append(j)
            available[j] = False
            closest = np.maximum(closest, similarity[j])
        return items[chosen]


def user_seed(seed: int, key: Hashable) -> np.random.Generator:
    """A generator fixed by (seed, user key): the same user gets the same samples every time."""
    return np.random.default_rng([seed, zlib.crc32(repr(key).encode())])


def sample_lists(
    ref_scores: np.ndarray, k: int, n: int, temperature: float, rng: np.random.Generator
) -> np.ndarray:
    """int [n, k]: n Plackett-Luce samples (positions into ``ref_scores``) of softmax(score / T).

    Gumbel top-k: sorting score / T + Gumbel noise draws a list without replacement with exactly the
    sequential softmax probabilities the reference policy (``env.ref_log_policy``) assigns.
    """
    logits = np.asarray(ref_scores, np.float64) / temperature
    perturbed = logits[None, :] + rng.gumbel(size=(n, len(logits)))
    k = min(k, len(logits))
    top = np.argpartition(-perturbed, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(perturbed, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def best_of_n_kl(n: int) -> float:
    """KL(best-of-n || reference) in nats for a reward without ties: log n - (n - 1) / n."""
    return float(np.log(n) - (n - 1) / n)


@dataclass
class BestOfN:
    """Of n lists sampled from the reference policy, the one the reward model scores best."""

    reward_model: RewardModel
    n: int = 32  # lists sampled per user (4 to 64)
    temperature: float = 0.31  # the reference policy's temperature (PPO's ``ref_temperature``)
    n_candidates: int = 50
    seed: int = 0  # with the user's key, fixes the samples: a user's list does not change per request
    kind: str = "best_of_n"

    def slate(self, recommender: ReferenceRecommender, ctx: Any, k: int) -> np.ndarray:
        items, ref = _candidates(recommender, ctx, self.n_candidates)
        if len(items) <= k:
            return items
        positions = sample_lists(ref, k, self.n, self.temperature, user_seed(self.seed, ctx.key))
        slates = items[positions]
        scores = np.asarray(self.reward_model.list_scores(ctx, slates), np.float64)
        return slates[int(np.argmax(scores))]

    @property
    def kl(self) -> float:
        return best_of_n_kl(self.n)


Reranker = QualityRerank | RewardRerank | BestOfN | MMRRerank | RewardGreedy | RewardMMR


def reranker_export(reranker: Reranker) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, manifest meta) of a reranker, for ``artifacts.write_artifact``; numpy and JSON only.

    ``quality_rerank`` keeps the shrunk mean ratings; ``mmr`` the movies' genres, decades and
    franchises (``norms.ListAttributes``) under ``set/``; ``rm_rerank``, ``best_of_n`` and
    ``rm_greedy`` keep the reward model's arrays (``NumpyRewardModel.export_arrays``) under ``reward/``;
    ``rm_mmr`` keeps both.
    """
    meta: dict[str, Any] = {"kind": reranker.kind, "n_candidates": int(reranker.n_candidates)}
    if isinstance(reranker, QualityRerank):
        return {"item_quality": np.asarray(reranker.item_quality, np.float64)}, {
            **meta,
            "weight": float(reranker.weight),
        }
    if isinstance(reranker, MMRRerank):
        return reranker.attributes.to_arrays("set/"), {**meta, "weight": float(reranker.weight)}
    arrays = {f"reward/{key}": value for key, value in reranker.reward_model.export_arrays().items()}
    if isinstance(reranker, RewardMMR):
        arrays |= reranker.attributes.to_arrays("set/")
        return arrays, {**meta, "weight": float(reranker.weight), "diversity": float(reranker.diversity)}
    if isinstance(reranker, RewardRerank | RewardGreedy):
        return arrays, {**meta, "weight": float(reranker.weight)}
    return arrays, {
        **meta,
        "n": int(reranker.n),
        "temperature": float(reranker.temperature),
        "seed": int(reranker.seed),
    }


def reranker_from_export(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Reranker:
    """The reranker ``reranker_export`` wrote; KeyError or ValueError when something is missing."""
    kind, n_candidates = meta["kind"], int(meta["n_candidates"])
    if kind == "quality_rerank":
        return QualityRerank(np.asarray(arrays["item_quality"]), float(meta["weight"]), n_candidates)
    # Imported on use: the web process loads these modules only to serve the rerankers that need them.
    if kind == "mmr":
        from training.ml.norms import ListAttributes

        return MMRRerank(ListAttributes.from_arrays(arrays, "set/"), float(meta["weight"]), n_candidates)
    if kind not in ("rm_rerank", "best_of_n", "rm_greedy", "rm_mmr"):
        raise ValueError(f"{kind!r} is not a reranker")
    from training.ml.reward_model import NumpyRewardModel

    prefix = "reward/"
    reward_model = NumpyRewardModel.from_arrays(
        {key[len(prefix) :]: value for key, value in arrays.items() if key.startswith(prefix)}
    )
    if kind == "rm_rerank":
        return RewardRerank(reward_model, float(meta["weight"]), n_candidates)
    if kind == "rm_greedy":
        return RewardGreedy(reward_model, float(meta["weight"]), n_candidates)
    if kind == "rm_mmr":
        from training.ml.norms import ListAttributes

        attributes = ListAttributes.from_arrays(arrays, "set/")
        return RewardMMR(
            reward_model, attributes, float(meta["diversity"]), float(meta["weight"]), n_candidates
        )
    return BestOfN(reward_model, int(meta["n"]), float(meta["temperature"]), n_candidates, int(meta["seed"]))
