"""Tests for list-level norms (issue 15): the terms, the norms annotators, the set-aware reward model.

The planted world: 60 movies in 20 franchises of three, all one genre and one decade, so the only
thing that tells two lists apart is whether they repeat a franchise. Annotators with no taste
(every rating equal) and a redundancy penalty prefer the list without a repeat.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from training.ml.agreement import percent_agreement
from training.ml.norms import (
    ListAttributes,
    ListNorms,
    NormsConfig,
    NormsJudge,
    content_terms_batch,
    franchise_ids,
    label_coefficients,
    mean_norms,
    norm_terms,
    population_norms,
    title_stem,
)
from training.ml.reward_model import (
    Comparison,
    NumpyRewardModel,
    RewardModelConfig,
    evaluate_reward_model,
    train_reward_model,
)
from training.ml.simulator import OracleTaste, SimulatedAnnotator, make_annotators
from training.ml.user_features import UserContext, build_item_features, user_vector

N_FRANCHISES, PER_FRANCHISE, SLATE, N_USERS = 20, 3, 4, 20
N_ITEMS = N_FRANCHISES * PER_FRANCHISE
CONFIG = RewardModelConfig(
    hidden_sizes=(16, 8), learning_rate=3e-2, epochs=30, l2=1e-2, validation_fraction=0.0, seed=0
)


class History:
    def __init__(self) -> None:
        self.item_idx = np.zeros(0, np.int32)
        self.ratings = np.zeros(0, np.float32)
        self.timestamps = np.zeros(0, np.int64)


def planted_world(seed: int = 0):
    rng = np.random.default_rng(seed)
    titles = [f"Saga {chr(65 + f)} {n + 1}" for f in range(N_FRANCHISES) for n in range(PER_FRANCHISE)]
    features = build_item_features(
        rng.normal(size=(N_ITEMS, 4)), [["Drama"]] * N_ITEMS, np.full(N_ITEMS, 1990.0), np.ones(N_ITEMS)
    )
    attributes = ListAttributes.from_item_features(features, titles)
    users = [f"u{j}" for j in range(N_USERS)]
    flat = pd.DataFrame(
        [(u, i, 3.0, 0) for u in users for i in range(N_ITEMS)],
        columns=["user", "item", "rating", "timestamp"],
    )
    oracle = OracleTaste(flat, N_ITEMS, genre_matrix=features.genre_multi_hot)
    norms = ListNorms(attributes, np.array([-3.0, 0.0, 0.0, 0.0]), floor=-1.0)
    annotator = SimulatedAnnotator(oracle, temperature=0.05, seed=seed, norms=norms, with_reasons=False)
    franchise = np.arange(N_ITEMS) // PER_FRANCHISE

    def pair() -> tuple[np.ndarray, np.ndarray]:
        picks = rng.choice(N_FRANCHISES, SLATE, replace=False)
        varied = picks * PER_FRANCHISE + rng.integers(PER_FRANCHISE, size=SLATE)
        twins = rng.choice(np.flatnonzero(franchise == picks[0]), 2, replace=False)
        others = picks[1 : SLATE - 1] * PER_FRANCHISE + rng.integers(PER_FRANCHISE, size=SLATE - 2)
        return varied, rng.permutation(np.concatenate([twins, others]))

    contexts = {
        u: UserContext(History(), np.zeros(4, np.float32), np.zeros(features.signal_dim, np.float32), key=u)
        for u in users
    }
    comparisons = []
    for _ in range(600):
        user = users[int(rng.integers(N_USERS))]
        a, b = pair()
        a, b = (a, b) if rng.random() < 0.5 else (b, a)
        comparisons.append(Comparison(user, a, b, annotator.compare(user, a, b).outcome))
    return features, attributes, contexts, comparisons, oracle


@pytest.fixture(scope="module")
def world():
    return planted_world()


@pytest.fixture(scope="module")
def set_model(world):
    features, attributes, contexts, comparisons, _ = world
    return train_reward_model(
        comparisons[:450],
        None,
        contexts,
        features,
        replace(CONFIG, set_features=True),
        list_attributes=attributes,
    )


def test_title_stems_join_sequels_and_leave_unrelated_titles_apart() -> None:
    assert title_stem("Toy Story 2") == title_stem("Toy Story") == "toy story"
    assert title_stem("Godfather: Part II, The") == "godfather"
    assert title_stem("Star Wars: Episode V - The Empire Strikes Back") == "star wars"
    ids = franchise_ids(["Toy Story", "Toy Story 2", "Heat", "Alien", "Aliens"])
    assert ids[0] == ids[1] >= 0 and ids[2] == ids[3] == ids[4] == -1


def test_the_terms_count_repeats_genres_decades_and_the_worst_movie(world) -> None:
    _, attributes, *_ = world
    utility = np.zeros(N_ITEMS)
    utility[6] = -2.5
    terms = norm_terms(attributes, np.array([0, 1, 3, 6]), utility, floor=-1.0)
    assert terms[0] == pytest.approx(1 / 6)  # one repeated franchise among six pairs
    assert terms[2] == pytest.approx(1 / 4)  # one decade over four slots
    assert terms[3] == pytest.approx(1.5)  # the worst movie is 1.5 under the floor
    slates = np.array([[0, 1, 3, 5], [0, 3, 6, -1]])
    assert np.allclose(content_terms_batch(attributes, slates)[0], attributes.content_terms(slates[0]))
    assert np.allclose(content_terms_batch(attributes, slates)[1], attributes.content_terms(slates[1, :3]))


def test_norms_annotators_differ_in_strength_but_not_in_sign(world) -> None:
    _, attributes, *_ = world
    config = NormsConfig()
    judges = population_norms(attributes, config, 5, seed=0)
    strengths = np.array([j.strengths for j in judges])
    assert (np.sign(strengths) == np.sign(config.strengths())).all()
    assert strengths.std(axis=0).min() > 0
    assert np.allclose(mean_norms(attributes, config).strengths, config.strengths())


def test_the_population_agreement_is_measured_and_falls_with_noise(world) -> None:
    _features, attributes, _contexts, comparisons, oracle = world
    norms = population_norms(attributes, NormsConfig(redundancy=-3.0), 2, seed=0)

    def agreement(noise: float) -> float:
        a, b = make_annotators(oracle, 2, temperature=0.05, noise=noise, norms=norms, with_reasons=False)
        first = [a.compare(c.user, c.slate_a, c.slate_b).outcome for c in comparisons]
        second = [b.compare(c.user, c.slate_a, c.slate_b).outcome for c in comparisons]
        strict = [j for j in range(len(first)) if first[j] in "ab" and second[j] in "ab"]
        return percent_agreement([first[j] for j in strict], [second[j] for j in strict])

    quiet, noisy = agreement(0.0), agreement(1.0)
    assert quiet > 0.8 and noisy < quiet


def test_a_norms_judge_adds_the_mean_norms_to_the_oracle_quality(world) -> None:
    _, attributes, _, _, oracle = world
    judge = NormsJudge(oracle, ListNorms(attributes, np.array([-3.0, 0.0, 0.0, 0.0])))
    repeat, varied = np.array([0, 1, 3, 6]), np.array([0, 3, 6, 9])
    assert judge.quality("u0", varied) - judge.quality("u0", repeat) == pytest.approx(3.0 / 6)


def test_the_set_aware_model_separates_a_planted_redundancy_preference_an_additive_one_cannot(
    world, set_model
) -> None:
    features, _attributes, contexts, comparisons, _ = world
    additive = train_reward_model(comparisons[:450], None, contexts, features, CONFIG)
    held_out = comparisons[450:]
    set_accuracy = evaluate_reward_model(set_model.numpy_model(), held_out, contexts)["accuracy"]
    additive_accuracy = evaluate_reward_model(additive.numpy_model(), held_out, contexts)["accuracy"]
    assert set_accuracy > 0.85
    assert additive_accuracy < 0.65
    assert set_model.arrays["set/weights"][0] < 0  # it learned that repeats are bad


def test_the_numpy_set_aware_score_equals_the_keras_model(world, set_model) -> None:
    features, _, contexts, comparisons, _ = world
    numpy_model = NumpyRewardModel.from_arrays(set_model.arrays)
    ctx = contexts["u0"]
    slates = np.array([c.slate_a for c in comparisons[:8]] + [np.array([0, 1, -1, -1])])
    user = np.repeat(user_vector(ctx, features)[None], len(slates), axis=0)
    keras_scores = set_model.model(
        {"user": user, "signals": np.repeat(ctx.signals[None], len(slates), axis=0), "items": slates}
    ).numpy()
    assert np.allclose(numpy_model.list_scores(ctx, slates), keras_scores, atol=1e-4)
    assert numpy_model.list_score(ctx, slates[0]) == pytest.approx(float(keras_scores[0]), abs=1e-4)


def test_label_coefficients_recover_a_planted_logistic_model() -> None:
    rng = np.random.default_rng(0)
    deltas = rng.normal(size=(4000, 2))
    chose_first = rng.random(4000) < 1 / (1 + np.exp(-(deltas @ np.array([2.0, -1.0]))))
    assert np.allclose(label_coefficients(deltas, chose_first), [2.0, -1.0], atol=0.2)


def test_a_set_aware_model_is_served_from_its_artifact_with_numpy_only(world, set_model, tmp_path) -> None:
    from training.ml.artifacts import load_artifact, write_artifact
    from training.ml.rerankers import RewardRerank, reranker_export, reranker_from_export

    _, _, contexts, comparisons, _ = world
    arrays, meta = reranker_export(RewardRerank(set_model.numpy_model(), 0.5, 20))
    assert {"reward/set/weights", "reward/set/franchise", "reward/set/decade"} <= set(arrays)
    loaded_arrays, loaded_meta = load_artifact(write_artifact(tmp_path, "rm", arrays, meta))
    served = reranker_from_export(loaded_arrays, loaded_meta).reward_model
    slates = np.array([c.slate_a for c in comparisons[:5]])
    expected = set_model.numpy_model().list_scores(contexts["u0"], slates)
    assert np.allclose(served.list_scores(contexts["u0"], slates), expected)
