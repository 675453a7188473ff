"""Deep Q-learning (DQN) of a slate policy: a Q-value per candidate movie, learnt from per-step reward gains.

With ``kl_coef`` (beta) > 0 it is soft Q-learning regularised towards the reference recommender, the
Q-learning counterpart of PPO's KL penalty: the policy is ``pi(a|s) ~ pi_ref(a|s) exp(Q(s,a) / beta)``
and the TD target uses the soft value ``V(s') = beta log sum_a' pi_ref(a'|s') exp(Q(s',a') / beta)``
(Haarnoja et al. 2017; Jaques et al. 2019 for a KL-regularised Q-learning to a prior policy). The
network outputs ``Q / beta + log pi_ref`` up to a per-state constant, so serving its argmax or
softmax needs nothing new, and with a zero-initialised head the untrained agent is the reference.
With ``kl_coef`` 0 it is plain DQN: the greedy policy ignores the reference.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from training.ml.env import NEG_INF, SlateEnv, user_state
from training.ml.seeding import import_tensorflow, seed_everything
from training.ml.slate_scorer import (
    build_scorer_for,
    compiled_scorer,
    greedy_slates,
    mean_list_score,
    scorer_arrays,
    split_users,
)


@dataclass
class DQNConfig:
    """Hyperparameters of `train_dqn`."""

    total_steps: int = 300
    """vectorised environment steps; each adds one movie to every one of the num_envs slates"""
    num_envs: int = 64
    """users whose slates are built in parallel"""
    n_candidates: int = 50
    """candidate set per user: the reference recommender's top-C unrated movies (as PPO's)"""
    slate_size: int = 10
    """K, movies per slate (= steps per episode)"""
    learning_rate: float = 1e-3
    """Adam learning rate"""
    buffer_size: int = 50_000
    """replay memory, in transitions"""
    gamma: float = 1.0
    """discount across slots (the per-step rewards already carry the list score's position discount)"""
    tau: float = 1.0
    """target network update rate: 1 copies the Q-network, < 1 is Polyak averaging"""
    target_network_frequency: int = 25
    """gradient steps between target network updates"""
    batch_size: int = 128
    """transitions per gradient step"""
    start_e: float = 1.0
    """exploration epsilon at the start"""
    end_e: float = 0.05
    """exploration epsilon at the end of the schedule"""
    exploration_fraction: float = 0.5
    """fraction of total_steps over which epsilon decays linearly from start_e to end_e"""
    learning_starts: int = 20
    """vectorised steps of pure data collection before the first gradient step"""
    train_frequency: int = 1
    """vectorised steps between gradient steps"""
    max_grad_norm: float = 10.0
    """global gradient-norm clip"""
    eval_frequency: int = 25
    """vectorised steps between greedy evaluations on the held-out users (one history row each)"""
    ref_temperature: float = 0.31
    """temperature of the reference policy softmax(ref_score / ref_temperature); PPO's, so that both
    are held to one reference"""
    kl_coef: float = 0.5
    """beta, the weight of the KL to the reference policy (soft Q-learning); 0 = plain DQN. 0.5 was
    chosen over 0.05 and 0.2 on the closed-loop experiment's feedback period (docs/experiment/earlier.md)"""
    hidden_sizes: tuple[int, ...] = (64, 32)
    """widths of the shared per-candidate MLP"""
    val_fraction: float = 0.1
    """share of users held out to measure the greedy policy's reward"""
    max_val_users: int = 256
    """cap on held-out users, to keep evaluations cheap"""
    seed: int = 1
    """seeds numpy, Python and TensorFlow"""


@dataclass
class DQNResult:
    """What a DQN run produces: the servable Q-network, its learning curves and its configuration."""

    arrays: dict[str, np.ndarray]
    """trained Q-network, servable by `policy.NumpySlatePolicy.from_arrays(arrays, kind="qlearning")`"""
    history: list[dict[str, float]]
    """one metrics dict per evaluation"""
    metrics: dict[str, float]
    """the last evaluation's metrics"""
    config: dict[str, Any] = field(default_factory=dict)
    """the DQNConfig used, as a dict (includes the seed)"""


def linear_schedule(start_e: float, end_e: float, duration: float, t: int) -> float:
    slope = (end_e - start_e) / max(duration, 1)
    return max(slope * t + start_e, end_e)


class ReplayBuffer:
    """Transitions stored compactly: the user row, the chosen-candidate mask and slot before the action."""

    def __init__(self, capacity: int, n_candidates: int):
        self.rows = np.zeros(capacity, np.int32)
        self.chosen = np.zeros((capacity, n_candidates), bool)
        self.slots = np.zeros(capacity, np.float32)
        self.actions = np.zeros(capacity, np.int32)
        self.rewards = np.zeros(capacity, np.float32)
        self.dones = np.zeros(capacity, bool)
        self.capacity, self.position, self.size = capacity, 0, 0

    def add(self, rows, chosen, slots, actions, rewards, dones) -> None:
        index = (self.position + np.arange(len(rows))) % self.capacity
        self.rows[index], self.chosen[index], self.slots[index] = rows, chosen, slots
        self.actions[index], self.rewards[index], self.dones[index] = actions, rewards, dones
        self.position = int((self.position + len(rows)) % self.capacity)
        self.size = min(self.size + len(rows), self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        index = rng.integers(0, self.size, batch_size)
        return (
            self.rows[index],
            self.chosen[index],
            self.slots[index],
            self.actions[index],
            self.rewards[index],
            self.dones[index],
        )


def random_available(available: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random available candidate per row."""
    return np.argmax(np.where(available, rng.random(available.shape), -1.0), axis=-1)


def train_dqn(
    users: Sequence[Any],
    reference,
    reward_model,
    item_features: np.ndarray,
    config: DQNConfig | None = None,
    progress: Callable[[dict[str, float]], None] | None = None,
) -> DQNResult:
    """Learn Q(slate so far, next movie) with DQN; `progress(metrics)` is called after every evaluation."""
    config = config or DQNConfig()
    seed_everything(config.seed)
    tf = import_tensorflow()
    import keras

    rng = np.random.default_rng(config.seed)
    start_time = time.time()
    C, K = config.n_candidates, config.slate_size
    soft = config.kl_coef > 0

    # 0. Environment with per-step reward gains, candidate sets, held-out users, Q and target networks
    env, eval_env = (
        SlateEnv(
            reference,
            reward_model,
            item_features,
            n_candidates=C,
            slate_size=K,
            ref_temperature=config.ref_temperature,
            incremental_rewards=True,
        )
        for _ in range(2)
    )
    train_rows, val_rows = split_users(len(users), config.val_fraction, config.max_val_users, rng)
    train_users = [users[i] for i in train_rows]
    val_users = [users[i] for i in val_rows]
    train_cands = env.candidate_set(train_users)
    val_cands = env.candidate_set(val_users) if val_users else None

    def build():
        return build_scorer_for(
            train_users,
            item_features,
            hidden_sizes=config.hidden_sizes,
            slate_size=K,
            ref_logit_scale=1.0 / config.ref_temperature if soft else 0.0,
            value_head=False,
            zero_init_head=True,
        )

    q_network, target_network = build(), build()
    target_network.set_weights(q_network.get_weights())
    optimizer = keras.optimizers.Adam(learning_rate=config.learning_rate)
    optimizer.build(q_network.trainable_variables)
    rb = ReplayBuffer(config.buffer_size, C)

    user_matrix = tf.constant(np.stack([user_state(u) for u in train_users]))
    feature_table = tf.constant(np.asarray(item_features, np.float32))
    cand_items = tf.constant(train_cands.items)
    cand_ref_scores = tf.constant(train_cands.ref_scores)
    cand_valid = tf.constant(train_cands.valid)

    def replay_inputs(rows, chosen, slots):
        """Rebuild scorer inputs from a stored (user row, chosen mask, slot)."""
        features = tf.gather(feature_table, tf.gather(cand_items, rows))  # [b, C, f]
        chosen_f = tf.cast(chosen, tf.float32)
        count = tf.maximum(tf.reduce_sum(chosen_f, axis=-1, keepdims=True), 1.0)
        return {
            "user": tf.gather(user_matrix, rows),
            "candidate_features": features,
            "ref_scores": tf.gather(cand_ref_scores, rows),
            "chosen_mean": (tf.einsum("bc,bcf->bf", chosen_f, features) / count)[:, None, :],
            "slot": slots[:, None],
            "available": (tf.gather(cand_valid, rows) & ~chosen)[:, None, :],
        }

    encode, score, _ = compiled_scorer(tf, q_network)

    def huber_td_loss(td_error):
        return tf.where(tf.abs(td_error) < 1.0, 0.5 * td_error**2, tf.abs(td_error) - 0.5)

    def log_normalizer(logits):
        """logsumexp over the available candidates (unavailable ones sit at NEG_INF)."""
        return tf.reduce_logsumexp(logits, axis=-1)

    @tf.function(autograph=False)
    def train_step(rows, chosen, slots, actions, rewards, dones):
        next_chosen = chosen | tf.cast(tf.one_hot(actions, C), tf.bool)
        next_inputs = replay_inputs(rows, next_chosen, slots + 1)
        target_logits = target_network(next_inputs)["logits"][:, 0, :]
        if soft:
            # In units of beta: V(s')/beta = logsumexp(Q'/beta + log pi_ref) = lse(target) - lse(ref logits).
            ref_next = tf.where(
                next_inputs["available"][:, 0, :], next_inputs["ref_scores"] / config.ref_temperature, NEG_INF
            )
            next_value = log_normalizer(target_logits) - log_normalizer(ref_next)
            td_target = rewards / config.kl_coef + config.gamma * tf.where(dones, 0.0, next_value)
        else:
            next_value = tf.reduce_max(target_logits, axis=-1)  # unavailable candidates sit at NEG_INF
            td_target = rewards + config.gamma * tf.where(dones, 0.0, next_value)
        inputs = replay_inputs(rows, chosen, slots)
        with tf.GradientTape() as tape:
            q = q_network(inputs, training=True)["logits"][:, 0, :]
            old_val = tf.gather(q, actions, batch_dims=1)
            if soft:  # the learnt part is Q/beta: take the reference logit back out
                old_val -= tf.gather(inputs["ref_scores"], actions, batch_dims=1) / config.ref_temperature
            loss = tf.reduce_mean(huber_td_loss(td_target - old_val))
        grads = tape.gradient(loss, q_network.trainable_variables)
        grads, _ = tf.clip_by_global_norm(grads, config.max_grad_norm)
        optimizer.apply_gradients(zip(grads, q_network.trainable_variables, strict=True))
        return loss, tf.reduce_mean(old_val) * (config.kl_coef if soft else 1.0)

    def update_target() -> None:
        for target_var, q_var in zip(target_network.weights, q_network.weights, strict=True):
            target_var.assign(config.tau * q_var + (1.0 - config.tau) * target_var)

    def reset():
        rows = rng.choice(len(train_users), size=config.num_envs, replace=len(train_users) < config.num_envs)
        return rows, env.reset([train_users[i] for i in rows], train_cands.take(rows))

    def validate() -> float:
        if not val_users:
            return float("nan")
        return mean_list_score(
            reward_model, val_users, greedy_slates(encode, score, eval_env, val_users, val_cands)
        )

    if val_users:
        val_ref_reward = mean_list_score(reward_model, val_users, val_cands.items[:, :K])
        random_picks = np.stack(
            [rng.choice(np.flatnonzero(valid), K, replace=False) for valid in val_cands.valid]
        )
        val_random_reward = mean_list_score(
            reward_model, val_users, np.take_along_axis(val_cands.items, random_picks, 1)
        )
    else:
        val_ref_reward = val_random_reward = float("nan")

    history: list[dict[str, float]] = []
    losses, q_means, episode_scores = [], [], []
    gradient_steps = 0
    env_rows, obs = reset()
    for global_step in range(config.total_steps):
        # 1. Epsilon-greedy action on every parallel slate
        epsilon = linear_schedule(
            config.start_e, config.end_e, config.exploration_fraction * config.total_steps, global_step
        )
        q = score(encode(obs.episode_inputs()), obs.step_inputs())["logits"].numpy()[:, 0, :]
        greedy = np.argmax(q, axis=-1)
        explore = rng.random(len(env_rows)) < epsilon
        actions = np.where(explore, random_available(obs.available, rng), greedy)

        # 2. Step the environment and store the transitions
        chosen_before = ~obs.available & train_cands.valid[env_rows]
        next_obs, rewards, dones, info = env.step(actions)
        rb.add(env_rows, chosen_before, obs.slot, actions, rewards, dones)
        obs = next_obs
        if dones.all():
            episode_scores.extend(info["list_scores"].tolist())
            env_rows, obs = reset()

        # 3. Learn from replayed transitions: Huber loss on the TD error against the target network
        if global_step >= config.learning_starts and global_step % config.train_frequency == 0:
            loss, q_mean = train_step(*rb.sample(config.batch_size, rng))
            losses.append(float(loss))
            q_means.append(float(q_mean))
            gradient_steps += 1
            if gradient_steps % config.target_network_frequency == 0:
                update_target()

        # 4. Evaluate the greedy policy
        if (global_step + 1) % config.eval_frequency == 0 or global_step + 1 == config.total_steps:
            metrics = {
                "global_step": float(global_step + 1),
                "loss/td": float(np.mean(losses)) if losses else float("nan"),
                "q_values": float(np.mean(q_means)) if q_means else float("nan"),
                "epsilon": float(epsilon),
                "charts/episodic_return": float(np.mean(episode_scores)) if episode_scores else float("nan"),
                "val/mean_reward": validate(),
                "val/ref_mean_reward": val_ref_reward,
                "val/random_mean_reward": val_random_reward,
                "time/elapsed": time.time() - start_time,
            }
            history.append(metrics)
            losses, q_means, episode_scores = [], [], []
            if progress is not None:
                progress(metrics)

    return DQNResult(
        arrays=scorer_arrays(q_network, C),
        history=history,
        metrics=dict(history[-1]) if history else {},
        config=asdict(config),
    )
