from __future__ import annotations

import numpy as np
import pytest

from training.ml.interleaving import (
    A,
    B,
    ClickModel,
    credit,
    detection_power,
    outcome,
    sign_test_p,
    summarise,
    team_draft,
    users_needed,
)


def test_team_draft_takes_turns_and_keeps_each_rankers_order() -> None:
    a, b = [1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1]
    for seed in range(20):
        shown = team_draft(a, b, 4, np.random.default_rng(seed))
        movies, teams = shown.movies.tolist(), shown.teams.tolist()
        assert len(movies) == len(set(movies)) == 4
        assert abs(teams.count(A) - teams.count(B)) <= 1  # a round gives each team one pick
        from_a = [m for m, t in zip(movies, teams, strict=True) if t == A]
        from_b = [m for m, t in zip(movies, teams, strict=True) if t == B]
        assert from_a == sorted(from_a) and from_b == sorted(from_b, reverse=True)  # best first
        assert movies[:2] in ([1, 6], [6, 1])  # each team's first pick, in the coin's order


def test_a_short_ranking_lets_the_other_fill_the_list_and_identical_rankings_give_that_list() -> None:
    shown = team_draft([1], [2, 3, 4], 4, np.random.default_rng(0))
    assert sorted(shown.movies.tolist()) == [1, 2, 3, 4]
    assert team_draft([7, 8, 9], [7, 8, 9], 3, np.random.default_rng(1)).movies.tolist() == [7, 8, 9]
    assert team_draft([], [], 5, np.random.default_rng(0)).movies.tolist() == []


def test_the_coin_is_fair_over_many_users() -> None:
    rng = np.random.default_rng(3)
    first = [team_draft([1, 2], [3, 4], 2, rng).teams[0] for _ in range(4000)]
    assert abs(np.mean(first) - 0.5) < 0.03


def test_credit_goes_to_the_team_that_contributed_the_liked_movie() -> None:
    shown = team_draft([1, 2, 3], [4, 5, 6], 6, np.random.default_rng(0))
    assert credit(shown, {4, 5}) == (0, 2) and outcome(*credit(shown, {4, 5})) == 1
    assert credit(shown, {1}) == (1, 0) and outcome(1, 0) == -1
    assert outcome(*credit(shown, set())) == 0


def test_the_sign_test_and_the_summary() -> None:
    assert sign_test_p(9, 1) == pytest.approx(2 * 11 / 1024)
    assert sign_test_p(5, 5) == 1.0 and sign_test_p(0, 0) == 1.0
    summary = summarise([1] * 30 + [-1] * 10 + [0] * 10, rounds=500)
    assert (summary["wins"], summary["losses"], summary["ties"], summary["users"]) == (30, 10, 10, 50)
    assert summary["share"] == pytest.approx(0.7) and summary["low"] > 0.5 and summary["p_value"] < 0.01


def test_interleaving_detects_a_planted_better_ranker_and_nothing_when_there_is_none() -> None:
    rng = np.random.default_rng(0)
    relevant, better, worse = {}, {}, {}
    for user in range(300):
        items = rng.permutation(100)
        relevant[user] = set(items[:5].tolist())
        # the better ranker puts two of the user's relevant movies in its top 10, the worse one
        better[user] = [*items[:2].tolist(), *items[20:28].tolist()]
        worse[user] = [*items[2:3].tolist(), *items[30:39].tolist()]
    rows = detection_power(worse, better, relevant, [40, 400], trials=60, seed=1)
    assert rows[0]["interleaving"] < rows[-1]["interleaving"] >= 0.9 and rows[-1]["ab_test"] >= 0.9
    same = detection_power(better, better, relevant, [100], trials=60, seed=2)
    assert same[0]["interleaving"] <= 0.1 and same[0]["ab_test"] <= 0.1  # no planted difference
    assert users_needed(rows, "interleaving") in (40, 400)


def test_the_click_model_acts_on_relevant_movies_near_the_top() -> None:
    rng = np.random.default_rng(0)
    model = ClickModel(position_bias=1.0, relevant=1.0, noise=0.0)
    counts = np.zeros(10)
    for _ in range(2000):
        for movie in model.liked(np.arange(10), set(range(10)), rng):
            counts[movie] += 1
    assert counts[0] == 2000 and counts[0] > counts[1] > counts[4] > counts[9] > 0
