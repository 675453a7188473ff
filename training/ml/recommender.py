"""Keras fold-in autoencoder recommender (a denoising Mult-DAE) trained to predict what users rate next.

Architecture (Mult-DAE, Liang et al. 2018):
1. A user's profile is a sparse vector over the catalogue: each rated movie weighted by its
   rating level (by default only 4+ stars count) and by recency (``scoring.input_weights``),
   then L2-normalised.
2. The encoder pools input item embeddings with those weights: ``u = tanh(x @ E_in + b)``.
   There is no per-user parameter, so users never seen in training are served by folding in
   their ratings at request time.
3. The decoder scores every movie, ``logits = u @ E_out^T + b_out``; the loss is the multinomial
   log-likelihood of the target movies (``multinomial_nll``).

Targets. Each epoch, for each user, a random cut splits the timeline into past and future, and
input dropout hides part of the past. Targets are the liked future movies (what comes next, as in
the per-user temporal holdout) and the liked hidden past movies; movies left visible in the input
are not targets (``kept_target_weight`` 0: the "dropout emphasis" of Steck 2020, so the model does
not learn the identity; rated movies are never recommended anyway).

Teacher. EASE (``baselines.EASE``, fitted on the same training snapshot) also teaches the
model (knowledge distillation, Hinton et al. 2015): for the movies visible in each sampled input,
EASE's scores, softened at ``teacher_temperature`` and cut to its ``teacher_top_k`` best movies, are
added as soft targets with total weight ``teacher_weight`` per user. The student keeps its own
objective (what comes next), which EASE does not see.

Item-item term. The served scores add EASE's own view at a fixed scale: for every movie the user
rated at least 4, its ``ease_neighbours`` largest EASE weights (by magnitude) times
``ease_weight`` (``NumpyRecommender.item_item_scores``). The autoencoder's 128-dimensional user
vector summarises long histories less well than EASE's full-rank weights, while EASE cannot see
what comes next; on validation the sum beats both (``docs/recommender.md``). ``ease_weight=0``
serves the autoencoder alone.

Defaults were chosen on a temporal validation split carved from the TRAIN part of
ml-latest-small (never on test); see ``docs/recommender.md``.
TensorFlow is imported inside the training functions only; serving uses
``scoring.NumpyRecommender`` on the exported arrays.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from training.ml.baselines import EASE, tune_ease
from training.ml.data import Snapshot
from training.ml.scoring import NumpyRecommender, rating_levels
from training.ml.seeding import import_tensorflow, seed_everything

ProgressCallback = Callable[[int, int, dict[str, float]], None]


@dataclass
class RecommenderConfig:
    """Hyperparameters of the autoencoder recommender."""

    embedding_dim: int = 128  # size of user and item embeddings (also the RLHF item features)
    epochs: int = 60  # passes over the users; each pass draws fresh timeline cuts
    batch_size: int = 64  # users per gradient step
    learning_rate: float = 8e-3  # initial Adam step size
    cosine_decay: bool = True  # anneal the step size to 0 along a cosine over the run
    weight_decay: float = 1e-4  # decoupled weight decay (AdamW) on every weight
    input_dropout: float = 0.5  # share of a user's past movies hidden from the input each epoch (denoising)
    recency_half_life: float = 32.0  # input weight halves every this many ratings back in time
    rating_weights: tuple[float, ...] = (0.0,) * 7 + (1.0,) * 3  # input weight of ratings 0.5, 1.0, ..., 5.0
    target_min_rating: float = 4.0  # only ratings at least this high are targets
    min_cut_fraction: float = 0.5  # cuts are drawn uniformly in [this, 1) of each timeline
    reconstruction_weight: float = 1.0  # target weight of past movies hidden by dropout (0 = only the future)
    kept_target_weight: float = 0.0  # target weight of past movies left visible in the input
    teacher_weight: float = 10.0  # total weight per user of EASE's soft targets; 0 = no teacher
    teacher_temperature: float = 0.02  # softmax temperature on EASE's scores (they are ~0.01 to 1)
    teacher_top_k: int = 1000  # soft targets per user: the teacher's best movies, renormalised
    ease_weight: float = (
        4.0  # scale of the served EASE item-item term (logits per unit of EASE score); 0 = none
    )
    ease_neighbours: int = 128  # EASE weights kept per rated movie for that term (the largest by magnitude)
    seed: int = 0  # seeds Python, NumPy and TensorFlow


@dataclass
class TrainingResult:
    """What a training run produces: the servable arrays and everything needed to reproduce it."""

    scorer: NumpyRecommender  # numpy model for serving and evaluation
    arrays: dict[str, np.ndarray]  # scorer.export_arrays(), ready for artifacts.write_artifact
    config: RecommenderConfig  # hyperparameters used
    seed: int  # the seed (also in config, repeated for the manifest)
    data_fingerprint: str  # Snapshot.fingerprint() of the training data
    train_seconds: float  # wall-clock training time
    history: list[dict[str, float]] = field(default_factory=list)  # per-epoch logs
    teacher: dict[str, float] | None = None  # EASE's lambda and size, None when not used

    def manifest(self) -> dict[str, Any]:
        """JSON-safe record of the run for the artifact manifest."""
        return {
            "kind": self.scorer.kind,
            "config": asdict(self.config),
            "seed": self.seed,
            "data_fingerprint": self.data_fingerprint,
            "train_seconds": round(self.train_seconds, 3),
            "final_loss": self.history[-1]["loss"] if self.history else None,
            "teacher": self.teacher,
        }


@functools.cache
def autoencoder_class() -> type:
    """The Keras model class, defined on first use so importing this module never loads TensorFlow."""
    tf = import_tensorflow()
    import keras

    class AutoencoderRecommender(keras.Model):
        """Weighted bag of rated movies -> tanh user embedding -> logits over the catalogue."""

        def __init__(self, n_items: int, config: RecommenderConfig, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.n_items = n_items
            init = "glorot_uniform"  # seeded globally by seed_everything, distinct per layer
            self.input_embeddings = keras.layers.Embedding(
                n_items, config.embedding_dim, embeddings_initializer=init, name="input_embeddings"
            )
            self.item_embeddings = keras.layers.Embedding(
                n_items, config.embedding_dim, embeddings_initializer=init, name="item_embeddings"
            )
            self.input_embeddings.build((None,))
            self.item_embeddings.build((None,))
            self.encoder_bias = self.add_weight(
                shape=(config.embedding_dim,), initializer="zeros", name="encoder_bias"
            )
            self.item_bias = self.add_weight(shape=(n_items,), initializer="zeros", name="item_bias")

        def call(self, inputs: tuple, training: bool = False) -> Any:
            """``inputs = (rows, items, weights, n_users)``: a sparse batch of profiles -> logits."""
            rows, items, weights, n_users = inputs
            squared_norm = tf.math.unsorted_segment_sum(weights * weights, rows, n_users)
            normalized = weights * tf.math.rsqrt(tf.maximum(tf.gather(squared_norm, rows), 1e-12))
            pooled = tf.math.unsorted_segment_sum(
                normalized[:, None] * self.input_embeddings(items), rows, n_users
            )
            users = tf.tanh(pooled + self.encoder_bias)
            return tf.matmul(users, self.item_embeddings.embeddings, transpose_b=True) + self.item_bias

    return AutoencoderRecommender


def multinomial_nll(logits: Any, target_rows: Any, target_items: Any, target_weights: Any) -> Any:
    """Mean over users of ``-sum_j t_uj log softmax(logits_u)_j`` with sparse targets ``t``."""
    import tensorflow as tf  # already imported (quietly) by the caller; a plain import keeps autograph happy

    log_probs = tf.nn.log_softmax(logits, axis=-1)
    picked = tf.gather_nd(log_probs, tf.stack([target_rows, target_items], axis=1))
    per_user = tf.math.unsorted_segment_sum(-target_weights * picked, target_rows, tf.shape(logits)[0])
    return tf.reduce_mean(per_user)


@dataclass
class _Timelines:
    """Per-interaction arrays of the training snapshot that the epoch sampler reuses."""

    start: np.ndarray  # int64 [n_users] first interaction of each user
    length: np.ndarray  # int64 [n_users] number of ratings of each user
    position: np.ndarray  # int64 [n_ratings] index of the rating in its user's timeline
    tie_end: np.ndarray  # int64 [n_ratings] timeline index just past the rating's same-timestamp group
    level_weight: np.ndarray  # float32 [n_ratings] rating_weights of each rating
    is_target: np.ndarray  # bool [n_ratings] rating high enough to be a target


def _timelines(train: Snapshot, config: RecommenderConfig) -> _Timelines:
    start = train.indptr[:-1]
    length = np.diff(train.indptr)
    position = np.arange(train.n_ratings) - start[train.user_idx]
    # A new timestamp group starts where the user or the timestamp changes; its end is the next start.
    new_group = np.ones(train.n_ratings, bool)
    new_group[1:] = (train.user_idx[1:] != train.user_idx[:-1]) | (
        train.timestamp[1:] != train.timestamp[:-1]
    )
    group_id = np.cumsum(new_group) - 1
    group_starts = np.append(np.flatnonzero(new_group), train.n_ratings)
    tie_end = group_starts[group_id + 1] - start[train.user_idx]
    weights = np.asarray(config.rating_weights, np.float32)[rating_levels(train.rating)]
    return _Timelines(start, length, position, tie_end, weights, train.rating >= config.target_min_rating)


def _sample_epoch(
    train: Snapshot, lines: _Timelines, config: RecommenderConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one cut and one dropout mask per user; return per-interaction input and target weights."""
    low = np.ceil(config.min_cut_fraction * lines.length).clip(1, None)
    cut = np.floor(low + rng.random(train.n_users) * (lines.length - low)).astype(np.int64)
    # min_cut_fraction >= 1 means "no future": the whole timeline is input (a plain Mult-DAE).
    last = lines.length if config.min_cut_fraction >= 1 else np.maximum(lines.length - 1, 1)
    cut = np.clip(cut, 1, last)
    user_cut = cut[train.user_idx]
    before = lines.position < user_cut
    # Denoising: hide a random share of the past; hidden movies become (emphasised) targets.
    hidden = before & (rng.random(train.n_ratings) < config.input_dropout)
    visible = before & ~hidden
    rank = user_cut - np.minimum(user_cut, lines.tie_end)  # ratings strictly newer within the prefix
    decay = np.exp2(-rank / config.recency_half_life) if config.recency_half_life > 0 else 1.0
    input_weight = np.where(visible, lines.level_weight * decay, 0.0).astype(np.float32)
    target_weight = (
        np.select(
            [~before, hidden, visible],
            [1.0, config.reconstruction_weight, config.kept_target_weight],
        )
        * lines.is_target
    )
    return input_weight, target_weight.astype(np.float32)


class EaseTeacher:
    """EASE's soft targets for a batch of sampled profiles (training only; see the module docstring)."""

    def __init__(self, ease: EASE, temperature: float, top_k: int) -> None:
        if temperature <= 0 or top_k < 1:
            raise ValueError("the teacher needs a positive temperature and top_k")
        self.ease = ease
        self.temperature = float(temperature)
        self.top_k = min(int(top_k), len(ease.item_subset))

    def targets(
        self, rows: np.ndarray, items: np.ndarray, ratings: np.ndarray, n_users: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, items, probabilities)``: each user's ``top_k`` soft targets, summing to 1 per user.

        ``rows``, ``items`` and ``ratings`` are the visible input of the batch. The teacher reads
        what EASE reads (movies rated at least its ``min_rating``); users without such a movie get
        no soft targets, and visible movies are never targets.
        """
        ease = self.ease
        position = ease.position[items]
        keep = (ratings >= ease.min_rating) & (position >= 0)
        rows, position = rows[keep], position[keep]
        if not len(rows):
            return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float32)
        profile = sp.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, position)), shape=(n_users, len(ease.item_subset))
        )
        profile.sum_duplicates()
        profile.data[:] = 1.0
        scores = np.asarray(profile @ ease.weights, np.float32)
        scores[rows, position] = -np.inf
        users = np.unique(rows)
        scores = scores[users]
        best = np.argpartition(-scores, self.top_k - 1, axis=1)[:, : self.top_k]
        logits = np.take_along_axis(scores, best, axis=1) / self.temperature
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        return (
            np.repeat(users, self.top_k).astype(np.int32),
            ease.item_subset[best.reshape(-1)].astype(np.int32),
            probabilities.reshape(-1).astype(np.float32),
        )


def _batch_interactions(lines: _Timelines, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Interaction indices of ``users`` and the batch row of each."""
    lengths = lines.length[users]
    rows = np.repeat(np.arange(len(users)), lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return lines.start[users][rows] + offsets, rows


def train_recommender(
    train: Snapshot,
    config: RecommenderConfig | None = None,
    progress: ProgressCallback | None = None,
    teacher: EASE | None = None,
) -> TrainingResult:
    """Train on a snapshot and return the exported numpy scorer with the run's record.

    ``progress(epoch, n_epochs, logs)`` is called after every epoch (1-based) for progress bars.
    ``teacher`` is an EASE model already fitted on ``train``, for the teacher and the item-item
    term; without one (when either is on) EASE is fitted here, its lambda chosen on a split of
    ``train``.
    """
    config = config or RecommenderConfig()
    started = time.perf_counter()
    teacher_info = None
    if config.teacher_weight > 0 or config.ease_weight > 0:
        if teacher is None:
            teacher, _ = tune_ease(train)
        if teacher.n_items != train.n_items:
            raise ValueError("EASE was fitted on another catalogue")
        teacher_info = {"l2": teacher.l2, "items": len(teacher.item_subset)}
    if config.teacher_weight > 0:
        soft = EaseTeacher(teacher, config.teacher_temperature, config.teacher_top_k)
    seed_everything(config.seed)
    tf = import_tensorflow()
    import keras

    model = autoencoder_class()(train.n_items, config)
    trainable_users = np.flatnonzero(np.diff(train.indptr) >= 2)
    n_steps = config.epochs * -(-len(trainable_users) // config.batch_size)
    learning_rate = (
        keras.optimizers.schedules.CosineDecay(config.learning_rate, max(n_steps, 1))
        if config.cosine_decay
        else config.learning_rate
    )
    optimizer = keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=config.weight_decay)

    int_spec = tf.TensorSpec([None], tf.int32)
    float_spec = tf.TensorSpec([None], tf.float32)

    @tf.function(
        input_signature=[
            int_spec,
            int_spec,
            float_spec,
            int_spec,
            int_spec,
            float_spec,
            tf.TensorSpec([], tf.int32),
        ],
        reduce_retracing=True,
    )
    def train_step(rows, items, weights, target_rows, target_items, target_weights, n_users):
        with tf.GradientTape() as tape:
            logits = model((rows, items, weights, n_users), training=True)
            loss = multinomial_nll(logits, target_rows, target_items, target_weights)
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        return loss

    lines = _timelines(train, config)
    rng = np.random.default_rng(config.seed)
    history: list[dict[str, float]] = []
    for epoch in range(1, config.epochs + 1):
        input_weight, target_weight = _sample_epoch(train, lines, config, rng)
        users = rng.permutation(trainable_users)
        losses = []
        for begin in range(0, len(users), config.batch_size):
            batch = users[begin : begin + config.batch_size]
            index, rows = _batch_interactions(lines, batch)
            is_input = input_weight[index] > 0
            is_target = target_weight[index] > 0
            target_rows = rows[is_target].astype(np.int32)
            target_items = train.item_idx[index[is_target]]
            target_weights = target_weight[index[is_target]]
            if config.teacher_weight > 0:
                soft_rows, soft_items, soft_weights = soft.targets(
                    rows[is_input], train.item_idx[index[is_input]], train.rating[index[is_input]], len(batch)
                )
                target_rows = np.concatenate([target_rows, soft_rows])
                target_items = np.concatenate([target_items, soft_items])
                target_weights = np.concatenate([target_weights, config.teacher_weight * soft_weights])
            loss = train_step(
                rows[is_input].astype(np.int32),
                train.item_idx[index[is_input]],
                input_weight[index[is_input]],
                target_rows,
                target_items,
                target_weights,
                np.int32(len(batch)),
            )
            losses.append(float(loss))
        logs = {"epoch": float(epoch), "loss": float(np.mean(losses)) if losses else 0.0}
        history.append(logs)
        if progress is not None:
            progress(epoch, config.epochs, logs)

    neighbours = {}
    if config.ease_weight > 0:
        items, weights = teacher.neighbours(config.ease_neighbours)
        neighbours = {
            "neighbour_items": items,
            "neighbour_weights": weights * np.float32(config.ease_weight),
            "neighbour_min_rating": teacher.min_rating,
        }
    scorer = NumpyRecommender(
        input_embeddings=keras.ops.convert_to_numpy(model.input_embeddings.embeddings),
        encoder_bias=keras.ops.convert_to_numpy(model.encoder_bias),
        item_embeddings=keras.ops.convert_to_numpy(model.item_embeddings.embeddings),
        item_bias=keras.ops.convert_to_numpy(model.item_bias),
        rating_weights=np.asarray(config.rating_weights, np.float32),
        recency_half_life=config.recency_half_life,
        **neighbours,
    )
    return TrainingResult(
        scorer=scorer,
        arrays=scorer.export_arrays(),
        config=config,
        seed=config.seed,
        data_fingerprint=train.fingerprint(),
        train_seconds=time.perf_counter() - started,
        history=history,
        teacher=teacher_info,
    )
