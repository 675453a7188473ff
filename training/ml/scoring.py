"""NumPy-only serving: every policy scores a user's history through the same small interface.

Nothing here (or in what it imports) loads TensorFlow: web workers and the RLHF loop score
with plain arrays exported from a trained model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from training.ml.data import History

N_RATING_LEVELS = 10  # half-star levels 0.5, 1.0, ..., 5.0


def rating_levels(ratings: np.ndarray) -> np.ndarray:
    """Index 0..9 of each half-star rating (0.5 -> 0, 5.0 -> 9); out-of-range values are clipped."""
    return np.clip(np.rint(np.asarray(ratings, np.float32) * 2) - 1, 0, N_RATING_LEVELS - 1).astype(np.int32)


def recency_ranks(timestamps: np.ndarray) -> np.ndarray:
    """How many of the user's ratings are strictly newer than each one (0 = among the latest)."""
    timestamps = np.asarray(timestamps, np.int64)
    ordered = np.sort(timestamps)
    return (len(ordered) - np.searchsorted(ordered, timestamps, side="right")).astype(np.float32)


def input_weights(history: History, rating_weights: np.ndarray, recency_half_life: float) -> np.ndarray:
    """Weight of each rated movie in the user's profile: rating level weight x recency decay.

    The decay halves every ``recency_half_life`` ratings back in the user's own timeline (counted
    in ratings, not seconds, so it behaves the same for binge raters and occasional ones); a
    non-positive or infinite half-life disables it. Training and serving share this function.
    """
    weights = np.asarray(rating_weights, np.float32)[rating_levels(history.ratings)]
    if np.isfinite(recency_half_life) and recency_half_life > 0:
        weights = weights * np.exp2(-recency_ranks(history.timestamps) / recency_half_life)
    return weights.astype(np.float32)


class Scorer:
    """Interface shared by every policy: scores for the whole catalogue from a user's history.

    Subclasses implement ``score``, ``explain``, ``export_arrays`` and ``from_arrays``; ``score``
    returns a fresh float32 array (callers may modify it) and never hides rated movies itself.
    """

    kind: ClassVar[str] = "scorer"
    n_items: int

    def score(self, history: History) -> np.ndarray:
        raise NotImplementedError

    def score_batch(self, histories: Sequence[History]) -> np.ndarray:
        """Scores for several users, ``[len(histories), n_items]``."""
        if not histories:
            return np.zeros((0, self.n_items), np.float32)
        return np.stack([self.score(h) for h in histories])

    def top_k(
        self, history: History, k: int = 10, exclude_rated: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k best catalogue indices, best first, and their scores."""
        scores = self.score(history)
        if exclude_rated and len(history):
            scores[history.item_idx] = -np.inf
        n_candidates = self.n_items - (len(np.unique(history.item_idx)) if exclude_rated else 0)
        k = max(0, min(k, n_candidates))
        if k == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        best = np.argpartition(scores, -k)[-k:]
        best = best[np.argsort(-scores[best], kind="stable")]
        return best, scores[best]

    def explain(self, history: History, item_idx: int) -> int:
        """Catalogue index of the rated movie that most supports recommending ``item_idx``."""
        raise NotImplementedError

    def explain_many(self, history: History, item_idx: np.ndarray) -> np.ndarray:
        """``explain`` for each of several recommended movies: int64 ``[len(item_idx)]``."""
        return np.fromiter((self.explain(history, int(i)) for i in item_idx), np.int64, len(item_idx))

    def export_arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Scorer:
        raise NotImplementedError


def best_rated_recent(history: History) -> int:
    """The user's highest-rated movie, the most recent among ties (a content-free explanation)."""
    if not len(history):
        raise ValueError("cannot explain a recommendation for an empty history")
    best = np.lexsort((history.timestamps, history.ratings))[-1]
    return int(history.item_idx[best])


class NumpyRecommender(Scorer):
    """The trained autoencoder recommender, evaluated with NumPy.

    The user is folded in at request time from the rated movies: with ``w`` from
    ``input_weights``, ``u = tanh(normalize(w) @ input_embeddings[rated] + encoder_bias)`` and
    scores are ``item_embeddings @ u + item_bias``. ``item_embeddings`` live in the same space as
    user embeddings, so they double as item features for the reward model and PPO.

    An optional item-item term adds, for every rated movie with at least ``neighbour_min_rating``
    stars, ``neighbour_weights[rated]`` to the scores of ``neighbour_items[rated]``: each movie's
    strongest EASE weights (``baselines.EASE.neighbours``), scaled at training time. Like the
    embedding part it is computed from the ratings at request time, so fold-in is unchanged.
    """

    kind = "recommender"
    ARRAY_NAMES = (
        "input_embeddings",
        "encoder_bias",
        "item_embeddings",
        "item_bias",
        "rating_weights",
        "recency_half_life",
    )
    OPTIONAL_ARRAY_NAMES = ("neighbour_items", "neighbour_weights", "neighbour_min_rating")

    def __init__(
        self,
        input_embeddings: np.ndarray,
        encoder_bias: np.ndarray,
        item_embeddings: np.ndarray,
        item_bias: np.ndarray,
        rating_weights: np.ndarray,
        recency_half_life: float,
        neighbour_items: np.ndarray | None = None,
        neighbour_weights: np.ndarray | None = None,
        neighbour_min_rating: float = 4.0,
    ) -> None:
        self.input_embeddings = np.asarray(input_embeddings, np.float32)
        self.encoder_bias = np.asarray(encoder_bias, np.float32)
        self.item_embeddings = np.asarray(item_embeddings, np.float32)
        self.item_bias = np.asarray(item_bias, np.float32)
        self.rating_weights = np.asarray(rating_weights, np.float32)
        self.recency_half_life = float(recency_half_life)
        self.n_items, self.dim = self.item_embeddings.shape
        if self.input_embeddings.shape != (self.n_items, self.dim) or self.item_bias.shape != (self.n_items,):
            raise ValueError("input embeddings, item embeddings and item bias disagree on their shapes")
        self.neighbour_items, self.neighbour_weights = _neighbour_arrays(
            neighbour_items, neighbour_weights, self.n_items
        )
        self.neighbour_min_rating = float(neighbour_min_rating)
        self._unit_items: np.ndarray | None = None
        # A [dim, n_items] copy: ``u @ it`` streams contiguous rows and is ~2x faster single-threaded
        # than ``item_embeddings @ u`` (the cost of top_k on big catalogues).
        self._scoring_matrix = np.ascontiguousarray(self.item_embeddings.T)

    def user_embedding(self, history: History) -> np.ndarray:
        """The folded-in user vector ``[dim]`` (the encoder's output for this history)."""
        weights = input_weights(history, self.rating_weights, self.recency_half_life)
        norm = float(np.sqrt(np.dot(weights, weights)))
        pooled = (weights / max(norm, 1e-12)) @ self.input_embeddings[history.item_idx]
        return np.tanh(pooled + self.encoder_bias)

    def item_item_scores(self, history: History) -> np.ndarray | None:
        """float32 [n_items]: the item-item term for this history, None when the model has none."""
        if self.neighbour_items is None:
            return None
        liked = history.item_idx[history.ratings >= self.neighbour_min_rating]
        return np.bincount(
            self.neighbour_items[liked].ravel(), self.neighbour_weights[liked].ravel(), minlength=self.n_items
        ).astype(np.float32)

    def score(self, history: History) -> np.ndarray:
        scores = self.user_embedding(history) @ self._scoring_matrix + self.item_bias
        term = self.item_item_scores(history)
        return scores if term is None else scores + term

    def score_batch(self, histories: Sequence[History]) -> np.ndarray:
        if not histories:
            return np.zeros((0, self.n_items), np.float32)
        users = np.stack([self.user_embedding(h) for h in histories])
        scores = users @ self._scoring_matrix + self.item_bias
        if self.neighbour_items is not None:
            for row, history in zip(scores, histories, strict=True):
                row += self.item_item_scores(history)
        return scores

    def explain(self, history: History, item_idx: int) -> int:
        """The liked movie that adds most to ``item_idx``'s item-item term, when one adds anything;
        otherwise the positively rated movie whose item embedding is most cosine-similar to its.

        "Positively" means rated at least 4, or the user's best rating when none is that high. The
        item-item term is a sum over liked movies, so its largest part names the movie that raised
        this one's score most; the embedding part mixes every rated movie and has no such part.
        """
        return int(self.explain_many(history, np.asarray([item_idx]))[0])

    def explain_many(self, history: History, item_idx: np.ndarray) -> np.ndarray:
        """``explain`` for several movies at once."""
        if not len(history):
            raise ValueError("cannot explain a recommendation for an empty history")
        item_idx = np.asarray(item_idx, np.int64)
        support = self.item_item_support(history, item_idx)
        reasons = np.full(len(item_idx), -1, np.int64) if support is None else support[1]
        by_embedding = reasons < 0  # the movies no liked movie's item-item weight speaks for
        if by_embedding.any():
            unit = self.unit_items()
            liked = history.ratings >= min(4.0, float(history.ratings.max()))
            candidates = history.item_idx[liked]
            similarity = unit[item_idx[by_embedding]] @ unit[candidates].T
            reasons[by_embedding] = candidates[np.argmax(similarity, axis=1)]
        return reasons

    def item_item_support(
        self, history: History, item_idx: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """For each of ``item_idx``: the largest single contribution a liked movie makes to its
        item-item term (0 when none is positive), and that movie (-1 when none is positive);
        float32 and int64 ``[len(item_idx)]``. None when the model has no item-item term."""
        if self.neighbour_items is None:
            return None
        givers = history.item_idx[history.ratings >= self.neighbour_min_rating]
        unique, inverse = np.unique(np.asarray(item_idx, np.int64), return_inverse=True)
        if not len(givers) or not len(unique):
            return np.zeros(len(inverse), np.float32), np.full(len(inverse), -1, np.int64)
        neighbours = self.neighbour_items[givers]
        wanted = np.zeros(self.n_items, bool)
        wanted[unique] = True
        giver, slot = np.divmod(np.flatnonzero(wanted[neighbours]), neighbours.shape[1])
        position = np.searchsorted(unique, neighbours[giver, slot])
        # contribution[u, g]: what liked movie g adds to movie unique[u] (a bincount sums, as the
        # term does, should a row list a movie twice)
        contribution = np.bincount(
            position * len(givers) + giver,
            self.neighbour_weights[givers[giver], slot],
            minlength=len(unique) * len(givers),
        ).reshape(len(unique), len(givers))
        best = np.argmax(contribution, axis=1)
        weight = np.maximum(contribution[np.arange(len(unique)), best], 0)
        supporter = np.where(weight > 0, givers[best], -1).astype(np.int64)
        return weight[inverse], supporter[inverse]

    def unit_items(self) -> np.ndarray:
        """float32 [n_items, dim]: the item embeddings scaled to unit length (computed once)."""
        if self._unit_items is None:
            norms = np.linalg.norm(self.item_embeddings, axis=1, keepdims=True)
            self._unit_items = self.item_embeddings / np.maximum(norms, 1e-12)
        return self._unit_items

    def similar_items(self, item_idx: int) -> np.ndarray:
        """float32 [n_items]: cosine similarity of every movie's item embedding to ``item_idx``'s."""
        unit = self.unit_items()
        return unit @ unit[int(item_idx)]

    def nearest_items(self, item_idx: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``(indices, cosines)`` of the ``n`` movies most similar to ``item_idx`` (not itself), unordered."""
        similarity = self.similar_items(item_idx)
        similarity[int(item_idx)] = -np.inf
        n = min(int(n), self.n_items - 1)
        if n <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        nearest = np.argpartition(-similarity, n - 1)[:n]
        return nearest, similarity[nearest]

    def export_arrays(self) -> dict[str, np.ndarray]:
        return {
            "input_embeddings": self.input_embeddings,
            "encoder_bias": self.encoder_bias,
            "item_embeddings": self.item_embeddings,
            "item_bias": self.item_bias,
            "rating_weights": self.rating_weights,
            "recency_half_life": np.asarray(self.recency_half_life, np.float32),
        } | self._neighbour_export()

    def _neighbour_export(self) -> dict[str, np.ndarray]:
        if self.neighbour_items is None:
            return {}
        return {
            "neighbour_items": self.neighbour_items,
            "neighbour_weights": self.neighbour_weights,
            "neighbour_min_rating": np.asarray(self.neighbour_min_rating, np.float32),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> NumpyRecommender:
        """Rebuild from ``export_arrays``; artifacts written before the item-item term have none."""
        optional = {name: arrays[name] for name in cls.OPTIONAL_ARRAY_NAMES if name in arrays}
        if "neighbour_min_rating" in optional:
            optional["neighbour_min_rating"] = float(optional["neighbour_min_rating"])
        return cls(**{name: arrays[name] for name in cls.ARRAY_NAMES}, **optional)


def _neighbour_arrays(
    items: np.ndarray | None, weights: np.ndarray | None, n_items: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Checked ``(neighbour_items, neighbour_weights)``: both absent, or ``[n_items, m]`` each."""
    if items is None and weights is None:
        return None, None
    if items is None or weights is None:
        raise ValueError("neighbour items and neighbour weights come together")
    items = np.asarray(items)
    weights = np.asarray(weights, np.float32)
    if items.ndim != 2 or items.shape[0] != n_items or weights.shape != items.shape:
        raise ValueError(
            f"neighbour arrays must both be [{n_items}, m]; got {items.shape} and {weights.shape}"
        )
    if not np.issubdtype(items.dtype, np.integer) or (
        items.size and not 0 <= items.min() <= items.max() < n_items
    ):
        raise ValueError("neighbour items must be catalogue indices")
    return items.astype(np.int32, copy=False), weights
