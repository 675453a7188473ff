"""The gate's rules: a better candidate is served, a worse or unproven one is not, and replay is fair."""

from __future__ import annotations

import numpy as np

from training.ml.gate import (
    CandidateEvidence,
    GateRules,
    candidate_verdicts,
    gate_decide,
    judge_outcomes,
    recommender_verdict,
    replay_outcomes,
    reward_model_verdict,
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


def test_a_recommender_is_served_when_none_is_active_or_it_scores_at_least_the_active_one() -> None:
    first = recommender_verdict(metric="ndcg@10", candidate=0.2, active=None, has_active=False)
    assert first.serve and first.note == "no active recommender" and first.report["passed"]
    tie = recommender_verdict(metric="ndcg@10", candidate=0.2, active=0.2, has_active=True)
    assert tie.serve and tie.report["reason"] == "better than or equal to the active version"
    worse = recommender_verdict(metric="ndcg@10", candidate=0.19, active=0.2, has_active=True)
    assert not worse.serve and worse.report == {
        "metric": "ndcg@10",
        "candidate": 0.19,
        "active": 0.2,
        "passed": False,
        "reason": "worse than the active version",
    }


def test_a_reward_model_is_served_only_on_enough_held_out_comparisons_above_the_threshold() -> None:
    def verdict(accuracy, n):
        return reward_model_verdict(
            accuracy=accuracy, heldout_comparisons=n, min_comparisons=20, min_accuracy=0.6
        )

    assert verdict(0.7, 20).serve and verdict(0.7, 20).note == "held-out accuracy above the threshold"
    assert not verdict(0.7, 19).serve
    assert not verdict(0.59, 200).serve
    assert not verdict(None, 200).serve
    assert verdict(0.5, 30).report == {
        "passed": False,
        "reward_accuracy": 0.5,
        "heldout_comparisons": 30,
        "reason": "not enough held-out evidence or accuracy below the threshold",
    }


def test_only_the_chosen_candidate_is_served_and_a_passed_runner_up_says_why_not() -> None:
    decision = decide(
        evidence("quality_rerank", 0.62), evidence("ppo", 0.75, kl=3.0), evidence("qlearning", 0.4)
    )
    verdicts = candidate_verdicts(
        decision, ["quality_rerank", "ppo", "qlearning"], context={"users": {"gate": 9}}
    )
    assert [name for name, v in verdicts.items() if v.serve] == ["ppo"]
    assert verdicts["quality_rerank"].report["reason"] == "passed, but ppo has the higher judge win rate"
    assert verdicts["quality_rerank"].report["passed"] and not verdicts["quality_rerank"].report["chosen"]
    assert (
        not verdicts["qlearning"].report["passed"]
        and "does not clear 0.5" in verdicts["qlearning"].report["reason"]
    )
    for name, verdict in verdicts.items():
        assert verdict.report["candidate"] == name and verdict.report["users"] == {"gate": 9}
        assert verdict.report["decision"] == decision.reason and verdict.note == f"gate: {decision.reason}"
    assert verdicts["ppo"].metrics == {"gate/win_rate": 0.75}


def test_a_candidate_that_is_the_served_policy_is_held_back_as_such() -> None:
    decision = decide(evidence("ppo", 0.75, kl=3.0))
    verdict = candidate_verdicts(decision, ["recommender"])["recommender"]
    assert not verdict.serve and verdict.report["reason"] == "it is the served policy"
    assert verdict.metrics == {"gate/win_rate": None}
