"""The gate's rules: a better candidate is served, a worse or unproven one is not, and replay is fair."""

from __future__ import annotations

import numpy as np

from training.ml.gate import (
    CandidateEvidence,
    GateRules,
    gate_decide,
    judge_outcomes,
    replay_outcomes,
    side,
    summarise,
)

RULES = GateRules(min_judge_comparisons=10, min_users=10, bootstrap_rounds=500)


def evidence(name: str, wins: float, n: int = 200, kl: float | None = None, **extra) -> CandidateEvidence:
    outcomes = [1.0] * round(wins * n) + [0.0] * (n - round(wins * n))
    return CandidateEvidence(name=name, judge=summarise(outcomes, RULES), kl=kl, **extra)


def decide(*candidates: CandidateEvidence, accuracy: float = 0.7, n: int = 100):
    return gate_decide(
        candidates, incumbent="recommender", judge_accuracy=accuracy, judge_comparisons=n, rules=RULES
    )


def test_the_gate_serves_the_better_of_two_planted_candidates() -> None:
    decision = decide(evidence("quality_rerank", 0.62), evidence("ppo", 0.75, kl=3.0))
    assert decision.changed and decision.served == "ppo"
    assert all(c.passed for c in decision.candidates)


def test_the_gate_keeps_the_served_policy_when_no_candidate_beats_it() -> None:
    decision = decide(evidence("quality_rerank", 0.5), evidence("ppo", 0.45, kl=3.0))
    assert not decision.changed and decision.served == "recommender"
    assert "does not clear 0.5" in decision.candidates[0].reason


def test_an_untrusted_judge_lets_nothing_through() -> None:
    decision = decide(evidence("ppo", 0.9, kl=1.0), accuracy=0.52)
    assert decision.served == "recommender" and "not trusted" in decision.reason
    decision = decide(evidence("ppo", 0.9, kl=1.0), n=3)
    assert decision.served == "recommender"


def test_a_candidate_too_far_from_the_reference_or_worse_on_held_out_ratings_is_refused() -> None:
    far = evidence("ppo", 0.9, kl=25.0)
    worse = evidence("rm_rerank", 0.9, ndcg_difference={"mean": -0.02, "low": -0.03, "high": -0.01, "n": 100})
    against = evidence("best_of_n", 0.9, replay={"mean": 0.3, "low": 0.2, "high": 0.4, "n": 50})
    decision = decide(far, worse, against)
    assert decision.served == "recommender"
    assert "KL" in far.reason and "NDCG" in worse.reason and "side against" in against.reason


def test_a_policy_sides_with_the_list_its_own_list_overlaps_more() -> None:
    assert side(np.array([1, 2, 3]), np.array([1, 2, 9]), np.array([7, 8, 9])) == 1.0
    assert side(np.array([7, 8]), np.array([1, 2, 9]), np.array([7, 8, 9])) == 0.0
    assert side(np.array([5]), np.array([1, 2]), np.array([3, 4])) == 0.5


def test_replay_credits_the_candidate_only_where_it_alone_agrees_with_the_annotator() -> None:
    comparisons = [
        (0, np.array([1, 2]), np.array([3, 4]), "a"),  # candidate sides with A (agrees), served with B
        (1, np.array([1, 2]), np.array([3, 4]), "b"),  # both side with B: no information
        (2, np.array([1, 2]), np.array([3, 4]), "tie"),  # skipped
    ]
    candidate = {0: np.array([1, 2]), 1: np.array([3, 4]), 2: np.array([1])}
    served = {0: np.array([3, 4]), 1: np.array([3, 4]), 2: np.array([3])}
    assert replay_outcomes(comparisons, candidate, served) == [1.0, 0.5]


def test_the_judge_calls_identical_lists_a_tie() -> None:
    score = {(0, 1): 1.0, (0, 2): 0.0}
    outcomes = judge_outcomes(
        lambda user, slate: score[(user, int(slate[0]))],
        {0: np.array([1]), 1: np.array([5])},
        {0: np.array([2]), 1: np.array([5])},
    )
    assert outcomes == [1.0, 0.5]


def test_a_feedback_free_candidate_may_be_judged_by_its_own_trusted_judge() -> None:
    own = evidence("quality_rerank", 0.7)
    own.judge_trusted = True
    learned = evidence("ppo", 0.9, kl=1.0)
    decision = decide(own, learned, accuracy=0.5)  # the shared independent judge is at chance
    assert decision.served == "quality_rerank"
    assert not learned.passed and "not trusted" in learned.reason
