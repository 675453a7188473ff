"""PPO against a reward model that loves movies the reference recommender ranks low."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from training.ml.env import SlateEnv
from training.ml.ppo import AdaptiveKLController, FixedKLController, PPOConfig, train_ppo
from training.tests.ml.test_env import make_problem

METRIC_KEYS = {
    "objective/kl",
    "objective/rlhf_reward",
    "objective/non_score_reward",
    "objective/entropy",
    "objective/kl_coef",
    "objective/scores",
    "policy/approxkl",
    "policy/clipfrac",
    "loss/policy",
    "loss/value",
    "val/mean_reward",
    "val/ref_mean_reward",
}


def tiny_config(**overrides) -> PPOConfig:
    defaults = dict(
        iterations=10,
        users_per_iteration=64,
        n_candidates=50,
        slate_size=5,
        init_kl_coef=0.1,
        target_kl_for_controller=1.0,
        kl_horizon=200,
        ref_temperature=1.0,
        hidden_sizes=(32, 32),
        seed=0,
    )
    return PPOConfig(**{**defaults, **overrides})


@pytest.fixture(scope="module")
def problem():
    return make_problem(n_users=100)


@pytest.fixture(scope="module")
def trained(problem):
    logged = []
    result = train_ppo(
        problem.users,
        problem.reference,
        problem.reward_model,
        problem.item_features,
        tiny_config(),
        logged.append,
    )
    return result, logged


def test_it_logs_every_metric_at_every_iteration(trained):
    result, logged = trained
    assert len(result.history) == len(logged) == 10
    for metrics in result.history:
        assert metrics.keys() >= METRIC_KEYS
        assert all(np.isfinite(metrics[key]) for key in METRIC_KEYS)
    assert result.metrics == result.history[-1]
    assert result.config["seed"] == 0


def test_its_first_rollout_is_the_reference_policy(trained):
    first = trained[0].history[0]
    assert abs(first["objective/kl"]) < 1e-3
    assert abs(first["objective/non_score_reward"]) < 1e-3


def test_it_raises_the_rlhf_reward_while_the_kl_stays_bounded(trained):
    history = trained[0].history
    first = np.mean([m["objective/rlhf_reward"] for m in history[:3]])
    last = np.mean([m["objective/rlhf_reward"] for m in history[-3:]])
    assert last > first + 0.2
    assert history[-1]["val/mean_reward"] > history[-1]["val/ref_mean_reward"] + 0.3
    assert 0.1 < history[-1]["objective/kl"] < 15.0


def test_it_exports_weights_that_moved_away_from_zero(trained):
    arrays = trained[0].arrays
    assert np.abs(arrays["candidate_head/kernel"]).max() > 0
    assert np.abs(arrays["query_head/kernel"]).max() > 0
    assert float(arrays["ref_logit_scale"]) == 1.0
    assert int(arrays["n_candidates"]) == 50 and int(arrays["slate_size"]) == 5


def test_a_huge_kl_coefficient_keeps_the_policy_at_the_reference(problem, trained):
    result = train_ppo(
        problem.users,
        problem.reference,
        problem.reward_model,
        problem.item_features,
        tiny_config(iterations=3, init_kl_coef=100.0, target_kl_for_controller=None),
    )
    # the first update sees no penalty yet (its rollout has KL 0); the penalty then holds the policy
    final_kl = result.history[-1]["objective/kl"]
    assert all(abs(m["objective/kl"]) < 0.3 for m in result.history)
    assert abs(final_kl) < 0.05 * trained[0].history[-1]["objective/kl"]
    assert all(m["objective/kl_coef"] == 100.0 for m in result.history)
    assert result.history[-1]["val/mean_reward"] == pytest.approx(
        result.history[-1]["val/ref_mean_reward"], abs=0.15
    )


def test_the_adaptive_kl_controller_raises_the_coefficient_when_kl_is_above_target():
    controller = AdaptiveKLController(0.2, target=1.0, horizon=1000)
    controller.update(current_kl=5.0, n_steps=100)
    assert controller.value == pytest.approx(0.2 * (1 + 0.2 * 100 / 1000))  # error clipped at +20%


def test_the_adaptive_kl_controller_lowers_the_coefficient_when_kl_is_below_target():
    controller = AdaptiveKLController(0.2, target=1.0, horizon=1000)
    controller.update(current_kl=0.9, n_steps=100)
    assert controller.value == pytest.approx(0.2 * (1 - 0.1 * 100 / 1000))
    fixed = FixedKLController(0.2)
    fixed.update(current_kl=100.0, n_steps=100)
    assert fixed.value == 0.2


def test_the_adaptive_kl_controller_steers_the_kl_coefficient_towards_the_target_kl(trained):
    history = trained[0].history
    assert history[0]["objective/kl_coef"] == 0.1
    for now, after in itertools.pairwise(history):
        moved = after["objective/kl_coef"] - now["objective/kl_coef"]
        assert np.sign(moved) == np.sign(now["objective/kl"] - 1.0)  # penalise more above the target


def test_the_reference_policy_of_the_environment_matches_the_temperature(problem):
    env = SlateEnv(
        problem.reference,
        problem.reward_model,
        problem.item_features,
        n_candidates=50,
        slate_size=5,
        ref_temperature=2.0,
    )
    obs = env.reset(problem.users[:3])
    logprobs = env.ref_logprobs()
    expected = obs.ref_scores / 2.0 - np.log(np.exp(obs.ref_scores / 2.0).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(logprobs, expected, rtol=1e-5)
