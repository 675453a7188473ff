"""DQN on the slate environment, against the same "hidden gems" reward model as PPO."""

from __future__ import annotations

import numpy as np
import pytest

from training.ml.dqn import DQNConfig, ReplayBuffer, linear_schedule, train_dqn
from training.tests.ml.test_env import make_problem

METRIC_KEYS = {
    "loss/td",
    "q_values",
    "epsilon",
    "val/mean_reward",
    "val/random_mean_reward",
    "val/ref_mean_reward",
}


def tiny_config(**overrides) -> DQNConfig:
    defaults = dict(
        total_steps=100,
        num_envs=32,
        n_candidates=50,
        slate_size=5,
        batch_size=128,
        learning_starts=10,
        eval_frequency=50,
        hidden_sizes=(32, 32),
        kl_coef=0.0,  # plain DQN
        seed=0,
    )
    return DQNConfig(**{**defaults, **overrides})


@pytest.fixture(scope="module")
def problem():
    return make_problem(n_users=200)  # 20 held out


def final_rewards(problem, config: DQNConfig) -> dict[str, float]:
    result = train_dqn(problem.users, problem.reference, problem.reward_model, problem.item_features, config)
    return result.metrics


@pytest.fixture(scope="module")
def trained(problem):
    config = tiny_config()
    logged = []
    result = train_dqn(
        problem.users, problem.reference, problem.reward_model, problem.item_features, config, logged.append
    )
    return result, logged


def test_it_logs_td_loss_q_values_epsilon_and_validation_reward(trained):
    result, logged = trained
    assert len(result.history) == len(logged) == 2
    for metrics in result.history:
        assert metrics.keys() >= METRIC_KEYS
        assert all(np.isfinite(metrics[key]) for key in METRIC_KEYS)
    epsilons = [m["epsilon"] for m in result.history]
    assert epsilons == sorted(epsilons, reverse=True) and epsilons[-1] == pytest.approx(0.05)


def test_it_beats_a_random_slate_and_the_reference(trained):
    final = trained[0].metrics
    assert final["val/mean_reward"] > final["val/random_mean_reward"] + 0.5
    assert final["val/mean_reward"] > final["val/ref_mean_reward"] + 0.5


def test_its_q_values_stay_on_the_scale_of_the_list_score(trained):
    # the best 5-movie list is worth sum(1 / log2(i + 2)) < 3; diverging TD targets would blow past it
    assert all(abs(m["q_values"]) < 4.0 for m in trained[0].history)


def test_it_exports_a_q_network_without_a_reference_term(trained):
    arrays = trained[0].arrays
    assert float(arrays["ref_logit_scale"]) == 0.0
    assert "value_head/kernel" not in arrays


def test_with_a_kl_coefficient_the_untrained_agent_is_the_reference(problem):
    metrics = final_rewards(problem, tiny_config(kl_coef=0.05, total_steps=5, eval_frequency=5))
    assert metrics["val/mean_reward"] == pytest.approx(metrics["val/ref_mean_reward"], abs=1e-6)


def test_the_kl_coefficient_trades_reward_for_staying_near_the_reference(problem):
    gains = {beta: final_rewards(problem, tiny_config(kl_coef=beta)) for beta in (0.05, 1.0)}
    gain = {beta: m["val/mean_reward"] - m["val/ref_mean_reward"] for beta, m in gains.items()}
    assert gain[0.05] > 0.5  # a light penalty still finds much better lists
    assert abs(gain[1.0]) < 0.2  # a heavy one keeps close to the reference's lists
    assert gain[0.05] > gain[1.0] + 0.5


def test_epsilon_decays_linearly_then_stays_at_its_floor():
    assert linear_schedule(1.0, 0.1, 10, 0) == 1.0
    assert linear_schedule(1.0, 0.1, 10, 5) == pytest.approx(0.55)
    assert linear_schedule(1.0, 0.1, 10, 50) == pytest.approx(0.1)


def test_the_replay_buffer_overwrites_the_oldest_transitions():
    buffer = ReplayBuffer(capacity=4, n_candidates=3)
    for start in (0, 3):
        rows = np.arange(start, start + 3)
        buffer.add(rows, np.zeros((3, 3), bool), rows, rows % 3, rows.astype(float), rows == 5)
    assert buffer.size == 4
    assert sorted(buffer.rows.tolist()) == [2, 3, 4, 5]
    rows, chosen, _, _, _, dones = buffer.sample(16, np.random.default_rng(0))
    assert set(rows.tolist()) <= {2, 3, 4, 5} and chosen.shape == (16, 3)
    np.testing.assert_array_equal(dones, rows == 5)
