"""The product's promotion gate (training/rlhf.py): the user split, no leaks, and the verdict on planted candidates."""

from __future__ import annotations

import numpy as np
import pytest

from feedback.models import Comparison
from movies.models import Rater
from training import registry
from training.exceptions import GateLeak
from training.ml.rlhf import SlateSource
from training.models import ModelVersion, ServingDecision
from training.rlhf import (
    Candidate,
    FeedbackSnapshot,
    Judge,
    UserSplit,
    check_trained_only_on,
    comparison_rows,
    feedback_snapshot,
    split_users,
    stage_gate,
    train_judge,
)

from .conftest import MOVIES_PER_GENRE

pytestmark = [pytest.mark.django_db]


def split_of(seed: int = 0, **kwargs) -> UserSplit:
    return split_users(
        comparison_raters=range(100),
        other_raters=range(100, 300),
        seed=seed,
        judge_share=kwargs.pop("judge_share", 0.2),
        gate_share=kwargs.pop("gate_share", 0.2),
        **kwargs,
    )


def test_the_user_split_is_disjoint_complete_and_fixed_by_the_seed():
    split = split_of(seed=3)
    assert not (split.learner & split.judge or split.learner & split.gate or split.judge & split.gate)
    assert split.learner | split.judge | split.gate == frozenset(range(300))
    assert len(split.judge) == 20 and split.judge <= frozenset(range(100))  # judges need comparisons
    assert len(split.gate) == 20 + 40
    assert split_of(seed=3) == split and split_of(seed=4) != split


def test_raters_an_existing_reward_model_trained_on_always_stay_learners():
    split = split_of(learner_raters=range(50))
    assert frozenset(range(50)) <= split.learner
    assert not (split.judge | split.gate) & frozenset(range(50))


def test_a_split_that_shares_a_rater_between_parts_is_refused():
    with pytest.raises(GateLeak, match="both learner and judge"):
        UserSplit(frozenset({1, 2}), frozenset({2}), frozenset({3})).check()


def test_a_judge_planted_with_a_learner_users_comparison_is_caught_before_it_trains():
    split = split_of()
    learner_rater = min(split.learner & frozenset(range(100)))
    judge_rater = min(split.judge)
    planted = [
        {"rater": judge_rater, "user": ("comparison", 1)},
        {"rater": learner_rater, "user": ("comparison", 2)},
    ]
    snapshot = FeedbackSnapshot(None, split, planted, {}, {}, np.zeros(0))
    with pytest.raises(GateLeak, match=f"judge would train on comparisons of raters \\[{learner_rater}\\]"):
        train_judge(snapshot=snapshot, records=planted, config=None, seed=0)
    with pytest.raises(GateLeak, match="learner reward model"):
        check_trained_only_on([{"rater": judge_rater}], split.learner, "learner reward model")


# --- Through the product's snapshot and gate, on simulated feedback --------------------------------


def _base():
    from training.rlhf import _base as active_base

    return active_base()


def test_each_comparison_is_scored_without_its_own_reasons_and_gate_users_keep_their_latest_ratings(
    with_feedback,
    settings,
):
    first = Comparison.objects.order_by("id").first()
    first.signals = [{"aspect": "genre", "value": "Horror", "polarity": -1.0, "span": "horror"}]
    first.save(update_fields=["signals"])
    rows = comparison_rows()
    snapshot = feedback_snapshot(base=_base(), rows=rows, seed=0)
    rater = first.task.context_rater_id
    own = snapshot.comparison_contexts[("comparison", first.pk)]
    assert not own.signals.any()  # its own reason is not in the context it is scored in
    later = [c for c in snapshot.comparisons if c["rater"] == rater and c["id"] > first.pk]
    for record in later:  # later comparisons of the same rater may read it
        assert snapshot.comparison_contexts[record["user"]].signals.any()
    world = snapshot.world.contexts
    if rater in snapshot.split.learner:
        assert world[rater].signals.any()
    else:  # judge and gate users' reasons never reach the contexts the lists are built from
        assert not world[rater].signals.any()
    assert snapshot.heldout_relevant and set(snapshot.heldout_relevant) <= snapshot.split.gate
    for user, liked in snapshot.heldout_relevant.items():
        assert not liked & set(world[user].history.item_idx.tolist())
    parts = {snapshot.split.part(c["rater"]) for c in snapshot.comparisons}
    assert parts == {"learner", "judge", "gate"}


class Planted:
    """A list source for planted candidates: unrated movies by ``score(user key, item)``, highest first."""

    def __init__(self, score):
        self.score = score

    def slate(self, recommender, ctx, k):
        rated = set(np.asarray(ctx.history.item_idx).tolist())
        items = [i for i in range(recommender.n_items) if i not in rated]
        return np.asarray(sorted(items, key=lambda i: (-self.score(ctx.key, i), i))[:k], np.int64)


class TasteJudge:
    """A judge that knows the taste world: the position-weighted share of the user's loved genre."""

    def __init__(self, loved):
        self.loved = loved

    def list_score(self, ctx, slate):
        weights = 1.0 / np.log2(np.arange(len(slate)) + 2.0)
        return float(weights @ np.array([self.loved(ctx.key, i) for i in slate], np.float64))


@pytest.fixture
def planted(with_feedback, settings):
    """The snapshot, an oracle of the taste world and list sources good, weaker and bad."""
    settings.GATE_HELDOUT_USER_SHARE = 0.5  # enough gate users for tight intervals on 60 raters
    base = _base()
    snapshot = feedback_snapshot(base=base, rows=comparison_rows(), seed=0)
    genre_of_rater = {
        pk: (movielens_id - 1000) % 4
        for pk, movielens_id in Rater.objects.values_list("pk", "movielens_id")
        if movielens_id
    }
    genre_of_item = (np.asarray(base.item_ids) - 100) // MOVIES_PER_GENRE
    movielens_of = dict(Rater.objects.values_list("pk", "movielens_id"))

    def loved(user, item):
        return float(genre_of_item[item] == genre_of_rater[user])

    sources = {
        "oracle": Planted(loved),
        # the oracle's list for half of the users (even dataset ids), the anti list for the others
        "half": Planted(
            lambda user, item: loved(user, item) if movielens_of[user] % 2 == 0 else 1.0 - loved(user, item)
        ),
        "anti": Planted(lambda user, item: 1.0 - loved(user, item)),
        # the served policy: the oracle's list for a quarter of the users, the anti list for the rest
        # (by the rater's dataset id, not the row id: row ids run on across tests on PostgreSQL)
        "mixed": Planted(
            lambda user, item: loved(user, item) if movielens_of[user] % 4 == 0 else 1.0 - loved(user, item)
        ),
    }
    return base, snapshot, sources, TasteJudge(loved)


def candidate(name: str, algorithm: str, policy, number: int = 1) -> Candidate:
    version = registry.model_version_register(
        algorithm=algorithm,
        version=number,
        artifact=f"{algorithm}-planted",
        metrics={},
        config={},
        seed=0,
        data_snapshot={},
    )
    return Candidate(algorithm, SlateSource(name, policy), version, None)


def test_the_gate_serves_the_better_of_two_planted_candidates_that_beat_the_served_policy(planted):
    base, snapshot, sources, judge = planted
    best = candidate("oracle", "ppo", sources["oracle"])
    weaker = candidate("half", "quality_rerank", sources["half"])
    decision = stage_gate(
        reporter=None,
        snapshot=snapshot,
        base=base,
        candidates=[weaker, best],
        judge=Judge(judge, accuracy=0.9, n_strict=100),
        incumbent=(SlateSource("mixed", sources["mixed"]), "base v1"),
    )
    assert decision.changed and decision.served == "ppo", decision.reason
    best.version.refresh_from_db()
    weaker.version.refresh_from_db()
    assert best.version.status == ModelVersion.Status.ACTIVE
    assert weaker.version.status == ModelVersion.Status.CANDIDATE
    served = registry.served_decision()  # what the gate chose is what users get, not only active
    assert (served.version, served.action) == (best.version, ServingDecision.Action.ACTIVATED)
    assert (
        weaker.version.gate["passed"] and "ppo has the higher judge win rate" in weaker.version.gate["reason"]
    )
    report = best.version.gate
    assert report["chosen"] and report["served"] == "ppo" and report["incumbent"] == "base v1"
    assert report["judge"]["accuracy"] == 0.9 and report["judge"]["trusted"]
    entries = {entry["name"]: entry for entry in report["candidates"]}
    assert set(entries) == {"ppo", "quality_rerank"}
    assert entries["ppo"]["judge"]["mean"] > entries["quality_rerank"]["judge"]["mean"] > 0.5
    for entry in entries.values():
        assert {"mean", "low", "high", "n"} <= set(entry["judge"]) and entry["judge"]["n"] >= 10
        assert entry["replay"] is not None and entry["ndcg_difference"]["n"] > 0
        assert {"judge_win_rate", "replay", "ndcg_difference", "kl"} <= set(entry["checks"])


def test_the_gate_keeps_the_served_policy_when_no_planted_candidate_beats_it(planted):
    base, snapshot, sources, judge = planted
    worse = candidate("half", "ppo", sources["half"])
    worst = candidate("anti", "best_of_n", sources["anti"])
    decision = stage_gate(
        reporter=None,
        snapshot=snapshot,
        base=base,
        candidates=[worse, worst],
        judge=Judge(judge, accuracy=0.9, n_strict=100),
        incumbent=(SlateSource("oracle", sources["oracle"]), "base v1"),
    )
    assert not decision.changed and decision.served == "base v1"
    assert "no candidate beats base v1" in decision.reason
    for version in (worse.version, worst.version):
        version.refresh_from_db()
        assert version.status == ModelVersion.Status.CANDIDATE and not version.gate["passed"]
        assert "does not clear 0.5" in version.gate["reason"]
    assert registry.active_version(algorithm="base") is not None


def test_a_judge_that_is_not_better_than_chance_lets_nothing_through(planted):
    base, snapshot, sources, judge = planted
    best = candidate("oracle", "ppo", sources["oracle"])
    decision = stage_gate(
        reporter=None,
        snapshot=snapshot,
        base=base,
        candidates=[best],
        judge=Judge(judge, accuracy=0.5, n_strict=100),
        incumbent=(SlateSource("mixed", sources["mixed"]), "base v1"),
    )
    assert not decision.changed and "judge is not trusted" in decision.reason


def test_the_learners_reward_model_may_judge_only_a_candidate_that_learned_nothing_from_feedback(planted):
    base, snapshot, sources, judge = planted
    learned = candidate("oracle", "ppo", sources["oracle"])
    feedback_free = candidate("oracle", "quality_rerank", sources["oracle"])
    decision = stage_gate(
        reporter=None,
        snapshot=snapshot,
        base=base,
        candidates=[learned, feedback_free],
        judge=Judge(judge, accuracy=0.5, n_strict=100),  # the independent judge is at chance
        incumbent=(SlateSource("mixed", sources["mixed"]), "base v1"),
        learner=Judge(judge, accuracy=0.9, n_strict=100),
    )
    assert decision.served == "quality_rerank", decision.reason
    entries = {entry["name"]: entry for entry in feedback_free.version.gate["candidates"]}
    assert entries["quality_rerank"]["judge_name"] == "learner's reward model"
    assert not entries["ppo"]["passed"] and "not trusted" in entries["ppo"]["reason"]


def test_the_gates_and_baselines_defaults_are_the_experiments(settings):
    from training.ml.experiment import ExperimentConfig
    from training.ml.rerankers import BestOfN, QualityRerank, RewardRerank

    config = ExperimentConfig()
    product = {
        "min_judge_accuracy": settings.GATE_MIN_JUDGE_ACCURACY,
        "max_kl": settings.GATE_MAX_KL,
        "bootstrap_rounds": settings.GATE_BOOTSTRAP_ROUNDS,
        "a": settings.RERANK_QUALITY_WEIGHT,
        "b": settings.RERANK_REWARD_WEIGHT,
        "n": settings.RERANK_BEST_OF_N,
    }
    assert product == {
        "min_judge_accuracy": config.gate_min_judge_accuracy,
        "max_kl": config.gate_max_kl,
        "bootstrap_rounds": config.bootstrap_rounds,
        "a": QualityRerank.weight,  # the experiment's defaults before validation chooses
        "b": RewardRerank.weight,
        "n": BestOfN.n,
    }
    assert product["a"] in config.quality_weights and product["b"] in config.reward_weights
    assert product["n"] in config.best_of_n
