"""The no-feedback and reward-model rerankers: hand-built scores in, the expected order out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from training.ml.env import ref_log_policy
from training.ml.norms import ListAttributes, content_terms_batch
from training.ml.rerankers import (
    BestOfN,
    MMRRerank,
    QualityRerank,
    RewardGreedy,
    RewardRerank,
    best_of_n_kl,
    reranker_export,
    reranker_from_export,
    sample_lists,
    shrunk_mean_ratings,
    zscore,
)


@dataclass
class Ctx:
    history: object = None
    key: object = 0


class FixedRecommender:
    """top_k returns the candidates in the order of fixed scores (movie i scores scores[i])."""

    def __init__(self, scores):
        self.scores = np.asarray(scores, np.float64)

    def top_k(self, history, k, exclude_rated=True):
        order = np.argsort(-self.scores, kind="stable")[:k]
        return order, self.scores[order]


class FixedRewardModel:
    def __init__(self, rewards):
        self.rewards = np.asarray(rewards, np.float64)

    def item_rewards(self, ctx, items):
        return self.rewards[np.asarray(items)]

    def list_scores(self, ctx, slates):
        weights = 1.0 / np.log2(np.arange(slates.shape[1]) + 2.0)
        return self.rewards[slates] @ (weights / weights.sum())


def test_the_shrunk_mean_pulls_rarely_rated_movies_towards_the_global_mean() -> None:
    # Movie 0: one 5.0. Movie 1: ten 4.5. Movie 2: unrated. Movie 3: ten 2.0.
    items = np.array([0] + [1] * 10 + [3] * 10)
    ratings = np.array([5.0] + [4.5] * 10 + [2.0] * 10)
    quality = shrunk_mean_ratings(items, ratings, n_items=4, pseudo_ratings=5)
    global_mean = ratings.mean()
    assert quality[0] == pytest.approx((5.0 + 5 * global_mean) / 6)
    assert quality[1] > quality[0]  # ten ratings of 4.5 say more than one of 5.0
    assert quality[2] == pytest.approx(global_mean)


def test_a_quality_weight_of_zero_keeps_the_recommenders_order() -> None:
    recommender = FixedRecommender([5.0, 4.0, 3.0, 2.0, 1.0])
    rerank = QualityRerank(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), weight=0.0, n_candidates=5)
    assert rerank.slate(recommender, Ctx(), 3).tolist() == [0, 1, 2]


def test_the_quality_rerank_adds_the_two_z_scores() -> None:
    recommender = FixedRecommender([4.0, 3.9, 1.0, 0.0])
    quality = np.array([1.0, 5.0, 3.0, 3.0])
    rerank = QualityRerank(quality, weight=1.0, n_candidates=4)
    items, combined = rerank.scores(recommender, Ctx())
    expected = zscore(np.array([4.0, 3.9, 1.0, 0.0])) + zscore(quality[items])
    np.testing.assert_allclose(combined, expected)
    # Movie 1 is almost as good to the recommender and far better rated: it moves to the top.
    assert rerank.slate(recommender, Ctx(), 2).tolist() == [1, 0]


def test_the_reward_rerank_follows_the_reward_model_as_its_weight_grows() -> None:
    recommender = FixedRecommender([3.0, 2.0, 1.0])
    reward_model = FixedRewardModel([0.0, 0.0, 9.0])
    assert RewardRerank(reward_model, weight=0.1, n_candidates=3).slate(recommender, Ctx(), 1).tolist() == [0]
    assert RewardRerank(reward_model, weight=10.0, n_candidates=3).slate(recommender, Ctx(), 1).tolist() == [
        2
    ]


def test_best_of_n_picks_the_sample_the_reward_model_likes_and_is_stable_per_user() -> None:
    rng = np.random.default_rng(0)
    recommender = FixedRecommender(rng.normal(size=30))
    reward_model = FixedRewardModel(rng.normal(size=30))
    one, many = (BestOfN(reward_model, n=n, temperature=1.0, n_candidates=30, seed=3) for n in (1, 64))
    ctx = Ctx(key=17)
    assert np.array_equal(many.slate(recommender, ctx, 5), many.slate(recommender, ctx, 5))
    # Over users, the best of 64 beats one sample on the reward model's own score.
    gains = []
    for user in range(40):
        ctx = Ctx(key=user)
        score = [reward_model.list_scores(ctx, p.slate(recommender, ctx, 5)[None, :])[0] for p in (one, many)]
        gains.append(score[1] - score[0])
    assert np.mean(gains) > 0.05


def test_gumbel_top_k_samples_follow_the_reference_policy() -> None:
    scores = np.array([2.0, 1.0, 0.0, -1.0])
    samples = sample_lists(scores, 2, 20_000, temperature=0.5, rng=np.random.default_rng(0))
    first = np.bincount(samples[:, 0], minlength=4) / len(samples)
    expected = np.exp(ref_log_policy(scores, np.ones(4, bool), 0.5))
    np.testing.assert_allclose(first, expected, atol=0.01)
    assert (samples[:, 0] != samples[:, 1]).all()  # without replacement


def test_best_of_n_kl_is_zero_for_one_sample_and_grows_like_log_n() -> None:
    assert best_of_n_kl(1) == 0.0
    assert best_of_n_kl(64) == pytest.approx(np.log(64) - 63 / 64)


def test_a_quality_rerank_comes_back_from_its_arrays_and_manifest_with_the_same_lists() -> None:
    reranker = QualityRerank(np.array([1.0, 5.0, 3.0, 2.0, 4.0]), weight=0.25, n_candidates=4)
    arrays, meta = reranker_export(reranker)
    assert meta == {"kind": "quality_rerank", "n_candidates": 4, "weight": 0.25}
    back = reranker_from_export(arrays, meta)
    recommender = FixedRecommender([0.5, 0.1, 0.4, 0.3, 0.2])
    assert np.array_equal(back.slate(recommender, Ctx(), 3), reranker.slate(recommender, Ctx(), 3))


class ExportableRewards(FixedRewardModel):
    def export_arrays(self):
        return {"item/rewards": np.asarray(self.rewards)}


def test_reward_rerankers_keep_the_reward_models_arrays_and_their_setting() -> None:
    for reranker, setting in (
        (RewardRerank(ExportableRewards([1.0, 2.0]), weight=2.0, n_candidates=7), {"weight": 2.0}),
        (
            BestOfN(ExportableRewards([1.0, 2.0]), n=8, temperature=0.5, n_candidates=7, seed=3),
            {"n": 8, "temperature": 0.5, "seed": 3},
        ),
    ):
        arrays, meta = reranker_export(reranker)
        assert set(arrays) == {"reward/item/rewards"}
        assert meta == {"kind": reranker.kind, "n_candidates": 7, **setting}


def test_an_unknown_reranker_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="not a reranker"):
        reranker_from_export({}, {"kind": "ppo", "n_candidates": 3})


# Twelve movies in six franchises of two (0-1, 2-3, ...); the recommender ranks both halves of a
# franchise next to each other, so its top 4 is two pairs.
FRANCHISES = ListAttributes(
    genre=np.eye(6, dtype=np.float32)[np.arange(12) // 2],
    decade=np.zeros(12, np.int64),
    franchise=np.arange(12) // 2,
)


class PlantedSetReward(FixedRewardModel):
    """Position-weighted item rewards minus 2 x the share of repeated-franchise pairs."""

    def list_scores(self, ctx, slates):
        slates = np.atleast_2d(slates)
        return super().list_scores(ctx, slates) - 2.0 * content_terms_batch(FRANCHISES, slates)[:, 0]


def test_greedy_construction_under_a_planted_set_reward_beats_sorting() -> None:
    scores = np.linspace(1.0, 0.0, 12)
    recommender, reward = FixedRecommender(scores), PlantedSetReward(scores)
    sorted_list = RewardRerank(reward, weight=1.0, n_candidates=12).slate(recommender, Ctx(), 4)
    greedy = RewardGreedy(reward, weight=4.0, n_candidates=12).slate(recommender, Ctx(), 4)
    assert sorted_list.tolist() == [0, 1, 2, 3]
    assert len(set(greedy.tolist())) == 4 and len(set((greedy // 2).tolist())) == 4  # no repeat
    assert reward.list_scores(Ctx(), greedy[None])[0] > reward.list_scores(Ctx(), sorted_list[None])[0]


def test_mmr_keeps_the_recommender_order_at_lambda_one_and_spreads_franchises_below() -> None:
    recommender = FixedRecommender(np.linspace(1.0, 0.0, 12))
    assert MMRRerank(FRANCHISES, 1.0, 12).slate(recommender, Ctx(), 4).tolist() == [0, 1, 2, 3]
    varied = MMRRerank(FRANCHISES, 0.3, 12).slate(recommender, Ctx(), 4)
    assert varied.tolist() == [0, 2, 4, 6]


def test_the_list_builders_come_back_from_their_arrays_with_the_same_lists() -> None:
    recommender = FixedRecommender(np.linspace(1.0, 0.0, 12))
    mmr = MMRRerank(FRANCHISES, 0.3, 12)
    arrays, meta = reranker_export(mmr)
    assert meta == {"kind": "mmr", "n_candidates": 12, "weight": 0.3}
    assert set(arrays) == {"set/genre", "set/decade", "set/franchise", "set/min_shared_genres"}
    assert reranker_from_export(arrays, meta).slate(recommender, Ctx(), 4).tolist() == [0, 2, 4, 6]
    greedy = RewardGreedy(ExportableRewards(np.linspace(1.0, 0.0, 12)), weight=0.5, n_candidates=9)
    arrays, meta = reranker_export(greedy)
    assert set(arrays) == {"reward/item/rewards"}
    assert meta == {"kind": "rm_greedy", "n_candidates": 9, "weight": 0.5}


def test_reward_mmr_is_mmr_at_b_zero_and_follows_the_reward_model_above() -> None:
    from training.ml.rerankers import RewardMMR

    recommender = FixedRecommender(np.linspace(1.0, 0.0, 12))
    mmr = MMRRerank(FRANCHISES, 0.6, 12).slate(recommender, Ctx(), 4)
    rewards = np.zeros(12)
    rewards[[5, 7, 9, 11]] = 5.0  # the second half of four franchises: the reward model's own taste
    reward = FixedRewardModel(rewards)
    assert np.array_equal(RewardMMR(reward, FRANCHISES, 0.6, 0.0, 12).slate(recommender, Ctx(), 4), mmr)
    steered = RewardMMR(reward, FRANCHISES, 0.6, 4.0, 12).slate(recommender, Ctx(), 4)
    assert sorted(steered.tolist()) == [5, 7, 9, 11]


def test_reward_mmr_comes_back_from_its_arrays_with_both_halves() -> None:
    from training.ml.rerankers import RewardMMR

    reranker = RewardMMR(ExportableRewards(np.linspace(1.0, 0.0, 12)), FRANCHISES, 0.6, 2.0, 10)
    arrays, meta = reranker_export(reranker)
    assert meta == {"kind": "rm_mmr", "n_candidates": 10, "weight": 2.0, "diversity": 0.6}
    assert {"reward/item/rewards", "set/genre", "set/franchise"} <= set(arrays)
