"""PPO fine-tuning of a slate policy against the reward model, with a KL penalty to the reference recommender."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from training.ml.env import SlateEnv, user_state
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
class PPOConfig:
    """Hyperparameters of `train_ppo`; the defaults are sized for MovieLens-small on two CPU cores."""

    iterations: int = 30
    """rollout + update rounds"""
    users_per_iteration: int = 256
    """slates built per rollout (one episode per sampled training user)"""
    n_candidates: int = 50
    """candidate set per user: the reference recommender's top-C unrated movies (the experiment's
    choice, as the rerankers'; 200 took twice the time, docs/experiment.md)"""
    slate_size: int = 10
    """K, movies per slate (= steps per episode)"""
    learning_rate: float = 1e-3
    """Adam learning rate"""
    gamma: float = 1.0
    """discount across the slots of a slate (the list score already discounts positions)"""
    gae_lambda: float = 0.95
    """lambda of generalised advantage estimation"""
    clip_coef: float = 0.2
    """PPO surrogate clipping range of the probability ratio"""
    cliprange_value: float = 0.2
    """how far the value may move from its rollout value before the value loss is clipped"""
    vf_coef: float = 0.5
    """weight of the value loss"""
    ent_coef: float = 0.001
    """weight of the entropy bonus"""
    max_grad_norm: float = 0.5
    """global gradient-norm clip"""
    update_epochs: int = 4
    """passes over each rollout"""
    minibatches: int = 4
    """minibatches per pass (split by episode)"""
    init_kl_coef: float = 0.2
    """starting weight of the per-step KL penalty to the reference policy"""
    target_kl_for_controller: float | None = 4.0
    """KL per slate (nats) the adaptive controller aims at; None keeps kl_coef fixed. Chosen from the
    over-optimisation curve on validation users (``manage.py overoptimisation --seeds 0-2``): the target
    whose annotators'-taste gain is highest among those that stay within the gate's 10 nats
    (docs/experiment.md; 3.0 before, docs/experiment/earlier.md)"""
    kl_horizon: int | None = None
    """episodes over which the adaptive controller corrects a KL error (Ziegler et al. use 10k); None
    is a twentieth of the episode budget (iterations x users_per_iteration), so the coefficient can
    move by a factor of e^4 either way within the budget (at most 13% per iteration). A fixed 2,000
    let it fall only from 0.2 to 0.09 in 7,680 episodes: targets of 3, 8 and 20 nats all ended near
    2.5; a tenth of the budget still stopped targets of 16 and 32 at 10 (docs/experiment.md)"""
    target_kl: float | None = 0.05
    """stop the update epochs early once the approximate KL to the rollout policy exceeds this"""
    ref_temperature: float = 0.31
    """reference policy = softmax(ref_score / ref_temperature) over the remaining candidates; the
    served recommender is its greedy top-k, so the reference stays close to that ranking (at 1.0
    it is so flat that a small KL already reshuffles the top of the list). 0.25 was chosen before
    the recommender's item-item term, which widened the spread of its top scores by a quarter;
    0.31 keeps the reference as sharp as it was (docs/experiment/earlier.md)"""
    hidden_sizes: tuple[int, ...] = (64, 32)
    """widths of the shared per-candidate MLP"""
    val_fraction: float = 0.1
    """share of users held out to measure the greedy policy's reward"""
    max_val_users: int = 256
    """cap on held-out users, to keep the per-iteration evaluation cheap"""
    seed: int = 1
    """seeds numpy, Python and TensorFlow"""


@dataclass
class PPOResult:
    """What a PPO run produces: servable weights, its learning curves and how it was configured."""

    arrays: dict[str, np.ndarray]
    """trained weights and constants, servable by `policy.NumpySlatePolicy.from_arrays(arrays, kind="ppo")`"""
    history: list[dict[str, float]]
    """one metrics dict per iteration"""
    metrics: dict[str, float]
    """the last iteration's metrics"""
    config: dict[str, Any] = field(default_factory=dict)
    """the PPOConfig used, as a dict (includes the seed)"""


class AdaptiveKLController:
    """Adaptive KL controller of Ziegler et al. 2019 ("Fine-Tuning Language Models from Human Preferences")."""

    def __init__(self, init_kl_coef: float, target: float, horizon: int):
        self.value = init_kl_coef
        self.target = target
        self.horizon = horizon

    def update(self, current_kl: float, n_steps: int) -> None:
        proportional_error = np.clip(current_kl / self.target - 1, -0.2, 0.2)
        mult = 1 + proportional_error * n_steps / self.horizon
        self.value = float(self.value * mult)


class FixedKLController:
    """Keeps the KL coefficient constant."""

    def __init__(self, kl_coef: float):
        self.value = kl_coef

    def update(self, current_kl: float, n_steps: int) -> None:
        pass


def whiten(values: np.ndarray) -> np.ndarray:
    return (values - values.mean()) / np.sqrt(values.var() + 1e-8)


def train_ppo(
    users: Sequence[Any],
    reference,
    reward_model,
    item_features: np.ndarray,
    config: PPOConfig | None = None,
    progress: Callable[[dict[str, float]], None] | None = None,
) -> PPOResult:
    """Fine-tune a slate policy with PPO; `progress(metrics)` is called after every iteration."""
    config = config or PPOConfig()
    seed_everything(config.seed)
    tf = import_tensorflow()
    import keras

    rng = np.random.default_rng(config.seed)
    start_time = time.time()
    K = config.slate_size

    # 0. Environment, candidate sets (computed once), held-out users, policy and optimiser
    env = SlateEnv(
        reference,
        reward_model,
        item_features,
        n_candidates=config.n_candidates,
        slate_size=K,
        ref_temperature=config.ref_temperature,
        incremental_rewards=False,
    )
    train_rows, val_rows = split_users(len(users), config.val_fraction, config.max_val_users, rng)
    train_users = [users[i] for i in train_rows]
    val_users = [users[i] for i in val_rows]
    train_cands = env.candidate_set(train_users)
    val_cands = env.candidate_set(val_users) if val_users else None

    agent = build_scorer_for(
        train_users,
        item_features,
        hidden_sizes=config.hidden_sizes,
        slate_size=K,
        ref_logit_scale=1.0 / config.ref_temperature,
    )
    optimizer = keras.optimizers.Adam(learning_rate=config.learning_rate, epsilon=1e-5)
    optimizer.build(agent.trainable_variables)
    if config.target_kl_for_controller is None:
        kl_ctl = FixedKLController(config.init_kl_coef)
    else:
        horizon = config.kl_horizon or max(1, config.iterations * config.users_per_iteration // 20)
        kl_ctl = AdaptiveKLController(config.init_kl_coef, config.target_kl_for_controller, horizon)

    user_matrix = tf.constant(np.stack([user_state(u) for u in train_users]))
    feature_table = tf.constant(np.asarray(item_features, np.float32))
    cand_items = tf.constant(train_cands.items)
    cand_ref_scores = tf.constant(train_cands.ref_scores)

    encode, score, _ = compiled_scorer(tf, agent)

    @tf.function(autograph=False)
    def train_minibatch(rows, chosen_mean, available, actions, logprobs, advantages, returns, values):
        inputs = {
            "user": tf.gather(user_matrix, rows),
            "candidate_features": tf.gather(feature_table, tf.gather(cand_items, rows)),
            "ref_scores": tf.gather(cand_ref_scores, rows),
            "chosen_mean": chosen_mean,
            "slot": tf.broadcast_to(tf.range(K, dtype=tf.float32)[None, :], tf.shape(actions)),
            "available": available,
        }
        with tf.GradientTape() as tape:
            outputs = agent(inputs, training=True)
            all_logprobs = tf.nn.log_softmax(outputs["logits"], axis=-1)  # [b, K, C]
            newlogprob = tf.gather(all_logprobs, actions, batch_dims=2)
            entropy = -tf.reduce_sum(tf.exp(all_logprobs) * all_logprobs, axis=-1)
            newvalue = outputs["value"]

            logratio = newlogprob - logprobs
            ratio = tf.exp(logratio)
            approx_kl = tf.reduce_mean((ratio - 1) - logratio)
            clipfrac = tf.reduce_mean(tf.cast(tf.abs(ratio - 1) > config.clip_coef, tf.float32))

            pg_loss1 = -advantages * ratio
            pg_loss2 = -advantages * tf.clip_by_value(ratio, 1 - config.clip_coef, 1 + config.clip_coef)
            pg_loss = tf.reduce_mean(tf.maximum(pg_loss1, pg_loss2))

            v_loss_unclipped = (newvalue - returns) ** 2
            v_clipped = values + tf.clip_by_value(
                newvalue - values, -config.cliprange_value, config.cliprange_value
            )
            v_loss_clipped = (v_clipped - returns) ** 2
            v_loss = 0.5 * tf.reduce_mean(tf.maximum(v_loss_unclipped, v_loss_clipped))

            entropy_loss = tf.reduce_mean(entropy)
            loss = pg_loss - config.ent_coef * entropy_loss + v_loss * config.vf_coef
        grads = tape.gradient(loss, agent.trainable_variables)
        grads, _ = tf.clip_by_global_norm(grads, config.max_grad_norm)
        optimizer.apply_gradients(zip(grads, agent.trainable_variables, strict=True))
        return {"pg_loss": pg_loss, "v_loss": v_loss, "approx_kl": approx_kl, "clipfrac": clipfrac}

    def rollout(rows: np.ndarray):
        obs = env.reset([train_users[i] for i in rows], train_cands.take(rows))
        batch = len(rows)
        chosen_mean = np.zeros((batch, K, env.item_features.shape[1]), np.float32)
        available = np.zeros((batch, K, config.n_candidates), bool)
        actions = np.zeros((batch, K), np.int32)
        logprobs = np.zeros((batch, K), np.float32)
        ref_logprobs = np.zeros((batch, K), np.float32)
        values = np.zeros((batch, K), np.float32)
        entropy = np.zeros((batch, K), np.float32)
        encoded = encode(obs.episode_inputs())  # the policy is fixed during a rollout
        for t in range(K):
            chosen_mean[:, t], available[:, t] = obs.chosen_mean, obs.available
            outputs = score(encoded, obs.step_inputs())
            logits = outputs["logits"].numpy()[:, 0, :].astype(np.float64)
            all_logprobs = logits - logits.max(-1, keepdims=True)
            all_logprobs -= np.log(np.exp(all_logprobs).sum(-1, keepdims=True))
            # Gumbel-max: a sample from softmax(logits), masked candidates included at ~-1e9
            action = np.argmax(logits + rng.gumbel(size=logits.shape), axis=-1)
            actions[:, t] = action
            logprobs[:, t] = all_logprobs[np.arange(batch), action]
            entropy[:, t] = -(np.exp(all_logprobs) * all_logprobs).sum(-1)
            values[:, t] = outputs["value"].numpy()[:, 0]
            obs, _, _, info = env.step(action)
            ref_logprobs[:, t] = info["ref_logprobs"]
        scores = info["list_scores"].astype(np.float32)
        return chosen_mean, available, actions, logprobs, ref_logprobs, values, entropy, scores

    def validate() -> float:
        if not val_users:
            return float("nan")
        return mean_list_score(
            reward_model, val_users, greedy_slates(encode, score, env, val_users, val_cands)
        )

    # The value head starts at the mean list score of reference rollouts, so its clipped loss
    # does not need dozens of iterations to climb from zero to the reward model's scale.
    warmup_rows = rng.choice(
        len(train_users), size=min(len(train_users), config.users_per_iteration), replace=False
    )
    agent.value_head.bias.assign([float(rollout(warmup_rows)[-1].mean())])
    val_ref_reward = (
        mean_list_score(reward_model, val_users, val_cands.items[:, :K]) if val_users else float("nan")
    )

    history: list[dict[str, float]] = []
    for iteration in range(1, config.iterations + 1):
        # 1. Rollout: every sampled user gets a slate sampled from the current policy
        rows = rng.choice(
            len(train_users),
            size=config.users_per_iteration,
            replace=len(train_users) < config.users_per_iteration,
        )
        rollout_start = time.time()
        chosen_mean, available, actions, logprobs, ref_logprobs, values, entropy, scores = rollout(rows)
        rollout_seconds = time.time() - rollout_start

        # 2. Rewards: a KL penalty at every step, the reward model's list score at the last one
        kl = logprobs - ref_logprobs
        non_score_reward = -kl_ctl.value * kl
        rewards = non_score_reward.copy()
        rewards[:, -1] += scores

        # 3. Generalised advantage estimation
        advantages = np.zeros_like(rewards)
        lastgaelam = np.zeros(len(rows), np.float32)
        for t in reversed(range(K)):
            nextvalues = values[:, t + 1] if t < K - 1 else 0.0
            delta = rewards[:, t] + config.gamma * nextvalues - values[:, t]
            lastgaelam = delta + config.gamma * config.gae_lambda * lastgaelam
            advantages[:, t] = lastgaelam
        returns = (advantages + values).astype(np.float32)
        advantages = whiten(advantages).astype(np.float32)

        # 4. PPO update: several epochs of minibatches of whole episodes, stopped early on target_kl
        update_start = time.time()
        minibatch_size = max(1, len(rows) // config.minibatches)
        stats = []
        for _epoch in range(config.update_epochs):
            order = rng.permutation(len(rows))
            for start in range(0, len(rows) - minibatch_size + 1, minibatch_size):
                mb = order[start : start + minibatch_size]
                out = train_minibatch(
                    rows[mb].astype(np.int32),
                    chosen_mean[mb],
                    available[mb],
                    actions[mb],
                    logprobs[mb],
                    advantages[mb],
                    returns[mb],
                    values[mb],
                )
                stats.append({k: float(v) for k, v in out.items()})
            if config.target_kl is not None and stats[-1]["approx_kl"] > config.target_kl:
                break

        update_seconds = time.time() - update_start

        # 5. Adaptive KL control on the mean KL per slate
        mean_kl = float(kl.sum(axis=1).mean())
        kl_coef = kl_ctl.value
        kl_ctl.update(mean_kl, len(rows))

        # 6. Metrics
        mean_non_score_reward = float(non_score_reward.sum(axis=1).mean())
        metrics = {
            "iteration": float(iteration),
            "objective/kl": mean_kl,
            "objective/entropy": float(entropy.sum(axis=1).mean()),
            "objective/non_score_reward": mean_non_score_reward,
            "objective/rlhf_reward": float(scores.mean()) + mean_non_score_reward,
            "objective/scores": float(scores.mean()),
            "objective/kl_coef": float(kl_coef),
            "policy/approxkl": float(np.mean([s["approx_kl"] for s in stats])),
            "policy/clipfrac": float(np.mean([s["clipfrac"] for s in stats])),
            "loss/policy": float(np.mean([s["pg_loss"] for s in stats])),
            "loss/value": float(np.mean([s["v_loss"] for s in stats])),
            "val/mean_reward": validate(),
            "val/ref_mean_reward": val_ref_reward,
            "time/rollout": rollout_seconds,
            "time/update": update_seconds,
            "time/elapsed": time.time() - start_time,
        }
        history.append(metrics)
        if progress is not None:
            progress(metrics)

    return PPOResult(
        arrays=scorer_arrays(agent, config.n_candidates),
        history=history,
        metrics=dict(history[-1]) if history else {},
        config=asdict(config),
    )
