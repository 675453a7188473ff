"""NumPy serving of slate policies: same numbers as Keras, valid slates, consistent list probabilities."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from training.ml.env import SlateEnv
from training.ml.policy import NumpySlatePolicy
from training.ml.seeding import import_tensorflow
from training.ml.slate_scorer import build_scorer_for, compiled_scorer, greedy_slates, scorer_arrays
from training.tests.ml.test_env import make_problem

N_CANDIDATES, SLATE_SIZE = 30, 6


@pytest.fixture(scope="module")
def problem():
    return make_problem(n_users=12)


def make_scorer(problem, *, value_head=True, ref_logit_scale=2.0, perturb=True, seed=0):
    """A Keras scorer with random (not zero-initialised) weights, so every term of the logit matters."""
    model = build_scorer_for(
        problem.users,
        problem.item_features,
        hidden_sizes=(16, 8),
        slate_size=SLATE_SIZE,
        ref_logit_scale=ref_logit_scale,
        value_head=value_head,
    )
    rng = np.random.default_rng(seed)
    if perturb:
        for weight in model.trainable_weights:
            weight.assign(rng.normal(scale=0.3, size=weight.shape).astype(np.float32))
    return model


@pytest.fixture(scope="module")
def ppo_arrays(problem):
    return scorer_arrays(make_scorer(problem), N_CANDIDATES)


def make_env(problem, ref_temperature=1.0):
    return SlateEnv(
        problem.reference,
        problem.reward_model,
        problem.item_features,
        n_candidates=N_CANDIDATES,
        slate_size=SLATE_SIZE,
        ref_temperature=ref_temperature,
    )


def batch_inputs(problem, n_steps=3, seed=1):
    """Scorer inputs for every user at n_steps decision points with random partial slates."""
    rng = np.random.default_rng(seed)
    obs = make_env(problem).reset(problem.users)
    batch = len(problem.users)
    chosen = np.zeros((batch, n_steps, N_CANDIDATES), bool)
    for t in range(1, n_steps):
        chosen[:, t] = chosen[:, t - 1]
        chosen[np.arange(batch), t, rng.integers(0, N_CANDIDATES, batch)] = True
    counts = chosen.sum(axis=-1, keepdims=True)
    chosen_mean = np.einsum("btc,bcf->btf", chosen, obs.candidate_features) / np.maximum(counts, 1)
    return {
        "user": obs.user,
        "candidate_features": obs.candidate_features,
        "ref_scores": obs.ref_scores,
        "chosen_mean": chosen_mean.astype(np.float32),
        "slot": counts[..., 0].astype(np.float32),
        "available": ~chosen,
    }


@pytest.mark.parametrize("kind", ["ppo", "qlearning"])
def test_the_numpy_forward_equals_the_keras_forward(problem, kind):
    model = make_scorer(problem, value_head=kind == "ppo", ref_logit_scale=2.0 if kind == "ppo" else 0.0)
    inputs = batch_inputs(problem)
    expected = {name: np.asarray(value) for name, value in model(inputs).items()}
    served = NumpySlatePolicy.from_arrays(scorer_arrays(model, N_CANDIDATES), kind=kind).forward(inputs)
    assert served.keys() == expected.keys()
    np.testing.assert_allclose(served["logits"], expected["logits"], rtol=1e-4, atol=1e-4)
    if kind == "ppo":
        np.testing.assert_allclose(served["value"], expected["value"], rtol=1e-4, atol=1e-4)


def test_greedy_serving_builds_the_same_slates_as_the_training_environment(problem):
    model = make_scorer(problem)
    env = make_env(problem)
    encode, score, _ = compiled_scorer(import_tensorflow(), model)
    expected = greedy_slates(encode, score, env, problem.users, None)
    policy = NumpySlatePolicy.from_arrays(scorer_arrays(model, N_CANDIDATES), kind="ppo")
    for user, slate in zip(problem.users, expected, strict=True):
        items, scores = policy.recommend(user, problem.reference, problem.item_features, k=SLATE_SIZE)
        np.testing.assert_array_equal(items, slate)
        assert scores.shape == (SLATE_SIZE,) and np.isfinite(scores).all()


@pytest.mark.parametrize("k", [SLATE_SIZE, 2 * SLATE_SIZE])
def test_served_slates_have_no_rated_and_no_duplicate_movies(problem, ppo_arrays, k):
    policy = NumpySlatePolicy.from_arrays(ppo_arrays, kind="ppo")
    rng = np.random.default_rng(0)
    for user in problem.users:
        for items in (
            policy.recommend(user, problem.reference, problem.item_features, k=k)[0],
            policy.sample(user, problem.reference, problem.item_features, k=k, rng=rng)[0],
        ):
            assert len(items) == k
            assert len(set(items.tolist())) == k
            assert not np.isin(items, user.history.item_idx).any()


def test_the_probability_of_a_sampled_slate_is_the_product_of_its_step_probabilities(problem, ppo_arrays):
    policy = NumpySlatePolicy.from_arrays(ppo_arrays, kind="ppo")
    rng = np.random.default_rng(3)
    user = problem.users[0]
    for temperature in (1.0, 0.5):
        items, probs = policy.sample(
            user, problem.reference, problem.item_features, k=5, rng=rng, temperature=temperature
        )
        assert ((probs > 0) & (probs <= 1)).all()
        logprob = policy.logprob_of_slate(
            user, problem.reference, problem.item_features, items, temperature=temperature
        )
        assert logprob == pytest.approx(np.log(probs).sum(), rel=1e-6)


def test_the_probabilities_of_every_possible_slate_sum_to_one():
    small = make_problem(n_users=1, n_items=25)  # 20 rated: 5 candidates
    model = make_scorer(small)
    policy = NumpySlatePolicy.from_arrays(scorer_arrays(model, N_CANDIDATES), kind="qlearning")
    user = small.users[0]
    candidates = np.setdiff1d(np.arange(25), user.history.item_idx)
    total = sum(
        np.exp(policy.logprob_of_slate(user, small.reference, small.item_features, np.array(slate)))
        for slate in itertools.permutations(candidates, 2)
    )
    assert total == pytest.approx(1.0, rel=1e-6)


def test_a_slate_with_a_rated_or_repeated_movie_is_impossible_unless_rated_movies_are_allowed(
    problem, ppo_arrays
):
    policy = NumpySlatePolicy.from_arrays(ppo_arrays, kind="ppo")
    user = problem.users[0]
    top, _ = problem.reference.top_k(user.history, N_CANDIDATES, exclude_rated=False)
    rated = int(top[np.isin(top, user.history.item_idx)][0])
    unrated = int(top[~np.isin(top, user.history.item_idx)][0])
    args = (user, problem.reference, problem.item_features)
    assert policy.logprob_of_slate(*args, np.array([rated, unrated])) == -np.inf
    assert policy.logprob_of_slate(*args, np.array([unrated, unrated])) == -np.inf
    assert np.isfinite(policy.logprob_of_slate(*args, np.array([rated, unrated]), exclude_rated=False))


def test_an_untrained_ppo_policy_is_the_reference_policy(problem):
    model = make_scorer(problem, ref_logit_scale=1 / 0.5, perturb=False)  # zero-initialised heads
    policy = NumpySlatePolicy.from_arrays(scorer_arrays(model, N_CANDIDATES), kind="ppo")
    env = make_env(problem, ref_temperature=0.5)
    rng = np.random.default_rng(0)
    obs = env.reset(problem.users[:1])
    expected = 0.0
    for _ in range(SLATE_SIZE):
        action = np.array([rng.choice(np.flatnonzero(obs.available[0]))])
        obs, _, _, info = env.step(action)
        expected += float(info["ref_logprobs"][0])
    served = policy.logprob_of_slate(
        problem.users[0], problem.reference, problem.item_features, env.slates[0]
    )
    assert served == pytest.approx(expected, rel=1e-4)


def test_it_refuses_an_unknown_kind(ppo_arrays):
    with pytest.raises(ValueError):
        NumpySlatePolicy.from_arrays(ppo_arrays, kind="bandit")
