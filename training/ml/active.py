"""Active comparisons: which pair of lists the reward model is least sure about, and a share kept random.

Uncertainty comes from a last-layer Laplace posterior of the trained reward model (MacKay 1992;
Daxberger et al. 2021, "Laplace Redux"). The list score is linear in three groups of weights:

- ``head/kernel``: the MLP's output layer, over the last hidden layer's activations h(u, i);
- ``item_linear/kernel``: the movie-quality term, over the standardised movie features x_i;
- ``set/weights`` (set-aware models only): over the list's ``SET_TERMS``.

So the score of list L is ``theta . f(L)`` plus terms that do not move with theta, with
``f(L) = [sum_p w_p h(u, i_p), sum_p w_p x_{i_p}, set_terms(L)]`` (``w_p`` the DCG position
weights). Holding the rest of the network at its trained values, the Bradley-Terry likelihood of
the training comparisons is a logistic regression in theta; its Laplace posterior is Gaussian
with precision ``prior_precision * I + sum_n weight_n p_n (1 - p_n) g_n g_n^T``, ``g_n`` the
feature difference of comparison n and ``p_n`` its fitted probability. (``worst_item`` moves with
the head weights too; it is treated as a fixed feature, the usual last-layer simplification.)
Fitting it is one pass over the training comparisons in NumPy, milliseconds on top of training.

For a candidate pair the score difference d is then Gaussian, ``N(mu, g^T Sigma g)``, and the
disagreement is BALD, the mutual information between the label and the weights (Houlsby et al.
2011): ``H(E[p]) - E[H(p)]`` with ``p = sigmoid(d)``, the expectation over d by Gauss-Hermite
quadrature. The same function scores an ensemble: each member's P(first list preferred) is a
node with equal weight. BALD is high where the models disagree, and low where they agree that a
pair is a coin flip (noise no label can remove), which plain entropy would pick.

``select_pairs`` draws the random share first, uniformly from the whole pool, so the pairs marked
random are an unbiased sample of it; the rest are the highest-disagreement pairs left.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from training.ml.reward_model import (
    NumpyRewardModel,
    UserPart,
    as_comparison,
    position_weights,
)
from training.ml.user_features import UserContext, user_vector

POSTERIOR_KEYS = ("posterior/covariance", "posterior/prior_precision", "posterior/n_comparisons")
QUADRATURE_NODES = 20  # Gauss-Hermite nodes for E over d ~ N(mu, var): exact to ~1e-6 for a sigmoid


@dataclass
class PosteriorConfig:
    """Hyperparameters of the last-layer Laplace posterior."""

    prior_precision: float = 1.0  # Gaussian prior on the last-layer weights; larger = less posterior
    # spread before any data. Only the ranking of pairs uses it; 1.0 leaves the data's curvature in charge
    # after a few hundred comparisons (feature differences are O(0.1-1)).


def _entropy(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return -(p * np.log(p) + (1 - p) * np.log(1 - p))


def mutual_information(probabilities: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """BALD [n]: H(mean p) - mean H(p) over the columns of ``probabilities`` [n, M].

    Columns are ensemble members (equal weights) or quadrature nodes (their weights, summing to 1).
    Zero when every column agrees; at most log 2.
    """
    probabilities = np.atleast_2d(np.asarray(probabilities, np.float64))
    m = probabilities.shape[1]
    weights = np.full(m, 1.0 / m) if weights is None else np.asarray(weights, np.float64)
    mean = probabilities @ weights
    return np.maximum(_entropy(mean) - _entropy(probabilities) @ weights, 0.0)


def preference_variance(probabilities: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """[n]: variance across the columns of P(first list preferred): the plainer disagreement."""
    probabilities = np.atleast_2d(np.asarray(probabilities, np.float64))
    m = probabilities.shape[1]
    weights = np.full(m, 1.0 / m) if weights is None else np.asarray(weights, np.float64)
    mean = probabilities @ weights
    return np.square(probabilities - mean[:, None]) @ weights


def gaussian_probabilities(mean: np.ndarray, variance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P [n, nodes], weights [nodes]): sigmoid(d) at Gauss-Hermite nodes of d ~ N(mean, variance)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(QUADRATURE_NODES)
    weights = weights / weights.sum()
    d = np.asarray(mean, np.float64)[:, None] + np.sqrt(np.maximum(variance, 0.0))[:, None] * nodes[None]
    return 1.0 / (1.0 + np.exp(-d)), weights


def ensemble_disagreement(member_probabilities: np.ndarray) -> np.ndarray:
    """BALD [n] of an ensemble's P(first list preferred) [n, members]."""
    return mutual_information(member_probabilities)


# --- The last-layer posterior of a reward model ----------------------------------------------------


def has_posterior(model_or_arrays: NumpyRewardModel | Mapping[str, np.ndarray]) -> bool:
    arrays = (
        model_or_arrays.export_arrays() if isinstance(model_or_arrays, NumpyRewardModel) else model_or_arrays
    )
    return "posterior/covariance" in arrays


def list_features(model: NumpyRewardModel, ctx: UserContext, slates: np.ndarray) -> np.ndarray:
    """float64 [n, P]: f(L) of each slate [n, k] (no padding), the last-layer features."""
    slates = np.atleast_2d(np.asarray(slates, np.int64))
    items, inverse = np.unique(slates, return_inverse=True)
    inverse = inverse.reshape(slates.shape)
    user = user_vector(ctx, model.item_features) / model.user_scale
    hidden = np.maximum(model.item_hidden[items] + (user @ model.user_kernel + model.first_bias), 0.0)
    for kernel, bias in model.hidden:
        hidden = np.maximum(hidden @ kernel + bias, 0.0)
    weights = position_weights(slates.shape[1]).astype(np.float64)
    parts = [
        np.einsum("nkh,k->nh", hidden[inverse].astype(np.float64), weights),
        np.einsum("nkx,k->nx", model.item_x[items][inverse].astype(np.float64), weights),
    ]
    if model.set_weights is not None:
        rewards = np.zeros(model.n_items, np.float32)
        rewards[items] = model._all_item_rewards(ctx, items)
        parts.append(model.set_terms(rewards, slates))
    return np.concatenate(parts, axis=1)


def _pair_arrays(
    model: NumpyRewardModel, ctx: UserContext, slates_a: np.ndarray, slates_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(mu [n], g [n, P]): the MAP score difference a - b and its feature difference."""
    slates_a, slates_b = np.atleast_2d(slates_a), np.atleast_2d(slates_b)
    both = np.concatenate([slates_a, slates_b]) if slates_a.shape[1] == slates_b.shape[1] else None
    if both is not None:
        features = list_features(model, ctx, both)
        n = len(slates_a)
        g = features[:n] - features[n:]
    else:
        g = list_features(model, ctx, slates_a) - list_features(model, ctx, slates_b)
    items = np.unique(np.concatenate([slates_a.ravel(), slates_b.ravel()]))
    part = UserPart(np.zeros(model.n_items, np.float32))
    part.rewards[items] = model._all_item_rewards(ctx, items)
    mu = model.list_scores(part, slates_a).astype(np.float64) - model.list_scores(part, slates_b)
    return mu, g


def fit_posterior(
    model: NumpyRewardModel,
    comparisons: Sequence,
    contexts: Mapping,
    config: PosteriorConfig | None = None,
) -> dict[str, np.ndarray]:
    """The ``posterior/*`` arrays for ``model`` from the comparisons it was trained on."""
    config = config or PosteriorConfig()
    rows = [as_comparison(c) for c in comparisons]
    size = _feature_size(model)
    precision = config.prior_precision * np.eye(size)
    for row in rows:
        mu, g = _pair_arrays(model, contexts[row.user], row.slate_a, row.slate_b)
        p = 1.0 / (1.0 + np.exp(-mu[0]))  # the curvature p(1 - p) is the same for either label
        precision += row.weight * p * (1 - p) * np.outer(g[0], g[0])
    covariance = np.linalg.inv(precision)
    return {
        "posterior/covariance": ((covariance + covariance.T) / 2).astype(np.float64),
        "posterior/prior_precision": np.asarray(config.prior_precision, np.float64),
        "posterior/n_comparisons": np.asarray(len(rows), np.int64),
    }


def _feature_size(model: NumpyRewardModel) -> int:
    size = len(model.head_kernel) + len(model.item_linear)
    return size + (len(model.set_weights) if model.set_weights is not None else 0)


class PosteriorRewardModel:
    """A reward model with its last-layer posterior: P(first list preferred) and its disagreement."""

    def __init__(self, model: NumpyRewardModel) -> None:
        arrays = model.export_arrays()
        if not has_posterior(arrays):
            raise ValueError("this reward model has no posterior/* arrays")
        self.model = model
        self.covariance = np.asarray(arrays["posterior/covariance"], np.float64)
        if self.covariance.shape != (_feature_size(model),) * 2:
            raise ValueError(f"posterior covariance {self.covariance.shape} does not fit the model")

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> PosteriorRewardModel:
        return cls(NumpyRewardModel.from_arrays(arrays))

    def difference(
        self, ctx: UserContext, slates_a: np.ndarray, slates_b: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(mean [n], variance [n]) of the score difference a - b under the posterior."""
        mu, g = _pair_arrays(self.model, ctx, slates_a, slates_b)
        variance = np.einsum("np,pq,nq->n", g, self.covariance, g)
        return mu, variance

    def disagreement(self, ctx: UserContext, slates_a: np.ndarray, slates_b: np.ndarray) -> np.ndarray:
        """BALD [n] of each pair (a_j, b_j) for this user."""
        mu, variance = self.difference(ctx, slates_a, slates_b)
        probabilities, weights = gaussian_probabilities(mu, variance)
        return mutual_information(probabilities, weights)


# --- Choosing pairs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """Which candidates to label: pool indices, and whether each was chosen actively."""

    index: np.ndarray  # int [n] positions in the candidate pool
    active: np.ndarray  # bool [n] True: chosen for its disagreement; False: drawn uniformly at random


def select_pairs(
    candidates: Sequence | int,
    scores: np.ndarray,
    n: int,
    active_share: float,
    rng: np.random.Generator,
) -> Selection:
    """``n`` of the ``candidates`` (a pool, or its size): ``round(active_share * n)`` by highest score,
    the rest uniformly at random.

    The random ones are drawn first, from the whole pool, so they are an unbiased sample of it
    (what an estimate over random pairs needs); the active ones are the highest-scoring pairs
    among the rest. ``active_share`` is ``COMPARISON_ACTIVE_SHARE``: 0 is all random, 1 all active.
    """
    size = candidates if isinstance(candidates, int) else len(candidates)
    scores = np.asarray(scores, np.float64)
    if len(scores) != size:
        raise ValueError(f"{len(scores)} scores for {size} candidates")
    if not 0.0 <= active_share <= 1.0:
        raise ValueError(f"active_share must be in [0, 1], got {active_share}")
    n = min(n, size)
    n_active = round(active_share * n)
    random_index = rng.choice(size, size=n - n_active, replace=False)
    rest = np.setdiff1d(np.arange(size), random_index)
    order = rest[np.argsort(-scores[rest], kind="stable")]  # ties: lower pool index first
    active_index = order[:n_active]
    return Selection(
        index=np.concatenate([active_index, random_index]).astype(np.int64),
        active=np.concatenate([np.ones(len(active_index), bool), np.zeros(len(random_index), bool)]),
    )
