"""Tests of the slate environment, plus the tiny synthetic problem the PPO/DQN/policy tests share."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest

from training.ml.env import SlateEnv, ref_log_policy


@dataclass
class History:
    """Stand-in for training.ml.data.History."""

    item_idx: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray


@dataclass
class UserContext:
    """Stand-in for training.ml.user_features.UserContext."""

    history: History
    embedding: np.ndarray
    signals: np.ndarray


class TinyReference:
    """Stand-in for the supervised recommender: dot product of embeddings plus an item bias."""

    def __init__(self, item_embeddings: np.ndarray, item_bias: np.ndarray):
        self.item_embeddings = item_embeddings.astype(np.float32)
        self.item_bias = item_bias.astype(np.float32)
        self.n_items = len(item_embeddings)

    def user_embedding(self, history: History) -> np.ndarray:
        mean = self.item_embeddings[history.item_idx].mean(axis=0)
        return 3.0 * mean / np.linalg.norm(mean)

    def score(self, history: History) -> np.ndarray:
        return self.item_embeddings @ self.user_embedding(history) + self.item_bias

    def top_k(self, history: History, k: int, exclude_rated: bool = True):
        scores = self.score(history)
        if exclude_rated:
            scores[history.item_idx] = -np.inf
        k = min(k, int(np.isfinite(scores).sum()))
        best = np.argpartition(-scores, k - 1)[:k]
        best = best[np.argsort(-scores[best], kind="stable")]
        return best.astype(np.int64), scores[best]


class GemRewardModel:
    """Stand-in reward model: every user loves the "hidden gems" the reference ranks low.

    An item is worth 1 if it is a gem, 0.1 otherwise; the list score discounts positions by
    1 / log2(position + 2), like DCG.
    """

    def __init__(self, gems: np.ndarray):
        self.gems = gems

    def item_rewards(self, ctx: UserContext, item_idx: np.ndarray) -> np.ndarray:
        return np.where(self.gems[np.asarray(item_idx)], 1.0, 0.1)

    def list_score(self, ctx: UserContext, slate: np.ndarray) -> float:
        slate = np.asarray(slate)
        discounts = 1.0 / np.log2(np.arange(len(slate)) + 2)
        return float(np.sum(self.item_rewards(ctx, slate) * discounts))


def make_problem(
    n_users: int = 64, n_items: int = 300, dim: int = 8, gem_penalty: float = 0.5, seed: int = 0
):
    """Users, a reference recommender, a reward model preferring items the reference ranks low."""
    rng = np.random.default_rng(seed)
    embeddings = rng.normal(size=(n_items, dim)).astype(np.float32) / np.sqrt(dim)
    gems = rng.random(n_items) < 0.2
    reference = TinyReference(embeddings, np.where(gems, -gem_penalty, 0.0))
    item_features = np.concatenate(
        [embeddings, gems[:, None].astype(np.float32), rng.random((n_items, 2)).astype(np.float32)], axis=1
    )
    users = []
    for _ in range(n_users):
        rated = rng.choice(n_items, size=20, replace=False)
        history = History(
            rated.astype(np.int32), rng.integers(1, 6, 20).astype(np.float32), np.arange(20, dtype=np.int64)
        )
        users.append(
            UserContext(history, reference.user_embedding(history), rng.normal(size=3).astype(np.float32))
        )
    return SimpleNamespace(
        users=users,
        reference=reference,
        reward_model=GemRewardModel(gems),
        item_features=item_features,
        gems=gems,
    )


@pytest.fixture
def problem():
    return make_problem(n_users=16)


def make_env(problem, incremental_rewards=True, n_candidates=30, slate_size=6):
    return SlateEnv(
        problem.reference,
        problem.reward_model,
        problem.item_features,
        n_candidates=n_candidates,
        slate_size=slate_size,
        ref_temperature=0.5,
        incremental_rewards=incremental_rewards,
    )


def random_available(obs, rng):
    return np.argmax(np.where(obs.available, rng.random(obs.available.shape), -1.0), axis=1)


def test_candidates_are_the_reference_top_unrated_movies(problem):
    env = make_env(problem)
    cands = env.candidate_set(problem.users)
    for row, user in enumerate(problem.users):
        expected, _ = problem.reference.top_k(user.history, 30)
        np.testing.assert_array_equal(cands.items[row], expected)
        assert not np.isin(cands.items[row], user.history.item_idx).any()


def test_an_episode_never_repeats_a_movie_and_masks_chosen_candidates(problem):
    env = make_env(problem)
    rng = np.random.default_rng(0)
    obs = env.reset(problem.users)
    assert obs.available.all() and (obs.slot == 0).all() and not obs.chosen_mean.any()
    chosen = []
    for t in range(env.slate_size):
        action = random_available(obs, rng)
        chosen.append(action)
        obs, _, dones, _ = env.step(action)
        assert (obs.slot == t + 1).all()
        assert dones.all() == (t == env.slate_size - 1)
        for row in range(len(problem.users)):
            assert not obs.available[row, [c[row] for c in chosen]].any()
        assert obs.available.sum(axis=1).tolist() == [env.n_candidates - t - 1] * len(problem.users)
    for slate in env.slates:
        assert len(set(slate.tolist())) == env.slate_size
    np.testing.assert_allclose(
        obs.chosen_mean, problem.item_features[env.slates].mean(axis=1), rtol=1e-5, atol=1e-6
    )


def test_choosing_a_movie_twice_is_rejected(problem):
    env = make_env(problem)
    env.reset(problem.users[:2])
    env.step(np.array([3, 4]))
    with pytest.raises(ValueError):
        env.step(np.array([3, 0]))


def test_incremental_rewards_sum_to_the_list_score(problem):
    env = make_env(problem, incremental_rewards=True)
    rng = np.random.default_rng(1)
    obs = env.reset(problem.users)
    total = np.zeros(len(problem.users))
    for _ in range(env.slate_size):
        obs, rewards, _, info = env.step(random_available(obs, rng))
        total += rewards
    expected = [problem.reward_model.list_score(u, s) for u, s in zip(problem.users, env.slates, strict=True)]
    np.testing.assert_allclose(total, expected, rtol=1e-5)
    np.testing.assert_allclose(info["list_scores"], expected, rtol=1e-6)


def test_terminal_rewards_come_only_at_the_last_step(problem):
    env = make_env(problem, incremental_rewards=False)
    rng = np.random.default_rng(2)
    obs = env.reset(problem.users)
    for t in range(env.slate_size):
        obs, rewards, _, _ = env.step(random_available(obs, rng))
        if t < env.slate_size - 1:
            assert not rewards.any()
    expected = [problem.reward_model.list_score(u, s) for u, s in zip(problem.users, env.slates, strict=True)]
    np.testing.assert_allclose(rewards, expected, rtol=1e-5)


def test_reference_logprobs_are_normalised_over_the_remaining_candidates(problem):
    env = make_env(problem)
    rng = np.random.default_rng(3)
    obs = env.reset(problem.users)
    for _ in range(3):
        logprobs = env.ref_logprobs()
        probs = np.where(obs.available, np.exp(logprobs), 0.0)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-9)
        assert (logprobs[~obs.available] < -1e8).all()
        expected = obs.ref_scores[0, obs.available[0]] / env.ref_temperature
        expected = expected - np.log(np.exp(expected).sum())
        np.testing.assert_allclose(logprobs[0, obs.available[0]], expected, rtol=1e-5)
        action = random_available(obs, rng)
        obs, _, _, info = env.step(action)
        np.testing.assert_allclose(info["ref_logprobs"], logprobs[np.arange(len(action)), action])


def test_users_with_fewer_unrated_movies_than_candidates_get_padding_that_is_never_available():
    small = make_problem(n_users=2, n_items=25)  # 20 rated, so only 5 candidates each
    env = make_env(small, n_candidates=10, slate_size=4)
    cands = env.candidate_set(small.users)
    assert cands.items.shape == (2, 10)
    assert cands.valid.sum(axis=1).tolist() == [5, 5]
    obs = env.reset(small.users, cands)
    assert not obs.available[:, 5:].any()
    np.testing.assert_allclose(np.exp(ref_log_policy(obs.ref_scores, obs.available, 1.0)).sum(axis=1), 1.0)
    with pytest.raises(ValueError):
        make_env(small, n_candidates=10, slate_size=6).reset(small.users)
