"""Item feedback on a shown list, folded into the profile: a planted user's next list moves."""

from __future__ import annotations

import numpy as np

from training.ml.data import History
from training.ml.item_feedback import (
    DISLIKE,
    LIKE,
    NOT_INTERESTED,
    ItemFeedbackConfig,
    fold_reactions,
    item_feedback_round,
    reaction_of,
    recommend_excluding,
)

CONFIG = ItemFeedbackConfig(slate_size=3)


class TwoGroupRecommender:
    """Movies 0-4 are group A, 5-9 group B; a movie scores the user's centred ratings of its group,
    plus a small prior for group A (the popular one)."""

    n_items = 10

    def top_k(self, history, k, exclude_rated=True):
        group = np.arange(10) // 5
        scores = 0.1 * (group == 0) - 0.01 * np.arange(10)
        for item, rating in zip(history.item_idx.tolist(), history.ratings.tolist(), strict=True):
            scores = scores + (rating - 3.0) * (group == group[item])
        if exclude_rated and len(history):
            scores[history.item_idx] = -np.inf
        best = np.argsort(-scores, kind="stable")[:k]
        return best, scores[best]


def test_simulated_reactions_follow_the_rating_the_user_would_give() -> None:
    assert [reaction_of(r, CONFIG) for r in (5.0, 4.0, 3.5, 3.0, 2.5, 2.0, 0.5)] == [
        LIKE,
        LIKE,
        None,
        DISLIKE,
        DISLIKE,
        NOT_INTERESTED,
        NOT_INTERESTED,
    ]


def test_a_reaction_joins_the_profile_but_never_overrides_a_rating() -> None:
    history = History(np.array([1]), np.array([2.0]), np.array([5]))
    folded = fold_reactions(history, {1: LIKE, 7: DISLIKE}, CONFIG, now=9)
    assert folded.item_idx.tolist() == [1, 7]
    assert folded.ratings.tolist() == [2.0, CONFIG.dislike_rating]


def test_item_feedback_moves_a_planted_users_list() -> None:
    recommender, empty = TwoGroupRecommender(), History.empty()
    shown = recommend_excluding(recommender, empty, set(), 3)
    assert set((shown // 5).tolist()) == {0}  # group A first
    # The user dislikes the A movies shown and likes B: here they are told as reactions.
    reactions = {int(shown[0]): NOT_INTERESTED, int(shown[1]): DISLIKE}
    folded = fold_reactions(empty, reactions, CONFIG)
    moved = recommend_excluding(recommender, folded, set(reactions), 3)
    assert set((moved // 5).tolist()) == {1} and not set(moved.tolist()) & set(reactions)


def test_the_round_compares_ndcg_with_and_without_reactions() -> None:
    recommender = TwoGroupRecommender()
    result = item_feedback_round(
        recommender,
        {0: History.empty()},
        {0: {0: 1.0, 1: 2.5}},  # the user rated two shown A movies low in the feedback period
        {0: {5, 6}},  # and two B movies high in the test period
        CONFIG,
        bootstrap_rounds=50,
    )
    assert result["users"] == 1 and result["reactions"][NOT_INTERESTED] == 1
    assert result["ndcg@10_with"] > result["ndcg@10_without"] == 0.0
