"""Tests for active comparisons: disagreement scores, the last-layer posterior, and the random share."""

from __future__ import annotations

import numpy as np
import pytest

from training.ml.active import (
    PosteriorConfig,
    PosteriorRewardModel,
    ensemble_disagreement,
    fit_posterior,
    has_posterior,
    list_features,
    mutual_information,
    preference_variance,
    select_pairs,
)
from training.ml.artifacts import load_artifact, write_artifact
from training.ml.reward_model import NumpyRewardModel, train_reward_model
from training.tests.ml.test_reward_model import CONFIG, N_ITEMS, SLATE, make_world


@pytest.fixture(scope="module")
def world():
    return make_world()


@pytest.fixture(scope="module")
def model(world) -> NumpyRewardModel:
    return train_reward_model(
        world.comparisons, None, world.contexts, world.item_features, CONFIG
    ).numpy_model()


def planted_ensemble(n: int = 40, planted: int = 17) -> np.ndarray:
    """P(first preferred) of 5 members: they agree on every pair but ``planted``.

    Several pairs are coin flips all members agree on (p = 0.5): the highest entropy, but no
    disagreement, so an uncertainty score that mistakes noise for ignorance would pick them.
    """
    rng = np.random.default_rng(0)
    agreed = rng.uniform(0.05, 0.95, n)
    agreed[::7] = 0.5
    members = np.repeat(agreed[:, None], 5, axis=1)
    members[planted] = [0.1, 0.9, 0.2, 0.8, 0.5]
    return members


def test_active_selection_picks_the_planted_uncertain_pair() -> None:
    members = planted_ensemble()
    scores = ensemble_disagreement(members)
    selection = select_pairs(len(members), scores, n=1, active_share=1.0, rng=np.random.default_rng(1))
    assert selection.index.tolist() == [17]
    assert selection.active.tolist() == [True]
    assert np.argmax(preference_variance(members)) == 17
    assert scores[np.arange(len(members)) != 17].max() == pytest.approx(0.0, abs=1e-12)


def test_mutual_information_is_zero_for_agreement_and_at_most_log_two() -> None:
    assert mutual_information(np.full((1, 4), 0.5))[0] == pytest.approx(0.0, abs=1e-12)
    assert mutual_information(np.array([[0.0, 1.0]]))[0] == pytest.approx(np.log(2), abs=1e-6)


def test_the_random_share_is_honoured_marked_and_uniform_over_the_whole_pool() -> None:
    scores = np.arange(30, dtype=float)  # pair 29 is the most uncertain
    rng = np.random.default_rng(2)
    counts = np.zeros(30)
    for _ in range(3000):
        selection = select_pairs(30, scores, n=10, active_share=0.3, rng=rng)
        assert len(set(selection.index.tolist())) == 10
        assert selection.active.sum() == 3
        active, random = selection.index[selection.active], selection.index[~selection.active]
        # the active ones are the highest scores among the pairs not drawn at random
        rest = np.setdiff1d(np.arange(30), random)
        assert sorted(active.tolist()) == sorted(rest[np.argsort(-scores[rest])][:3].tolist())
        counts[random] += 1
    # every pair, the most uncertain too, is in the random share 7/30 of the time
    np.testing.assert_allclose(counts / 3000, 7 / 30, atol=0.035)
    none = select_pairs(30, scores, n=10, active_share=0.0, rng=rng)
    assert not none.active.any()
    with pytest.raises(ValueError):
        select_pairs(30, scores[:5], n=10, active_share=0.5, rng=rng)


def test_last_layer_features_are_the_gradient_of_the_list_score(model, world) -> None:
    ctx = world.contexts["user_03"]
    slates = np.random.default_rng(3).integers(0, N_ITEMS, (6, SLATE))
    features = list_features(model, ctx, slates)
    delta_head = np.random.default_rng(4).normal(size=model.head_kernel.shape).astype(np.float32) * 0.1
    delta_linear = np.random.default_rng(5).normal(size=model.item_linear.shape).astype(np.float32) * 0.1
    arrays = model.export_arrays()
    moved = NumpyRewardModel.from_arrays(
        arrays
        | {
            "head/kernel": arrays["head/kernel"] + delta_head.reshape(arrays["head/kernel"].shape),
            "item_linear/kernel": arrays["item_linear/kernel"]
            + delta_linear.reshape(arrays["item_linear/kernel"].shape),
        }
    )
    expected = moved.list_scores(ctx, slates) - model.list_scores(ctx, slates)
    np.testing.assert_allclose(features @ np.concatenate([delta_head, delta_linear]), expected, atol=1e-4)


def test_the_posterior_shrinks_with_data_and_round_trips_through_the_artifact(model, world, tmp_path) -> None:
    prior = fit_posterior(model, [], world.contexts, PosteriorConfig(prior_precision=2.0))
    np.testing.assert_allclose(prior["posterior/covariance"], np.eye(len(prior["posterior/covariance"])) / 2)
    posterior = fit_posterior(model, world.comparisons, world.contexts, PosteriorConfig(prior_precision=2.0))
    arrays = model.export_arrays() | posterior
    assert has_posterior(arrays) and not has_posterior(model)
    before = PosteriorRewardModel.from_arrays(model.export_arrays() | prior)
    after = PosteriorRewardModel.from_arrays(arrays)
    ctx = world.contexts["user_05"]
    a, b = world.fresh[0].slate_a[None], world.fresh[0].slate_b[None]
    assert after.difference(ctx, a, b)[1][0] < before.difference(ctx, a, b)[1][0]

    path = write_artifact(tmp_path, "reward", arrays, {"kind": "reward"})
    loaded, _ = load_artifact(path)
    reloaded = PosteriorRewardModel.from_arrays(loaded)
    slates = np.random.default_rng(7).integers(0, N_ITEMS, (2, 8, SLATE))
    np.testing.assert_allclose(
        reloaded.disagreement(ctx, slates[0], slates[1]),
        after.disagreement(ctx, slates[0], slates[1]),
        atol=1e-9,
    )
    with pytest.raises(ValueError):
        PosteriorRewardModel(model)


def test_the_posterior_picks_the_pair_along_its_planted_uncertain_direction(model, world) -> None:
    ctx = world.contexts["user_07"]
    rng = np.random.default_rng(8)
    left, right = rng.integers(0, N_ITEMS, (2, 12, SLATE))
    right[4] = left[4][::-1]  # same movies: only the order differs, a small feature difference
    g = list_features(model, ctx, left) - list_features(model, ctx, right)
    others = np.delete(g, 9, axis=0)
    residual = g[9] - others.T @ np.linalg.lstsq(others.T, g[9], rcond=None)[0]  # orthogonal to the others
    direction = residual / np.linalg.norm(residual)
    covariance = 1e-4 * np.eye(len(direction)) + 50.0 * np.outer(direction, direction)
    planted = PosteriorRewardModel.from_arrays(model.export_arrays() | {"posterior/covariance": covariance})
    scores = planted.disagreement(ctx, left, right)
    assert np.argmax(scores) == 9
    selection = select_pairs(12, scores, n=1, active_share=1.0, rng=rng)
    assert selection.index.tolist() == [9] and selection.active.all()
