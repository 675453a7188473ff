"""Reward model for recommendation lists: Bradley-Terry on slate comparisons, served in NumPy.

Item reward, for user u (context) and movie i::

    r(u, i) = MLP([u_n, x_i])                       # nonlinear user x movie interaction
            + u_n^T A x_i                           # bilinear: genre profile x genres, embedding dot
            + c^T x_i                               # movie quality seen by everyone
            + sum_k softplus(g_k) * s_k * phi_ik    # text signals x the movie attribute they name

``u_n`` is the user vector (recommender embedding | rating summary, see
``user_features.user_vector``) divided by its RMS over the training users but not centred, so a
user with no history (a zero vector) gets the population-average reward plus what their signals
say; ``x_i`` are the standardised movie features, ``s`` the user's signal
vector and ``phi_i`` the aligned movie attributes (genre multi-hot, year z, popularity z, tags).
The signal gains ``softplus(g_k)`` are non-negative, so by construction a negative "Horror"
signal can only lower Horror movies' rewards (and leaves other movies alone); training only
learns how much. The list score is the position-weighted mean of item rewards with DCG weights
``1/log2(pos + 2)`` normalised to sum to one, so slates of any length are comparable and a
one-item slate scores its item reward.

Set-aware list score (``RewardModelConfig.set_features``, issue 15): the list score adds
``w . [redundancy, genre_variety, decade_variety, worst_item]``, with ``w`` four learned weights,
the first three the list's content terms (``norms.content_terms``: share of near-duplicate pairs,
share of genres covered, distinct decades per slot) and ``worst_item`` the lowest item reward in
the list. None of them is a sum over movies, so this model can prefer a varied list to a sorted
one, which the additive model cannot. The movie attributes they read are saved with the model
(``set/*`` arrays) and ``NumpyRewardModel`` computes the same terms.

Loss, per comparison with list scores ``rewards_chosen``/``rewards_rejected``: binary cross-entropy
of ``sigmoid(rewards_chosen - rewards_rejected)`` against a label y:
- "a" or "b" (strict preference): y = 1 with the preferred slate as chosen, i.e. the
  Bradley-Terry loss ``-log sigmoid(chosen - rejected)``;
- "tie": y = 0.5, which pulls the two scores together (minimum loss log 2 at equal scores);
- "both_bad": treated exactly as a tie for this term. There is no absolute term: the list score
  has no calibrated zero (pairwise losses are shift invariant), so "both are bad" cannot be
  expressed without an anchor; its information is only "neither is preferred".
Rating pairs (a user's movie rated >= ``min_rating_gap`` higher vs the lower one, as one-item
slates) are strict preferences with weight ``rating_pair_weight``. Accuracy and margin count
strict preferences only.

TensorFlow is imported only inside the training functions (:func:`train_reward_model`,
:func:`build_keras_reward_model`, :func:`keras_bradley_terry_loss`); serving
(:class:`NumpyRewardModel`) is NumPy only.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from training.ml.norms import ListAttributes, content_terms_batch
from training.ml.user_features import ItemFeatures, UserContext, user_vector

OUTCOMES = ("a", "b", "tie", "both_bad")
SET_TERMS = ("redundancy", "genre_variety", "decade_variety", "worst_item")  # the set-aware weights' order
FORMAT_VERSION = 1


@dataclass
class RewardModelConfig:
    """Hyperparameters of reward-model training."""

    hidden_sizes: tuple[int, ...] = (64, 32)  # widths of the MLP over [user, movie]; first is the joint layer
    learning_rate: float = 1e-3  # Adam step size (1e-2 overfits within a few epochs; docs/experiment.md)
    epochs: int = 20  # passes over comparisons + rating pairs
    batch_size: int = 128  # pairs per gradient step
    l2: float = 0.3  # weight of the sum of squared kernels added to the loss (docs/experiment/earlier.md)
    rating_pair_weight: float = 0.3  # weight of a rating-derived pair relative to a human comparison
    pairs_per_user: int = 0  # rating pairs sampled per user when none are given (0: ratings are the
    # user's context only; 16 pairs lowered held-out-user accuracy in the experiment, docs/experiment.md)
    min_rating_gap: float = 1.0  # a rating pair needs chosen rating - rejected rating >= this
    signal_gain_init: float = 0.5  # initial (non-negative) gain of every text-signal slot
    seed: int = 0  # seeds weights, the validation split, pair sampling and shuffling
    validation_fraction: float = 0.2  # share of comparisons held out for eval/accuracy and eval/margin
    threads: int = 2  # TensorFlow intra-op threads (the machines are small and shared)
    set_features: bool = False  # add learned weights on list-level terms (needs list attributes)
    set_weight_scale: float = 30.0  # set weights = scale * trained variable: Adam moves each variable
    # by about learning_rate per step, and these weights' natural size is ~10 (term / annotator temperature)


@dataclass
class Comparison:
    """One human (or simulated) judgement between two recommendation lists for a user."""

    user: Hashable  # key into the ``contexts`` mapping (user id, or (user id, comparison id))
    slate_a: np.ndarray  # int [k_a] movie indices of the left list, best position first
    slate_b: np.ndarray  # int [k_b] movie indices of the right list
    outcome: str  # "a", "b", "tie" or "both_bad"
    weight: float = 1.0  # importance of this judgement in the loss

    def __post_init__(self) -> None:
        self.slate_a = np.asarray(self.slate_a, np.int64).reshape(-1)
        self.slate_b = np.asarray(self.slate_b, np.int64).reshape(-1)
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {self.outcome!r}")


@dataclass(frozen=True)
class RatingPair:
    """A preference implied by ratings: the user rated ``item_chosen`` clearly above ``item_rejected``."""

    user: Hashable  # key into ``contexts``
    item_chosen: int  # movie index with the higher rating
    item_rejected: int  # movie index with the lower rating


@dataclass
class RewardModelResult:
    """What a training run produced: exportable arrays, the metric history and provenance."""

    arrays: dict[str, np.ndarray]  # everything NumpyRewardModel.from_arrays needs (weights, features)
    metrics: list[dict[str, float]]  # one dict per epoch: loss, accuracy, margin, eval/...
    final_metrics: dict[str, float]  # last epoch's train metrics + eval/* from the NumPy model
    config: dict[str, Any]  # the RewardModelConfig as a dict
    seed: int  # the seed of this run
    model: Any = field(default=None, repr=False)  # the trained Keras model (training side only)

    def numpy_model(self) -> NumpyRewardModel:
        return NumpyRewardModel.from_arrays(self.arrays)


def position_weights(k: int) -> np.ndarray:
    """float32 [k]: DCG discounts 1/log2(pos + 2), normalised to sum to one."""
    raw = (1.0 / np.log2(np.arange(k, dtype=np.float64) + 2.0)).astype(np.float32)
    return raw / raw.sum() if k else raw


def comparison_label(outcome: str) -> tuple[bool, float]:
    """(slate a is the chosen side, BT label): strict -> 1.0, "tie" and "both_bad" -> 0.5."""
    if outcome == "a":
        return True, 1.0
    if outcome == "b":
        return False, 1.0
    if outcome in ("tie", "both_bad"):
        return True, 0.5
    raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")


def bradley_terry_loss(
    rewards_chosen: np.ndarray,
    rewards_rejected: np.ndarray,
    labels: np.ndarray | float = 1.0,
    weights: np.ndarray | None = None,
) -> float:
    """Weighted mean of ``-[y log sigmoid(d) + (1 - y) log sigmoid(-d)]``, d = chosen - rejected.

    With y = 1 this is ``-log sigmoid(chosen - rejected)``; y = 0.5 is the tie soft label.
    """
    diff = np.asarray(rewards_chosen, np.float64) - np.asarray(rewards_rejected, np.float64)
    labels = np.broadcast_to(np.asarray(labels, np.float64), diff.shape)
    weights = np.ones_like(diff) if weights is None else np.asarray(weights, np.float64)
    per_pair = labels * np.logaddexp(0.0, -diff) + (1.0 - labels) * np.logaddexp(0.0, diff)
    return float((weights * per_pair).sum() / weights.sum())


def pair_metrics(diff: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    """loss over all pairs; accuracy and margin over strict preferences (label 1) only."""
    diff, labels, weights = (np.asarray(a, np.float64) for a in (diff, labels, weights))
    if len(diff) == 0:
        nan = float("nan")
        return {
            "loss": nan,
            "accuracy": nan,
            "margin": nan,
            "tie_abs_diff": nan,
            "n_strict": 0.0,
            "n_ties": 0.0,
        }
    strict = labels == 1.0
    ties = ~strict
    return {
        "loss": bradley_terry_loss(diff, np.zeros_like(diff), labels, weights),
        "accuracy": float(np.mean(diff[strict] > 0)) if strict.any() else float("nan"),
        "margin": float(np.mean(diff[strict])) if strict.any() else float("nan"),
        "tie_abs_diff": float(np.mean(np.abs(diff[ties]))) if ties.any() else float("nan"),
        "n_strict": float(strict.sum()),
        "n_ties": float(ties.sum()),
    }


def as_comparison(row: Comparison | Mapping[str, Any]) -> Comparison:
    """Accept a Comparison or a dict with user, slate_a, slate_b, outcome and optional weight."""
    if isinstance(row, Comparison):
        return row
    return Comparison(
        user=row["user"],
        slate_a=row["slate_a"],
        slate_b=row["slate_b"],
        outcome=row["outcome"],
        weight=float(row.get("weight", 1.0)),
    )


def sample_rating_pairs(
    contexts: Mapping[Hashable, UserContext],
    pairs_per_user: int,
    min_gap: float = 1.0,
    seed: int = 0,
) -> list[RatingPair]:
    """Up to ``pairs_per_user`` distinct (higher-rated, lower-rated) pairs per user, gap >= ``min_gap``."""
    rng = np.random.default_rng(seed)
    pairs: list[RatingPair] = []
    for key in sorted(contexts, key=repr):
        history = contexts[key].history
        items = np.asarray(history.item_idx, np.int64)
        ratings = np.asarray(history.ratings, np.float64)
        if len(items) < 2 or pairs_per_user <= 0:
            continue
        draws = 8 * pairs_per_user
        first, second = rng.integers(0, len(items), size=(2, draws))
        gap = ratings[first] - ratings[second]
        keep = np.abs(gap) >= min_gap
        hi = np.where(gap > 0, first, second)[keep]
        lo = np.where(gap > 0, second, first)[keep]
        seen: set[tuple[int, int]] = set()
        for a, b in zip(items[hi].tolist(), items[lo].tolist(), strict=True):
            if (a, b) in seen:
                continue
            seen.add((a, b))
            pairs.append(RatingPair(key, a, b))
            if len(seen) == pairs_per_user:
                break
    return pairs


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(np.float32(0.0), x).astype(np.float32)


def _rms(values: np.ndarray) -> np.ndarray:
    rms = np.sqrt(np.mean(np.square(values), axis=0)).astype(np.float32)
    return np.where(rms > 1e-6, rms, np.float32(1.0)).astype(np.float32)


def _safe_std(values: np.ndarray) -> np.ndarray:
    std = values.std(axis=0).astype(np.float32)
    return np.where(std > 1e-6, std, np.float32(1.0)).astype(np.float32)


@dataclass
class UserPart:
    """The per-user precomputation: every movie's reward for this user (computed once, reused)."""

    rewards: np.ndarray  # float32 [n_items] r(u, i) for every catalogue index
    key: Any = None  # the context's key, for debugging


class NumpyRewardModel:
    """NumPy forward pass of the trained reward model; what serving and the RL environments call.

    ``user_part(ctx)`` computes the rewards of every movie for a user once (tens of ms for 10k
    movies) and is cached per context object (LRU, by identity: build a new UserContext when the
    user's history or signals change, or call ``clear_cache``). After that ``list_score`` is a
    gather and a dot product.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], cache_size: int = 1024) -> None:
        self._arrays = {name: np.asarray(value) for name, value in arrays.items()}
        a = self._arrays
        self.item_features = ItemFeatures.from_arrays(a)
        self.item_x = ((self.item_features.matrix - a["norm/item_mean"]) / a["norm/item_std"]).astype(
            np.float32
        )
        self.item_phi = self.item_features.signal_aligned()
        self.user_scale = a["norm/user_scale"].astype(np.float32)
        n_layers = int(a["mlp/n_layers"])
        self.user_kernel = a["mlp/user_kernel"].astype(np.float32)
        self.first_bias = a["mlp/bias_0"].astype(np.float32)
        self.hidden = [
            (a[f"mlp/kernel_{j}"].astype(np.float32), a[f"mlp/bias_{j}"].astype(np.float32))
            for j in range(1, n_layers)
        ]
        self.head_kernel = a["head/kernel"].astype(np.float32).reshape(-1)
        self.head_bias = np.float32(a["head/bias"].reshape(-1)[0])
        self.bilinear = a["bilinear/kernel"].astype(np.float32)
        self.item_linear = a["item_linear/kernel"].astype(np.float32).reshape(-1)
        self.signal_gain = _softplus(a["signal/gain_raw"].astype(np.float32))
        # The movie half of the first layer does not depend on the user: once per model.
        self.item_hidden = (self.item_x @ a["mlp/item_kernel"].astype(np.float32)).astype(np.float32)
        # Set-aware models carry list attributes and one weight per SET_TERMS entry.
        self.set_weights = a["set/weights"].astype(np.float64) if "set/weights" in a else None
        self.list_attributes = ListAttributes.from_arrays(a) if self.set_weights is not None else None
        self._cache: OrderedDict[int, tuple[UserContext, UserPart]] = OrderedDict()
        self._cache_size = cache_size
        self._weights: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> NumpyRewardModel:
        return cls(arrays)

    def export_arrays(self) -> dict[str, np.ndarray]:
        return dict(self._arrays)

    @property
    def n_items(self) -> int:
        return self.item_features.n_items

    def clear_cache(self) -> None:
        self._cache.clear()

    def user_part(self, ctx: UserContext | UserPart) -> UserPart:
        """Rewards of every movie for this user, cached by context identity."""
        if isinstance(ctx, UserPart):
            return ctx
        with self._lock:
            cached = self._cache.get(id(ctx))
            if cached is not None and cached[0] is ctx:
                self._cache.move_to_end(id(ctx))
                return cached[1]
        part = UserPart(rewards=self._all_item_rewards(ctx), key=ctx.key)
        with self._lock:
            self._cache[id(ctx)] = (ctx, part)  # holding ctx keeps its id from being reused
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return part

    def _all_item_rewards(self, ctx: UserContext, items: np.ndarray | None = None) -> np.ndarray:
        """Rewards of ``items`` (default: the whole catalogue) for this user, uncached."""
        rows = slice(None) if items is None else np.asarray(items, np.int64)
        user = user_vector(ctx, self.item_features) / self.user_scale
        hidden = np.maximum(self.item_hidden[rows] + (user @ self.user_kernel + self.first_bias), 0.0)
        for kernel, bias in self.hidden:
            hidden = np.maximum(hidden @ kernel + bias, 0.0)
        mlp = hidden @ self.head_kernel + self.head_bias
        linear = self.item_x[rows] @ (user @ self.bilinear + self.item_linear)
        signal = self.item_phi[rows] @ (self.signal_gain * ctx.signals.astype(np.float32))
        return (mlp + linear + signal).astype(np.float32)

    def item_rewards(self, ctx: UserContext | UserPart, item_idx: np.ndarray) -> np.ndarray:
        """float32 [n]: r(u, i) for the given movie indices."""
        return self.user_part(ctx).rewards[np.asarray(item_idx, np.int64)]

    def _position_weights(self, k: int) -> np.ndarray:
        weights = self._weights.get(k)
        if weights is None:
            weights = self._weights[k] = position_weights(k)
        return weights

    def list_scores(self, ctx: UserContext | UserPart, slates: np.ndarray) -> np.ndarray:
        """float32 [n]: list scores of ``slates`` [n, k]; entries < 0 are padding."""
        slates = np.atleast_2d(np.asarray(slates, np.int64))
        rewards = self.user_part(ctx).rewards
        weights = self._position_weights(slates.shape[1])
        if slates.size and slates.min() >= 0:
            scores = rewards[slates] @ weights
        else:
            weights = (slates >= 0) * weights
            weights = weights / np.maximum(weights.sum(axis=1, keepdims=True), np.float32(1e-12))
            scores = (rewards[np.maximum(slates, 0)] * weights).sum(axis=1)
        if self.set_weights is not None:
            scores = scores + self.set_terms(rewards, slates) @ self.set_weights
        return scores.astype(np.float32)

    def set_terms(self, rewards: np.ndarray, slates: np.ndarray) -> np.ndarray:
        """float64 [n, 4]: the ``SET_TERMS`` of each slate, given every movie's item reward."""
        slates = np.atleast_2d(np.asarray(slates, np.int64))
        item = np.where(slates >= 0, rewards[np.maximum(slates, 0)], np.inf)
        worst = np.where(np.isfinite(item.min(axis=1)), item.min(axis=1), 0.0)
        return np.column_stack([content_terms_batch(self.list_attributes, slates), worst])

    def list_score(self, ctx: UserContext | UserPart, slate: np.ndarray) -> float:
        """Position-discounted score of one slate (the RL reward)."""
        slate = np.asarray(slate, np.int64).reshape(-1)
        if self.set_weights is None and slate.size and slate.min() >= 0:
            return float(self.user_part(ctx).rewards[slate] @ self._position_weights(len(slate)))
        return float(self.list_scores(ctx, slate.reshape(1, -1))[0])


def evaluate_reward_model(
    numpy_model: NumpyRewardModel,
    comparisons: Sequence[Comparison | Mapping[str, Any]],
    contexts: Mapping[Hashable, UserContext],
) -> dict[str, float]:
    """loss, accuracy, margin (strict preferences only), tie_abs_diff, n_strict, n_ties."""
    diffs, labels, weights = [], [], []
    for row in map(as_comparison, comparisons):
        # Only the two slates' movies: cheaper than a whole-catalogue user_part for one-off users.
        slates = _pad([row.slate_a, row.slate_b], max(len(row.slate_a), len(row.slate_b)))
        part = UserPart(np.zeros(numpy_model.n_items, np.float32))
        items = slates[slates >= 0]
        part.rewards[items] = numpy_model._all_item_rewards(contexts[row.user], items)
        score_a, score_b = numpy_model.list_scores(part, slates)
        a_is_chosen, label = comparison_label(row.outcome)
        diffs.append(score_a - score_b if a_is_chosen else score_b - score_a)
        labels.append(label)
        weights.append(row.weight)
    return pair_metrics(np.array(diffs), np.array(labels), np.array(weights))


@dataclass
class _Pairs:
    """Training pairs as padded arrays; slates are padded with -1."""

    user_row: np.ndarray  # int [n] row into the stacked user vectors
    items_chosen: np.ndarray  # int32 [n, k]
    items_rejected: np.ndarray  # int32 [n, k]
    labels: np.ndarray  # float32 [n] 1 strict, 0.5 tie
    weights: np.ndarray  # float32 [n]

    def __len__(self) -> int:
        return len(self.labels)


def _pad(slates: list[np.ndarray], k: int) -> np.ndarray:
    out = np.full((len(slates), k), -1, np.int32)
    for row, slate in enumerate(slates):
        out[row, : len(slate)] = slate
    return out


def _build_pairs(
    comparisons: Sequence[Comparison],
    rating_pairs: Sequence[RatingPair],
    user_rows: Mapping[Hashable, int],
    rating_pair_weight: float,
    k: int,
) -> _Pairs:
    rows, chosen, rejected, labels, weights = [], [], [], [], []
    for c in comparisons:
        a_is_chosen, label = comparison_label(c.outcome)
        rows.append(user_rows[c.user])
        chosen.append(c.slate_a if a_is_chosen else c.slate_b)
        rejected.append(c.slate_b if a_is_chosen else c.slate_a)
        labels.append(label)
        weights.append(c.weight)
    for p in rating_pairs:
        rows.append(user_rows[p.user])
        chosen.append(np.array([p.item_chosen]))
        rejected.append(np.array([p.item_rejected]))
        labels.append(1.0)
        weights.append(rating_pair_weight)
    return _Pairs(
        user_row=np.asarray(rows, np.int64),
        items_chosen=_pad(chosen, k),
        items_rejected=_pad(rejected, k),
        labels=np.asarray(labels, np.float32),
        weights=np.asarray(weights, np.float32),
    )


def build_keras_reward_model(
    item_features: ItemFeatures,
    user_scale: np.ndarray,
    config: RewardModelConfig,
    list_attributes: ListAttributes | None = None,
) -> Any:
    """The Keras model (TensorFlow is imported here). Inputs: dict(user, signals, items).

    ``list_attributes`` is required with ``config.set_features``: what the list-level terms read.
    """
    from training.ml.seeding import import_tensorflow

    import_tensorflow()
    import keras
    from keras import ops

    item_mean = item_features.matrix.mean(axis=0).astype(np.float32)
    item_std = _safe_std(item_features.matrix)
    if config.set_features and list_attributes is None:
        raise ValueError("set_features needs list_attributes (norms.ListAttributes)")

    class RewardModel(keras.Model):
        """Item rewards r(u, i) and position-discounted list scores for slates of movie indices."""

        def __init__(self) -> None:
            super().__init__(name="reward_model")
            seed = config.seed
            x_dim = item_features.matrix.shape[1]
            signal_dim = item_features.signal_dim
            hidden_sizes = tuple(config.hidden_sizes)
            self.norm_arrays = {
                "norm/item_mean": item_mean,
                "norm/item_std": item_std,
                "norm/user_scale": user_scale.astype(np.float32),
            }
            item_x = ((item_features.matrix - item_mean) / item_std).astype(np.float32)
            self.item_x = self._constant("item_x", item_x)
            self.item_phi = self._constant("item_phi", item_features.signal_aligned())
            self.user_scale = self._constant("user_scale", user_scale.astype(np.float32))

            def glorot(offset: int) -> Any:
                return keras.initializers.GlorotUniform(seed=seed + offset)

            self.user_in = keras.layers.Dense(hidden_sizes[0], kernel_initializer=glorot(1), name="user_in")
            self.item_in = keras.layers.Dense(
                hidden_sizes[0], use_bias=False, kernel_initializer=glorot(2), name="item_in"
            )
            self.hidden_layers = [
                keras.layers.Dense(
                    width, activation="relu", kernel_initializer=glorot(3 + j), name=f"hidden_{j}"
                )
                for j, width in enumerate(hidden_sizes[1:])
            ]
            self.head = keras.layers.Dense(1, kernel_initializer=glorot(100), name="head")
            self.bilinear = keras.layers.Dense(
                x_dim, use_bias=False, kernel_initializer="zeros", name="bilinear"
            )
            self.item_linear = keras.layers.Dense(
                1, use_bias=False, kernel_initializer="zeros", name="item_linear"
            )
            self.set_features = config.set_features
            if self.set_features:
                attributes = list_attributes
                decade_hot = np.eye(attributes.n_decades, dtype=np.float32)[attributes.decade]
                self.set_genre = self._constant("set_genre", attributes.genre.astype(np.float32))
                self.set_decade = self._constant("set_decade", decade_hot)
                self.set_franchise = self._constant("set_franchise", attributes.franchise.astype(np.float32))
                self.set_genre_key = self._constant("set_genre_key", attributes.genre_key.astype(np.float32))
                self.set_weights_raw = self.add_weight(
                    shape=(len(SET_TERMS),), initializer="zeros", name="set_weights_raw"
                )
            gain_raw = float(np.log(np.expm1(config.signal_gain_init)))  # softplus^-1
            self.signal_gain_raw = self.add_weight(
                shape=(signal_dim,),
                initializer=keras.initializers.Constant(gain_raw),
                name="signal_gain_raw",
            )

        def _constant(self, name: str, value: np.ndarray) -> Any:
            return self.add_weight(
                shape=value.shape,
                initializer=keras.initializers.Constant(value),
                trainable=False,
                name=name,
            )

        def item_rewards(self, inputs: Mapping[str, Any]) -> Any:
            """[B, k] rewards of the (possibly -1 padded) slates, zeros at padding."""
            items = ops.cast(inputs["items"], "int32")
            safe = ops.maximum(items, 0)
            user = ops.cast(inputs["user"], "float32") / self.user_scale
            signals = ops.cast(inputs["signals"], "float32")
            x = ops.take(self.item_x, safe, axis=0)  # [B, k, x]
            phi = ops.take(self.item_phi, safe, axis=0)  # [B, k, s]
            hidden = ops.relu(self.item_in(x) + ops.expand_dims(self.user_in(user), 1))
            for layer in self.hidden_layers:
                hidden = layer(hidden)
            mlp = ops.squeeze(self.head(hidden), -1)
            bilinear = ops.sum(x * ops.expand_dims(self.bilinear(user), 1), axis=-1)
            linear = ops.squeeze(self.item_linear(x), -1)
            gains = ops.softplus(self.signal_gain_raw)
            signal = ops.sum(phi * ops.expand_dims(gains * signals, 1), axis=-1)
            mask = ops.cast(items >= 0, "float32")
            return (mlp + bilinear + linear + signal) * mask

        def call(self, inputs: Mapping[str, Any], training: bool = False) -> Any:
            """[B] position-discounted list scores."""
            items = ops.cast(inputs["items"], "int32")
            rewards = self.item_rewards(inputs)
            k = ops.shape(items)[1]
            positions = ops.cast(ops.arange(k), "float32")
            discount = 1.0 / (ops.log(positions + 2.0) / np.log(2.0))
            weights = ops.cast(items >= 0, "float32") * ops.expand_dims(discount, 0)
            weights = weights / ops.maximum(ops.sum(weights, axis=1, keepdims=True), 1e-12)
            scores = ops.sum(rewards * weights, axis=1)
            if self.set_features:
                weights = config.set_weight_scale * self.set_weights_raw
                scores = scores + ops.sum(self.set_terms(items, rewards) * weights, axis=-1)
            return scores

        def set_terms(self, items: Any, rewards: Any) -> Any:
            """[B, 4] the SET_TERMS of each slate (the NumPy model's ``set_terms``, as Keras ops)."""
            valid = ops.cast(items >= 0, "float32")
            safe = ops.maximum(items, 0)
            k = ops.shape(items)[1]
            pair = valid[:, :, None] * valid[:, None, :] * (1.0 - ops.eye(k, dtype="float32"))[None]

            def same(ids: Any) -> Any:
                equal = ops.cast(ops.equal(ids[:, :, None], ids[:, None, :]), "float32")
                return equal * ops.cast(ids[:, :, None] >= 0, "float32")

            franchise = ops.take(self.set_franchise, safe, axis=0)
            genre_key = ops.take(self.set_genre_key, safe, axis=0)
            duplicate = ops.maximum(same(franchise), same(genre_key)) * pair
            redundancy = ops.sum(duplicate, axis=(1, 2)) / ops.maximum(ops.sum(pair, axis=(1, 2)), 1.0)
            genre = ops.take(self.set_genre, safe, axis=0) * valid[:, :, None]
            genre_variety = ops.mean(ops.max(genre, axis=1), axis=-1)
            decade = ops.take(self.set_decade, safe, axis=0) * valid[:, :, None]
            n_valid = ops.sum(valid, axis=1)
            decade_variety = ops.sum(ops.max(decade, axis=1), axis=-1) / ops.maximum(n_valid, 1.0)
            worst = ops.min(rewards + (1.0 - valid) * 1e9, axis=1)
            worst = ops.where(n_valid > 0, worst, 0.0)
            return ops.stack([redundancy, genre_variety, decade_variety, worst], axis=-1)

        def l2_penalty(self) -> Any:
            layers = [
                self.user_in,
                self.item_in,
                *self.hidden_layers,
                self.head,
                self.bilinear,
                self.item_linear,
            ]
            return sum(ops.sum(ops.square(layer.kernel)) for layer in layers)

        def export_arrays(self) -> dict[str, np.ndarray]:
            arrays: dict[str, np.ndarray] = {**item_features.to_arrays(), **self.norm_arrays}
            arrays["mlp/n_layers"] = np.asarray(1 + len(self.hidden_layers), np.int64)
            arrays["mlp/user_kernel"] = np.asarray(self.user_in.kernel.numpy(), np.float32)
            arrays["mlp/item_kernel"] = np.asarray(self.item_in.kernel.numpy(), np.float32)
            arrays["mlp/bias_0"] = np.asarray(self.user_in.bias.numpy(), np.float32)
            for j, layer in enumerate(self.hidden_layers, start=1):
                arrays[f"mlp/kernel_{j}"] = np.asarray(layer.kernel.numpy(), np.float32)
                arrays[f"mlp/bias_{j}"] = np.asarray(layer.bias.numpy(), np.float32)
            arrays["head/kernel"] = np.asarray(self.head.kernel.numpy(), np.float32)
            arrays["head/bias"] = np.asarray(self.head.bias.numpy(), np.float32)
            arrays["bilinear/kernel"] = np.asarray(self.bilinear.kernel.numpy(), np.float32)
            arrays["item_linear/kernel"] = np.asarray(self.item_linear.kernel.numpy(), np.float32)
            arrays["signal/gain_raw"] = np.asarray(self.signal_gain_raw.numpy(), np.float32)
            if self.set_features:
                arrays |= list_attributes.to_arrays()
                raw = np.asarray(self.set_weights_raw.numpy(), np.float32)
                arrays["set/weights"] = (config.set_weight_scale * raw).astype(np.float32)
            arrays["meta/format_version"] = np.asarray(FORMAT_VERSION, np.int64)
            arrays["meta/config_json"] = np.asarray(json.dumps(asdict(config)))
            return arrays

    model = RewardModel()
    k = 1
    model(
        {
            "user": np.zeros((1, len(user_scale)), np.float32),
            "signals": np.zeros((1, item_features.signal_dim), np.float32),
            "items": np.zeros((1, k), np.int32),
        }
    )
    return model


def keras_bradley_terry_loss(rewards_chosen: Any, rewards_rejected: Any, labels: Any, weights: Any) -> Any:
    """The training loss as a Keras op: weighted mean of y*softplus(-d) + (1-y)*softplus(d)."""
    from keras import ops

    diff = rewards_chosen - rewards_rejected
    per_pair = labels * ops.softplus(-diff) + (1.0 - labels) * ops.softplus(diff)
    return ops.sum(weights * per_pair) / ops.sum(weights)


def train_reward_model(
    comparisons: Sequence[Comparison | Mapping[str, Any]],
    rating_pairs: Sequence[RatingPair] | None,
    contexts: Mapping[Hashable, UserContext],
    item_features: ItemFeatures,
    config: RewardModelConfig | None = None,
    progress: Callable[[int, dict[str, float]], None] | None = None,
    list_attributes: ListAttributes | None = None,
) -> RewardModelResult:
    """Fit the reward model on comparisons (+ rating pairs; sampled from ``contexts`` when None).

    A ``validation_fraction`` of the comparisons (random, seeded) is held out and reported as
    ``eval/*`` each epoch, computed by the exported NumPy model (what serving runs); they are nan
    when nothing is held out. ``progress(epoch, metrics)`` is called after every epoch.
    """
    config = config or RewardModelConfig()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    from training.ml.seeding import import_tensorflow, seed_everything

    tf = import_tensorflow()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(config.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialised by an earlier run in this process
        pass
    import keras

    seed_everything(config.seed)
    rng = np.random.default_rng(config.seed)

    # 1. Data: split comparisons, sample rating pairs, stack user vectors.
    rows = [as_comparison(c) for c in comparisons]
    order = rng.permutation(len(rows))
    n_eval = round(config.validation_fraction * len(rows)) if len(rows) > 1 else 0
    eval_rows = [rows[j] for j in order[:n_eval]]
    train_rows = [rows[j] for j in order[n_eval:]]
    if rating_pairs is None:
        rating_pairs = sample_rating_pairs(
            contexts, config.pairs_per_user, config.min_rating_gap, config.seed
        )
    rating_pairs = list(rating_pairs)
    missing = {r.user for r in rows} | {p.user for p in rating_pairs}
    missing -= set(contexts)
    if missing:
        raise KeyError(f"no UserContext for users {sorted(map(repr, missing))[:5]}")
    used = sorted({r.user for r in rows} | {p.user for p in rating_pairs}, key=repr)
    user_rows = {key: j for j, key in enumerate(used)}
    users = np.stack([user_vector(contexts[key], item_features) for key in used]).astype(np.float32)
    signals = np.stack([contexts[key].signals for key in used]).astype(np.float32)
    if signals.shape[1] != item_features.signal_dim:
        raise ValueError(
            f"signal vectors have {signals.shape[1]} entries, item features expect {item_features.signal_dim}"
        )
    k = max([1] + [len(r.slate_a) for r in rows] + [len(r.slate_b) for r in rows])
    train = _build_pairs(train_rows, rating_pairs, user_rows, config.rating_pair_weight, k)

    # 2. Model and optimiser; user features scaled (not centred) by their RMS over the users we
    #    train on, so a user with no history and no signals stays at 0: population-average rewards.
    model = build_keras_reward_model(item_features, _rms(users), config, list_attributes)
    optimizer = keras.optimizers.Adam(learning_rate=config.learning_rate)
    optimizer.build(model.trainable_variables)

    def batch_inputs(index: np.ndarray) -> tuple[Any, ...]:
        # Pad every batch to batch_size with zero-weight rows: one trace of train_step, not two.
        pad = config.batch_size - len(index)
        weights = train.weights[index]
        if pad > 0:
            index = np.concatenate([index, np.zeros(pad, index.dtype)])
            weights = np.concatenate([weights, np.zeros(pad, np.float32)])
        user_row = train.user_row[index]
        return (
            tf.constant(users[user_row]),
            tf.constant(signals[user_row]),
            tf.constant(train.items_chosen[index]),
            tf.constant(train.items_rejected[index]),
            tf.constant(train.labels[index]),
            tf.constant(weights),
        )

    @tf.function(autograph=False)
    def train_step(user, signal, items_chosen, items_rejected, labels, weights):
        with tf.GradientTape() as tape:
            rewards_chosen = model({"user": user, "signals": signal, "items": items_chosen}, training=True)
            rewards_rejected = model(
                {"user": user, "signals": signal, "items": items_rejected}, training=True
            )
            bt_loss = keras_bradley_terry_loss(rewards_chosen, rewards_rejected, labels, weights)
            loss = bt_loss + config.l2 * model.l2_penalty()
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return rewards_chosen - rewards_rejected

    # 3. Epochs of shuffled mini-batches; train metrics from the diffs seen during the epoch,
    #    eval metrics from the exported NumPy model (what serving will run).
    history: list[dict[str, float]] = []
    for epoch in range(1, config.epochs + 1):
        permutation = rng.permutation(len(train))
        diffs = np.zeros(len(train), np.float32)
        for start in range(0, len(train), config.batch_size):
            index = permutation[start : start + config.batch_size]
            diffs[index] = train_step(*batch_inputs(index)).numpy()[: len(index)]
        metrics = {"epoch": float(epoch), **pair_metrics(diffs, train.labels, train.weights)}
        if eval_rows:
            held_out = evaluate_reward_model(
                NumpyRewardModel.from_arrays(model.export_arrays()), eval_rows, contexts
            )
        else:
            held_out = pair_metrics(np.zeros(0), np.zeros(0), np.zeros(0))
        metrics |= _prefixed(held_out, "eval/")
        history.append(metrics)
        if progress is not None:
            progress(epoch, metrics)

    # 4. Export, and evaluate the exported NumPy model on the held-out comparisons.
    arrays = model.export_arrays()
    final = dict(history[-1]) if history else {}
    if not history:  # epochs=0: still report how the initial model does
        final |= _prefixed(
            evaluate_reward_model(NumpyRewardModel.from_arrays(arrays), eval_rows, contexts), "eval/"
        )
    final |= {
        "n_comparisons_train": float(len(train_rows)),
        "n_comparisons_eval": float(len(eval_rows)),
        "n_rating_pairs": float(len(rating_pairs)),
    }
    return RewardModelResult(
        arrays=arrays,
        metrics=history,
        final_metrics=final,
        config=asdict(config),
        seed=config.seed,
        model=model,
    )


def _prefixed(metrics: Mapping[str, float], prefix: str) -> dict[str, float]:
    return {f"{prefix}{name}": float(value) for name, value in metrics.items()}
