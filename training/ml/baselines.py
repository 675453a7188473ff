"""Non-neural reference policies: most-popular and EASE (Steck 2019), behind the serving interface."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from training.ml.data import History, Snapshot, temporal_split
from training.ml.evaluation import evaluate_model
from training.ml.scoring import Scorer, best_rated_recent

UNSCORED = np.float32(-1e9)  # score of movies EASE does not model: ranked after every modelled one


class Popularity(Scorer):
    """Recommends the movies most users rated, the same list for everyone."""

    kind = "popularity"

    def __init__(self, item_counts: np.ndarray) -> None:
        self.item_counts = np.asarray(item_counts, np.float32)
        self.n_items = len(self.item_counts)

    @classmethod
    def fit(cls, train: Snapshot) -> Popularity:
        return cls(train.item_counts())

    def score(self, history: History) -> np.ndarray:
        return self.item_counts.copy()

    def score_batch(self, histories: Sequence[History]) -> np.ndarray:
        return np.tile(self.item_counts, (len(histories), 1))

    def explain(self, history: History, item_idx: int) -> int:
        """Popularity has no per-movie reason; points at the user's best, most recent rating."""
        return best_rated_recent(history)

    def export_arrays(self) -> dict[str, np.ndarray]:
        return {"item_counts": self.item_counts}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Popularity:
        return cls(arrays["item_counts"])


@dataclass
class EASEConfig:
    """Hyperparameters of EASE."""

    l2: float = 500.0  # ridge penalty lambda on the item-item weights (used when no grid search)
    l2_grid: tuple[float, ...] = (50.0, 100.0, 250.0, 500.0, 1000.0)  # lambdas tried by tune_ease
    max_items: int = 20_000  # model only the most-rated items: the Gram inverse is O(n^3) time, O(n^2) memory
    min_count: int = 1  # items rated by fewer train users are not modelled (their scores are UNSCORED)
    min_rating: float = (
        4.0  # ratings below this are dropped from the binary input (Liang et al. / Steck keep 4+)
    )
    validation_holdout: float = 0.2  # fraction of each train user's latest ratings used to pick lambda
    max_validation_users: int = 5_000  # users scored per lambda (a random sample beyond this; 0 = all)


class EASE(Scorer):
    """Embarrassingly Shallow Autoencoder: ``scores = x @ B`` with a closed-form, zero-diagonal B.

    Only the ``max_items`` most-rated movies (``item_subset``) are modelled: with 20,000 items B
    is 1.6 GB of float32 and its inverse takes minutes, so on ml-25m's 62k movies the long tail
    is left out (those movies get ``UNSCORED``). The input is binary: a movie counts if the user
    rated it at least ``min_rating``.
    """

    kind = "ease"

    def __init__(self, weights: np.ndarray, item_subset: np.ndarray, n_items: int, min_rating: float):
        self.weights = np.asarray(weights, np.float32)
        self.item_subset = np.asarray(item_subset, np.int32)
        self.n_items = int(n_items)
        self.min_rating = float(min_rating)
        self.l2: float | None = None  # the ridge penalty, when known (set by ``fit``)
        self.position = np.full(self.n_items, -1, np.int32)
        self.position[self.item_subset] = np.arange(len(self.item_subset), dtype=np.int32)

    @classmethod
    def fit(cls, train: Snapshot, config: EASEConfig | None = None, l2: float | None = None) -> EASE:
        """Closed form ``B = I - P / diag(P)`` with ``P = (X^T X + lambda I)^-1`` (Steck 2019)."""
        config = config or EASEConfig()
        l2 = config.l2 if l2 is None else l2
        keep = train.rating >= config.min_rating
        counts = np.bincount(train.item_idx[keep], minlength=train.n_items)
        ranked = np.argsort(-counts, kind="stable")[: config.max_items]
        subset = np.sort(ranked[counts[ranked] >= max(config.min_count, 1)]).astype(np.int32)
        x = train.select(keep).csr("binary")[:, subset]
        gram = (x.T @ x).toarray().astype(np.float32)
        gram[np.diag_indices_from(gram)] += l2
        # Cholesky-based inverse of the SPD Gram matrix: ~4x faster than a general inverse.
        factor, info = scipy.linalg.lapack.spotrf(gram, lower=1, overwrite_a=1)
        if info != 0:
            raise np.linalg.LinAlgError(f"EASE Gram matrix is not positive definite (info={info})")
        precision, info = scipy.linalg.lapack.spotri(factor, lower=1, overwrite_c=1)
        precision = np.tril(precision) + np.tril(precision, -1).T
        weights = precision / -np.diag(precision)
        weights[np.diag_indices_from(weights)] = 0.0
        model = cls(weights, subset, train.n_items, config.min_rating)
        model.l2 = float(l2)
        return model

    def _input(self, history: History) -> np.ndarray:
        """Positions (in the modelled subset) of the rated movies that count as input."""
        rows = self.position[history.item_idx[history.ratings >= self.min_rating]]
        return rows[rows >= 0]

    def score(self, history: History) -> np.ndarray:
        scores = np.full(self.n_items, UNSCORED, np.float32)
        rows = self._input(history)
        scores[self.item_subset] = self.weights[rows].sum(axis=0) if len(rows) else 0.0
        return scores

    def explain(self, history: History, item_idx: int) -> int:
        """The rated movie with the largest weight ``B[rated, item]`` (its exact score contribution)."""
        rows = self._input(history)
        column = self.position[item_idx]
        if not len(rows) or column < 0:
            return best_rated_recent(history)
        return int(self.item_subset[rows[int(np.argmax(self.weights[rows, column]))]])

    def neighbours(self, m: int, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """Each movie's ``m`` largest weights by magnitude: ``(items, weights)``, ``[n_items, m]`` each.

        Row ``i`` holds the catalogue indices of the movies that rating ``i`` moves most (up or
        down) and ``B[i, those]``; a movie EASE does not model has zero weights. Negative weights
        are kept: pruning to the largest positive ones alone lost most of what the term adds
        (``docs/recommender.md``). Rows are ranked ``chunk`` at a time to bound memory.
        """
        m = max(1, min(int(m), len(self.item_subset)))
        items = np.zeros((self.n_items, m), np.int32)
        weights = np.zeros((self.n_items, m), np.float32)
        for begin in range(0, len(self.item_subset), chunk):
            block = self.weights[begin : begin + chunk]
            best = np.argpartition(-np.abs(block), m - 1, axis=1)[:, :m]
            rows = self.item_subset[begin : begin + chunk]
            items[rows] = self.item_subset[best]
            weights[rows] = np.take_along_axis(block, best, axis=1)
        return items, weights

    def export_arrays(self) -> dict[str, np.ndarray]:
        return {
            "weights": self.weights,
            "item_subset": self.item_subset,
            "n_items": np.asarray(self.n_items, np.int64),
            "min_rating": np.asarray(self.min_rating, np.float32),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> EASE:
        return cls(
            arrays["weights"], arrays["item_subset"], int(arrays["n_items"]), float(arrays["min_rating"])
        )


def tune_ease(
    train: Snapshot,
    config: EASEConfig | None = None,
    evaluate: Callable[[Scorer, object], float] | None = None,
) -> tuple[EASE, dict[float, float]]:
    """Pick lambda on a temporal validation split carved from ``train`` (never the test set).

    Each lambda in ``config.l2_grid`` is fitted on the validation-train part and scored with
    ``evaluate(model, split)`` (NDCG@10 by default) on at most ``config.max_validation_users``
    validation users; the best lambda is refitted on all of ``train``. Returns the model and the
    validation score of each lambda.
    """
    config = config or EASEConfig()
    # On ml-25m-sized data scoring every validation user is minutes per lambda; 5,000 users put
    # NDCG@10's standard error near 0.003 while keeping the search to seconds.
    validation = temporal_split(train, holdout=config.validation_holdout).sample_users(
        config.max_validation_users
    )
    if evaluate is None:

        def evaluate(model: Scorer, split: object) -> float:
            return evaluate_model(model, split, k_values=(10,))["ndcg@10"]

    scores = {l2: evaluate(EASE.fit(validation.train, config, l2=l2), validation) for l2 in config.l2_grid}
    best = max(scores, key=scores.get)
    return EASE.fit(train, config, l2=best), scores
