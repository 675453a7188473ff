"""Serving adapters for the policies over the reference recommender: the Scorer interface over a
PPO or Q-learning NumpySlatePolicy, and over the reranker baselines (quality_rerank, rm_rerank, best_of_n, mmr, rm_greedy, rm_mmr)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from training.ml.artifacts import ArtifactError, load_artifact
from training.ml.data import History
from training.ml.policy import NumpySlatePolicy
from training.ml.rerankers import RERANKER_KINDS, reranker_from_export
from training.ml.user_features import UserContext

# The model store's loader of a recommender version by id (a ``LoadedModel``, or None if unavailable).
ReferenceLoader = Callable[[int | None], Any]


class SlatePolicyScorer:
    """A trained slate policy served like any scorer: greedy lists over the reference's candidates."""

    def __init__(
        self, *, policy: NumpySlatePolicy, kind: str, reference, item_features: np.ndarray, signal_dim: int
    ):
        self.policy = policy
        self.kind = kind
        self.reference = reference
        self.item_features = np.asarray(item_features, np.float32)
        self.signal_dim = signal_dim
        self.n_items = reference.n_items

    def context(self, history: History, signals: np.ndarray | None = None) -> UserContext:
        vector = np.zeros(self.signal_dim, np.float32) if signals is None else np.asarray(signals, np.float32)
        return UserContext(history=history, embedding=self.reference.user_embedding(history), signals=vector)

    def top_k(
        self,
        history: History,
        k: int = 10,
        exclude_rated: bool = True,
        signals: np.ndarray | None = None,
        key=None,
    ) -> tuple[np.ndarray, np.ndarray]:
        items, scores = self.policy.recommend(
            self.context(history, signals), self.reference, self.item_features, k=k
        )
        return np.asarray(items, np.int64), np.asarray(scores, np.float32)

    def sample(
        self, history: History, k: int, rng: np.random.Generator, signals=None, temperature: float = 1.0
    ):
        items, probs = self.policy.sample(
            self.context(history, signals),
            self.reference,
            self.item_features,
            k=k,
            rng=rng,
            temperature=temperature,
        )
        return np.asarray(items, np.int64), float(np.prod(probs))

    def score(self, history: History) -> np.ndarray:
        """Catalogue-wide scores: the greedy slate's step scores, ranked first; everything else -inf."""
        items, _ = self.top_k(history, k=self.policy.slate_size)
        full = np.full(self.n_items, -np.inf, np.float32)
        full[items] = len(items) - np.arange(len(items), dtype=np.float32)
        return full

    def explain(self, history: History, item_idx: int) -> int:
        return self.reference.explain(history, item_idx)

    def explain_many(self, history: History, item_idx: np.ndarray) -> np.ndarray:
        return self.reference.explain_many(history, item_idx)


def _reference(path: Path, meta: dict, item_ids: np.ndarray, reference_version: ReferenceLoader):
    """The loaded recommender version a policy artifact was built over; its catalogue must match."""
    reference = reference_version(meta.get("base_version_id"))
    if reference is None:
        raise ArtifactError(
            f"{path}: its reference recommender (version id {meta.get('base_version_id')}) is unavailable"
        )
    if len(item_ids) != len(reference.item_ids) or not np.array_equal(item_ids, reference.item_ids):
        raise ArtifactError(f"{path}: catalogue does not match its reference recommender")
    return reference


def load_slate_policy(path: Path, algorithm: str, *, reference_version: ReferenceLoader):
    """Load a PPO or Q-learning artifact with the recommender version it was trained against
    (``reference_version``: the model store's loader of a version by id)."""
    arrays, meta = load_artifact(path)
    if meta.get("kind") != algorithm or "item_ids" not in arrays or "item_features" not in arrays:
        raise ArtifactError(f"{path} is not a {algorithm} policy artifact")
    item_ids = np.asarray(arrays.pop("item_ids"))
    reference = _reference(path, meta, item_ids, reference_version)
    item_features = arrays.pop("item_features")
    policy = NumpySlatePolicy.from_arrays(arrays, kind=algorithm)
    scorer = SlatePolicyScorer(
        policy=policy,
        kind=algorithm,
        reference=reference.scorer,
        item_features=item_features,
        signal_dim=int(meta.get("signal_dim", 0)),
    )
    return scorer, item_ids, meta


class RerankerScorer:
    """A reranker baseline served like any scorer: its list over the reference recommender's top movies.

    The list's scores are its ranks (k for the first movie down to 1): a reranker orders movies, it
    does not score the catalogue. ``key`` (the rater id) fixes best-of-n's samples per user, as in
    the gate, so a user gets the same list on every request.
    """

    def __init__(self, *, reranker, reference, signal_dim: int):
        self.reranker = reranker
        self.kind = reranker.kind
        self.reference = reference
        self.signal_dim = signal_dim
        self.n_items = reference.n_items

    def context(self, history: History, signals: np.ndarray | None = None, key=None) -> UserContext:
        vector = np.zeros(self.signal_dim, np.float32) if signals is None else np.asarray(signals, np.float32)
        return UserContext(
            history=history, embedding=self.reference.user_embedding(history), signals=vector, key=key
        )

    def top_k(
        self,
        history: History,
        k: int = 10,
        exclude_rated: bool = True,
        signals: np.ndarray | None = None,
        key=None,
    ) -> tuple[np.ndarray, np.ndarray]:
        reranker = self.reranker
        if k > reranker.n_candidates:  # a longer list than the gate judged: rerank more candidates
            reranker = replace(reranker, n_candidates=k)
        items = np.asarray(reranker.slate(self.reference, self.context(history, signals, key), k), np.int64)
        return items, (len(items) - np.arange(len(items))).astype(np.float32)

    def score(self, history: History) -> np.ndarray:
        """Catalogue-wide scores: the list's ranks first; everything else -inf."""
        items, ranks = self.top_k(history, k=10)
        full = np.full(self.n_items, -np.inf, np.float32)
        full[items] = ranks
        return full

    def explain(self, history: History, item_idx: int) -> int:
        return self.reference.explain(history, item_idx)

    def explain_many(self, history: History, item_idx: np.ndarray) -> np.ndarray:
        return self.reference.explain_many(history, item_idx)


def load_reranker(path: Path, algorithm: str, *, reference_version: ReferenceLoader):
    """Load a reranker artifact (``training.ml.rerankers.reranker_export``) over its recommender version
    (``reference_version``: the model store's loader of a version by id)."""
    arrays, meta = load_artifact(path)
    if algorithm not in RERANKER_KINDS or meta.get("kind") != algorithm or "item_ids" not in arrays:
        raise ArtifactError(f"{path} is not a {algorithm} artifact")
    item_ids = np.asarray(arrays.pop("item_ids"))
    reference = _reference(path, meta, item_ids, reference_version)
    try:
        reranker = reranker_from_export(arrays, meta)
    except (KeyError, ValueError) as error:
        raise ArtifactError(f"{path} cannot be rebuilt as a {algorithm} reranker: {error}") from error
    signal_dim = int(meta.get("signal_dim", 0))
    return (
        RerankerScorer(reranker=reranker, reference=reference.scorer, signal_dim=signal_dim),
        item_ids,
        meta,
    )
