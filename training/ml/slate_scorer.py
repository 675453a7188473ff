"""The slate scorer PPO and DQN share: a Keras network scoring each candidate movie at each step of a list,
its input normalisation, its tf.functions and numpy export, and the helpers both trainers use.

``training.ml.policy.NumpySlatePolicy`` evaluates the exported arrays with NumPy for serving.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from training.ml.env import NEG_INF, SlateEnv, user_state
from training.ml.seeding import import_tensorflow


def make_slate_scorer(
    *,
    n_user_features: int,
    n_item_features: int,
    hidden_sizes: Sequence[int],
    slate_size: int,
    ref_logit_scale: float,
    item_mean: np.ndarray,
    item_std: np.ndarray,
    user_mean: np.ndarray,
    user_std: np.ndarray,
    value_head: bool = True,
    zero_init_head: bool = True,
):
    """Build the shared per-candidate scorer used by PPO (logits + value) and DQN (Q-values).

    `encode_candidates` runs once per episode: a candidate MLP shared by all candidates reads
    [user, candidate features, z-scored reference score] and gives h_c. `score_steps` runs once per
    decision t: a context layer reads [user, mean features of the chosen movies, slot / K], joined
    by the mean h_c of the candidates still available (what is left to pick) into s_t. Then

        logit(c, t) = head(h_c) + h_c . query(s_t) + similarity(c, chosen) * gate(s_t) + state(s_t)
                      + ref_logit_scale * ref_score_c

    so the MLP never runs on the (steps x candidates) grid: PPO updates on thousands of episodes stay
    cheap. With zero-initialised heads and ref_logit_scale = 1 / ref_temperature the untrained policy
    *is* the reference policy; `state(s_t)` cancels in the softmax but carries Q-learning's state
    value. Unavailable candidates get NEG_INF.
    """
    import_tensorflow()
    import keras
    from keras import layers, ops

    head_init = "zeros" if zero_init_head else "glorot_uniform"
    width = hidden_sizes[-1]

    class SlateScorer(keras.Model):
        def __init__(self):
            super().__init__()
            self.item_mean = ops.convert_to_tensor(np.asarray(item_mean, np.float32))
            self.item_std = ops.convert_to_tensor(np.asarray(item_std, np.float32))
            self.user_mean = ops.convert_to_tensor(np.asarray(user_mean, np.float32))
            self.user_std = ops.convert_to_tensor(np.asarray(user_std, np.float32))
            # first candidate layer, split so the user's share is computed once per episode
            self.candidate_in = layers.Dense(hidden_sizes[0], name="candidate_in")
            self.user_in = layers.Dense(hidden_sizes[0], use_bias=False, name="user_in")
            self.candidate_mlp = [
                layers.Dense(w, activation="relu", name=f"candidate_mlp_{i}")
                for i, w in enumerate(hidden_sizes[1:], 1)
            ]
            self.context_mlp = layers.Dense(width, activation="relu", name="context_mlp")
            self.candidate_head = layers.Dense(1, kernel_initializer=head_init, name="candidate_head")
            self.query_head = layers.Dense(width, kernel_initializer=head_init, name="query_head")
            self.similarity_head = layers.Dense(1, kernel_initializer=head_init, name="similarity_head")
            self.state_head = layers.Dense(1, kernel_initializer=head_init, name="state_head")
            if value_head:
                self.value_hidden = layers.Dense(width, activation="relu", name="value_hidden")
                self.value_head = layers.Dense(1, name="value_head")

        def encode_candidates(self, inputs):
            """Per-episode part, unchanged by the steps: normalised inputs and hidden [B, C, H] per candidate."""
            ref_scores = ops.cast(inputs["ref_scores"], "float32")  # [B, C]
            user = (inputs["user"] - self.user_mean) / self.user_std  # [B, u]
            cand = (inputs["candidate_features"] - self.item_mean) / self.item_std  # [B, C, f]
            ref_centred = ref_scores - ops.mean(ref_scores, axis=-1, keepdims=True)
            ref_z = ref_centred / (ops.sqrt(ops.mean(ref_centred**2, axis=-1, keepdims=True)) + 1e-6)
            hidden = ops.relu(
                self.candidate_in(ops.concatenate([cand, ref_z[..., None]], axis=-1))
                + self.user_in(user)[:, None, :]
            )
            for layer in self.candidate_mlp:
                hidden = layer(hidden)
            return {"hidden": hidden, "candidates": cand, "user": user, "ref_scores": ref_scores}

        def score_steps(self, encoded, inputs):
            """Per-decision part: logits [B, T, C] (and value [B, T]) of the encoded episodes at T steps."""
            hidden, cand, user = encoded["hidden"], encoded["candidates"], encoded["user"]
            chosen_mean = inputs["chosen_mean"]  # [B, T, f]
            slot = ops.cast(inputs["slot"], "float32")  # [B, T]
            available = ops.cast(inputs["available"], "bool")  # [B, T, C]

            has_chosen = ops.cast(slot > 0, "float32")[..., None]
            summary = (chosen_mean - self.item_mean) / self.item_std * has_chosen  # [B, T, f]
            context = ops.concatenate(
                [
                    ops.repeat(user[:, None, :], ops.shape(summary)[1], axis=1),
                    summary,
                    (slot / slate_size)[..., None],
                ],
                axis=-1,
            )
            context = self.context_mlp(context)  # [B, T, H]
            weights = ops.cast(available, "float32")
            weights = weights / ops.maximum(ops.sum(weights, axis=-1, keepdims=True), 1.0)
            # mean hidden of the candidates still available: what is left to pick
            remaining = ops.einsum("btc,bch->bth", weights, hidden)
            step_state = ops.concatenate([context, remaining], axis=-1)  # [B, T, 2H]
            similarity = ops.einsum("bcf,btf->btc", cand, summary) / n_item_features

            logits = (
                self.candidate_head(hidden)[..., 0][:, None, :]
                + ops.einsum("bch,bth->btc", hidden, self.query_head(step_state))
                + similarity * self.similarity_head(step_state)
                + self.state_head(step_state)
                + ref_logit_scale * encoded["ref_scores"][:, None, :]
            )
            outputs = {"logits": ops.where(available, logits, NEG_INF)}
            if value_head:
                outputs["value"] = self.value_head(self.value_hidden(step_state))[..., 0]  # [B, T]
            return outputs

        def call(self, inputs, training=False):
            return self.score_steps(self.encode_candidates(inputs), inputs)

    model = SlateScorer()
    model.constants = {
        "item_mean": np.asarray(item_mean, np.float32),
        "item_std": np.asarray(item_std, np.float32),
        "user_mean": np.asarray(user_mean, np.float32),
        "user_std": np.asarray(user_std, np.float32),
        "slate_size": np.asarray(slate_size, np.int64),
        "ref_logit_scale": np.asarray(ref_logit_scale, np.float32),
    }
    return model


def safe_std(matrix: np.ndarray) -> np.ndarray:
    """Column standard deviations, 1 for (near-)constant columns: signals that are all zero in
    training must not blow up to 1e6 when a served user finally says something."""
    std = matrix.std(axis=0)
    return np.where(std < 1e-3, 1.0, std).astype(np.float32)


def build_scorer_for(
    users: Sequence[Any],
    item_features: np.ndarray,
    *,
    hidden_sizes: Sequence[int],
    slate_size: int,
    ref_logit_scale: float,
    value_head: bool = True,
    zero_init_head: bool = True,
):
    """A slate scorer whose input normalisation is fitted on these users and items, built on dummy inputs."""
    user_matrix = np.stack([user_state(u) for u in users])
    item_features = np.asarray(item_features, np.float32)
    model = make_slate_scorer(
        n_user_features=user_matrix.shape[1],
        n_item_features=item_features.shape[1],
        hidden_sizes=hidden_sizes,
        slate_size=slate_size,
        ref_logit_scale=ref_logit_scale,
        item_mean=item_features.mean(axis=0),
        item_std=safe_std(item_features),
        user_mean=user_matrix.mean(axis=0),
        user_std=safe_std(user_matrix),
        value_head=value_head,
        zero_init_head=zero_init_head,
    )
    model(
        {
            "user": user_matrix[:1],
            "candidate_features": item_features[None, :2],
            "ref_scores": np.zeros((1, 2), np.float32),
            "chosen_mean": np.zeros((1, 1, item_features.shape[1]), np.float32),
            "slot": np.zeros((1, 1), np.float32),
            "available": np.ones((1, 1, 2), bool),
        }
    )
    return model


def compiled_scorer(tf, model):
    """tf.functions (encode, score, forward) of a slate scorer, each traced once and reused for any batch size."""
    n_user, n_item = model.constants["user_mean"].shape[0], model.constants["item_mean"].shape[0]
    width = (model.candidate_mlp[-1] if model.candidate_mlp else model.candidate_in).units
    episode = {
        "user": tf.TensorSpec([None, n_user], tf.float32),
        "candidate_features": tf.TensorSpec([None, None, n_item], tf.float32),
        "ref_scores": tf.TensorSpec([None, None], tf.float32),
    }
    step = {
        "chosen_mean": tf.TensorSpec([None, None, n_item], tf.float32),
        "slot": tf.TensorSpec([None, None], tf.float32),
        "available": tf.TensorSpec([None, None, None], tf.bool),
    }
    encoded = {
        "hidden": tf.TensorSpec([None, None, width], tf.float32),
        "candidates": tf.TensorSpec([None, None, n_item], tf.float32),
        "user": tf.TensorSpec([None, n_user], tf.float32),
        "ref_scores": tf.TensorSpec([None, None], tf.float32),
    }
    encode = tf.function(model.encode_candidates, input_signature=[episode], autograph=False)
    score = tf.function(model.score_steps, input_signature=[encoded, step], autograph=False)
    forward = tf.function(
        lambda inputs: model(inputs), input_signature=[{**episode, **step}], autograph=False
    )
    return encode, score, forward


def scorer_arrays(model, n_candidates: int) -> dict[str, np.ndarray]:
    """Numpy copy of a slate scorer: named layer weights plus the constants needed to serve it."""
    arrays = {name: value.copy() for name, value in model.constants.items()}
    arrays["n_candidates"] = np.asarray(n_candidates, np.int64)
    dense = [
        model.candidate_in,
        model.user_in,
        *model.candidate_mlp,
        model.context_mlp,
        model.candidate_head,
        model.query_head,
        model.similarity_head,
        model.state_head,
    ]
    if hasattr(model, "value_head"):
        dense += [model.value_hidden, model.value_head]
    for layer in dense:
        arrays[f"{layer.name}/kernel"] = np.asarray(layer.kernel.numpy(), np.float32)
        if layer.use_bias:
            arrays[f"{layer.name}/bias"] = np.asarray(layer.bias.numpy(), np.float32)
    return arrays


def greedy_slates(encode, score, env: SlateEnv, users: Sequence[Any], candidates) -> np.ndarray:
    """Build each user's slate by taking the highest-scoring available candidate at every step.

    `encode(inputs)` and `score(encoded, step_inputs)` are the scorer's two halves (see make_slate_scorer).
    """
    obs = env.reset(users, candidates)
    encoded = encode(obs.episode_inputs())
    for _ in range(env.slate_size):
        logits = np.asarray(score(encoded, obs.step_inputs())["logits"])[:, 0, :]
        obs, _, _, _ = env.step(np.argmax(logits, axis=-1))
    return env.slates


def mean_list_score(reward_model, users: Sequence[Any], slates: np.ndarray) -> float:
    return float(np.mean([reward_model.list_score(u, s) for u, s in zip(users, slates, strict=True)]))


def split_users(n_users: int, val_fraction: float, max_val_users: int, rng: np.random.Generator):
    """Shuffle user rows into (train, validation); validation is empty with fewer than 10 users."""
    order = rng.permutation(n_users)
    n_val = min(round(n_users * val_fraction), max_val_users) if n_users >= 10 else 0
    return order[n_val:], order[:n_val]
