"""Off-policy estimates recover a candidate's true value from a logging policy's explored lists."""

from __future__ import annotations

import numpy as np
import pytest

from training.ml.ope import (
    LoggedList,
    dcg_weights,
    item_position_ips,
    plackett_luce_sample,
    position_marginals,
)


def test_gumbel_top_k_draws_follow_plackett_luce():
    scores = np.array([2.0, 1.0, 0.0])
    rng = np.random.default_rng(0)
    firsts = np.bincount([plackett_luce_sample(scores, 1, 1.0, rng)[0] for _ in range(20_000)], minlength=3)
    z = (scores - scores.mean()) / scores.std()
    expected = np.exp(z) / np.exp(z).sum()
    assert firsts / firsts.sum() == pytest.approx(expected, abs=0.01)
    marginals = position_marginals(scores, 3, 1.0, np.random.default_rng(1), draws=20_000)
    assert marginals[:, 0] == pytest.approx(expected, abs=0.01)
    assert marginals.sum(axis=0) == pytest.approx(np.ones(3), abs=1e-9)  # each position shows one movie
    assert marginals.sum(axis=1) == pytest.approx(np.ones(3), abs=1e-9)  # k = n: each movie shown once


def simulate(n_users: int, seed: int):
    """A logging policy exploring over 15 candidates whose rewards are Bernoulli(q_i)."""
    rng = np.random.default_rng(seed)
    q = np.linspace(0.9, 0.05, 15)
    scores = q + rng.normal(0, 0.1, 15)  # the logging policy's scores: close to q, not equal
    marginals = position_marginals(scores, 5, 0.7, rng, draws=20_000)
    logs = []
    for _ in range(n_users):
        shown = plackett_luce_sample(scores, 5, 0.7, rng)
        logs.append(
            LoggedList(
                movies=shown.tolist(),
                propensities=[marginals[movie, j] for j, movie in enumerate(shown)],
                rewards=(rng.random(5) < q[shown]).astype(float).tolist(),
            )
        )
    return q, logs


@pytest.mark.parametrize(
    ("self_normalised", "candidates"),
    [
        (True, [list(range(5)), list(range(5, 10)), list(range(10, 15))]),
        # Clipped IPS is biased low where the logging policy rarely shows the candidate's movies
        # (movies 10-14 are matched 197 times in 20,000 positions); SNIPS is not: it is the default.
        (False, [list(range(5)), list(range(5, 10))]),
    ],
)
def test_the_estimate_covers_the_true_value_and_ranks_candidates_right(self_normalised, candidates):
    q, logs = simulate(4000, seed=3)
    weights = dcg_weights(5)
    for candidate in candidates:
        truth = float(q[candidate] @ weights)
        result = item_position_ips(
            logs, [candidate] * len(logs), k=5, self_normalised=self_normalised, rounds=300
        )
        assert result["estimate_low"] - 0.02 <= truth <= result["estimate_high"] + 0.02
        assert result["matches"] > 0 and result["n"] == 4000
    good = item_position_ips(logs, [candidates[0]] * len(logs), k=5, rounds=300)
    bad = item_position_ips(logs, [candidates[-1]] * len(logs), k=5, rounds=300)
    assert good["difference_low"] > 0 > bad["difference_high"]  # better and worse than the logging policy


def test_a_candidate_that_never_shows_a_logged_movie_has_no_evidence():
    _, logs = simulate(50, seed=4)
    result = item_position_ips(logs, [[99, 98, 97, 96, 95]] * len(logs), k=5, rounds=50)
    assert result["matches"] == 0 and result["ess"] == 0.0 and result["estimate"] == 0.0
    assert item_position_ips([], [], k=5)["n"] == 0
