"""Tests for the oracle taste and the simulated Bradley-Terry annotators."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.ml.simulator import OracleTaste, SimulatedAnnotator, make_annotators, position_weights
from training.ml.user_features import GENRES

# A tiny catalogue: movie ids 101..112; four Comedies, four Horrors, four Dramas.
MOVIE_IDS = np.arange(101, 113)
PRIMARY = ["Comedy"] * 4 + ["Horror"] * 4 + ["Drama"] * 4
ITEM_INDEX = {int(movie): j for j, movie in enumerate(MOVIE_IDS)}
COMEDIES, HORRORS, DRAMAS = np.arange(0, 4), np.arange(4, 8), np.arange(8, 12)

# The cast: alice loves Comedy and hates Horror, bob loves Horror, carol rated a single movie.
CAST_TASTE = {
    "alice": {"Comedy": 4.5, "Horror": 1.0, "Drama": 3.0},
    "bob": {"Comedy": 2.5, "Horror": 5.0, "Drama": 3.0},
}


def genre_matrix() -> np.ndarray:
    hot = np.zeros((len(MOVIE_IDS), len(GENRES)))
    for j, genre in enumerate(PRIMARY):
        hot[j, GENRES.index(genre)] = 1.0
    return hot


def oracle_ratings() -> pd.DataFrame:
    """Ratings keyed by MovieLens-style movie ids; alice and bob skip the last movie of each genre."""
    rows = []
    for user, taste in CAST_TASTE.items():
        for j, movie in enumerate(MOVIE_IDS):
            if j % 4 == 3:
                continue
            rows.append((user, int(movie), taste[PRIMARY[j]] - 0.5 * (j % 2), 1000 + j))
    rows.append(("carol", 101, 4.0, 1000))
    rows.append(("alice", 101, 1.0, 1))  # an older duplicate: the latest rating must win
    return pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])


@pytest.fixture(scope="module")
def oracle() -> OracleTaste:
    return OracleTaste(
        oracle_ratings(), n_items=len(MOVIE_IDS), genre_matrix=genre_matrix(), item_index=ITEM_INDEX
    )


def random_slates(rng: np.random.Generator, n: int, k: int = 4) -> list[tuple[np.ndarray, np.ndarray]]:
    return [
        (rng.choice(len(MOVIE_IDS), k, replace=False), rng.choice(len(MOVIE_IDS), k, replace=False))
        for _ in range(n)
    ]


def test_it_maps_movie_ids_to_indices_and_keeps_the_latest_rating(oracle: OracleTaste) -> None:
    utility = oracle.utility("alice")
    assert utility[ITEM_INDEX[101]] > 0.5  # the 4.5 rating, not the older 1.0
    assert utility[COMEDIES].min() > utility[HORRORS].max()


def test_unrated_movies_get_a_shrunk_genre_prior_between_neutral_and_observed(oracle: OracleTaste) -> None:
    utility = oracle.utility("alice")
    rated_comedy, unrated_comedy = utility[COMEDIES[:3]].mean(), utility[COMEDIES[3]]
    rated_horror, unrated_horror = utility[HORRORS[:3]].mean(), utility[HORRORS[3]]
    assert 0 < unrated_comedy < rated_comedy
    assert rated_horror < unrated_horror < 0
    unknown_user = oracle.utility("nobody")
    assert np.abs(unknown_user).max() < 0.5  # only the shrunk item effects


def test_the_taste_part_is_the_utility_without_the_users_own_ratings(oracle: OracleTaste) -> None:
    utility, taste = oracle.utility("alice"), oracle.taste_utility("alice")
    rated = np.concatenate([COMEDIES[:3], HORRORS[:3], DRAMAS[:3]])  # alice skipped the last of each
    unrated = np.setdiff1d(np.arange(oracle.n_items), rated)
    assert np.array_equal(taste[unrated], utility[unrated])
    assert np.abs(taste[rated]).max() < np.abs(utility[rated]).max()  # a shrunk guess, not the rating
    assert taste[COMEDIES].min() > taste[HORRORS].max()  # the genre taste is still there
    slate = np.concatenate([COMEDIES[:2], HORRORS[:1]])
    assert oracle.taste_quality("alice", slate) == pytest.approx(taste[slate] @ position_weights(3))


def test_two_different_slates_rarely_tie_exactly(oracle: OracleTaste) -> None:
    rng = np.random.default_rng(0)
    pairs = [(a, b) for a, b in random_slates(rng, 500) if not np.array_equal(a, b)]
    ties = sum(oracle.quality("alice", a) == oracle.quality("alice", b) for a, b in pairs)
    assert ties / len(pairs) < 0.01


def test_the_annotator_is_deterministic_for_a_seed(oracle: OracleTaste) -> None:
    slates = random_slates(np.random.default_rng(1), 50)

    def answers(seed: int) -> list[tuple[str, str | None]]:
        annotator = SimulatedAnnotator(oracle, temperature=0.5, seed=seed)
        return [(j.outcome, j.reason) for j in (annotator.compare("alice", a, b) for a, b in slates)]

    assert answers(7) == answers(7)
    assert answers(7) != answers(8)


def test_a_near_zero_temperature_always_picks_the_better_list(oracle: OracleTaste) -> None:
    annotator = SimulatedAnnotator(oracle, temperature=1e-6, seed=0)
    for left, right in random_slates(np.random.default_rng(2), 300):
        judgement = annotator.compare("bob", left, right)
        if judgement.outcome == "tie":
            continue
        better = "a" if judgement.quality_left > judgement.quality_right else "b"
        assert judgement.outcome == better


def test_a_large_temperature_is_close_to_a_coin_flip(oracle: OracleTaste) -> None:
    annotator = SimulatedAnnotator(oracle, temperature=1e3, seed=0, with_reasons=False)
    outcomes = [annotator.compare("alice", COMEDIES, HORRORS).outcome for _ in range(4000)]
    assert abs(outcomes.count("a") / len(outcomes) - 0.5) < 0.03


def test_a_moderate_temperature_follows_the_bradley_terry_probability(oracle: OracleTaste) -> None:
    annotator = SimulatedAnnotator(oracle, temperature=1.0, seed=0, with_reasons=False)
    left, right = np.array([0, 8, 9, 10]), np.array([8, 9, 10, 4])
    expected = annotator.prob_left(annotator.quality("alice", left), annotator.quality("alice", right))
    observed = np.mean([annotator.compare("alice", left, right).outcome == "a" for _ in range(4000)])
    assert 0.55 < expected < 0.95
    assert abs(observed - expected) < 0.03


def test_identical_lists_are_a_tie(oracle: OracleTaste) -> None:
    judgement = SimulatedAnnotator(oracle, seed=0).compare("alice", COMEDIES, COMEDIES)
    assert judgement.outcome == "tie"
    assert judgement.reason in ("hard to choose", "both are about the same")


def test_two_bad_lists_can_be_both_bad_and_the_reason_names_the_disliked_genre(oracle: OracleTaste) -> None:
    annotator = SimulatedAnnotator(oracle, seed=0, both_bad_below=-0.3)
    judgement = annotator.compare("alice", HORRORS, HORRORS[::-1])
    assert judgement.outcome == "both_bad"
    assert "Horror" in judgement.reason


def test_reasons_name_the_disliked_genre_of_the_rejected_list(oracle: OracleTaste) -> None:
    annotator = SimulatedAnnotator(oracle, temperature=1e-6, seed=3)
    for _ in range(10):
        judgement = annotator.compare("alice", HORRORS, DRAMAS)
        assert judgement.outcome == "b"
        assert "Horror" in judgement.reason
        assert judgement.reason.split()[0] in ("too", "less", "not")


def test_reasons_name_the_loved_genre_of_the_chosen_list(oracle: OracleTaste) -> None:
    annotator = SimulatedAnnotator(oracle, temperature=1e-6, seed=3)
    for _ in range(10):
        judgement = annotator.compare("bob", DRAMAS, HORRORS)
        assert judgement.outcome == "b"
        assert "Horror" in judgement.reason
        assert judgement.reason.split()[0] in ("more", "I", "great")


def test_several_annotators_differ_by_seed_and_personal_noise(oracle: OracleTaste) -> None:
    annotators = make_annotators(oracle, 3, temperature=0.2, seed=10, noise=0.3)
    assert [a.seed for a in annotators] == [10, 11, 12]
    first, second = annotators[0].utility("alice"), annotators[1].utility("alice")
    assert not np.allclose(first, second)
    assert np.allclose(first, make_annotators(oracle, 1, seed=10, noise=0.3)[0].utility("alice"))
    assert np.corrcoef(first, oracle.utility("alice"))[0, 1] > 0.8
