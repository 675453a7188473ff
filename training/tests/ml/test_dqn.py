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


@pytest.fixture(scope="module")
def trained():
    problem = make_problem(n_users=200)  # 20 held out
    config = DQNConfig(
        total_steps=100,
        num_envs=32,
        n_candidates=50,
        slate_size=5,
        batch_size=128,
        learning_starts=10,
        eval_frequency=50,
        hidden_sizes=(32, 32),
        seed=0,
    )
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
