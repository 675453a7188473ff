"""The closed-loop RLHF experiment: simulated feedback rounds on MovieLens, judged on a later time period.

Each user's ratings are cut by time into three periods (``split_periods``):

    train (oldest ~60%)  ->  feedback (next ~20%)  ->  test (latest ~20%)

1. The supervised recommender is trained on the train period only.
2. Every round, simulated annotators compare two lists for sampled users. Their taste is an
   ``OracleTaste`` over the *feedback-period* ratings, so the feedback says something the train
   period does not. Lists come from the current policies: the recommender sampled twice
   (round 1), then also the current PPO policy against the reference policy it is held to
   (on-policy feedback).
   Each judgement's templated reason goes through the project's NLP (``training.ml.text``) and its
   signals are attached to that user's context. Comparisons accumulate over rounds.
3. Every round the reward model, PPO and Q-learning are retrained *from scratch* on everything
   collected so far. The comparisons of a fixed 20% of users never train the reward model; its
   accuracy is measured on them.
4. Every round the policies are judged on the *test period*, which nothing in the loop ever
   reads: a low-temperature annotator over an ``OracleTaste`` of test-period ratings compares
   each policy's list with the recommender's (win rate, bootstrap 95% interval over users), and
   NDCG@10 counts test ratings >= 4 among the top 10.

What each model sees, stated once:
- in the loop (comparisons, reward model, PPO, Q-learning): a user's train-period history, plus
  the signals of their reasons given before the comparison at hand (reward model) or so far
  (policies);
- at test time, identical for all three models: the user's train + feedback history (both periods
  are in the past by then) and every signal collected in the loop; movies rated in those two
  periods are never recommended. The recommender's weights are never retrained on the feedback
  period: it only folds the longer history in, exactly as serving does.

Feedback-period "validation" metrics (win rate on the reward model's held-out users, NDCG@10 on
feedback-period ratings from train histories) are reported next to the test metrics; defaults are
chosen by looking at those, never at the test period.

This module never imports Django; ``manage.py rlhf_experiment`` is a thin wrapper around
:func:`run_experiment` and :func:`write_report`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.ml.data import History, Snapshot, item_genres
from training.ml.dqn import DQNConfig
from training.ml.evaluation import ndcg_difference
from training.ml.gate import (
    GateDecision,
    GateRules,
    gate_decide,
)
from training.ml.metrics import bootstrap_mean, ndcg_at_k, recall_at_k
from training.ml.norms import (
    NORM_TERMS,
    POPULATIONS,
    ListAttributes,
    ListNorms,
    NormsConfig,
    NormsJudge,
    label_coefficients,
    mean_norms,
    norm_terms,
    population_norms,
)
from training.ml.policy import NumpySlatePolicy
from training.ml.ppo import PPOConfig
from training.ml.recommender import RecommenderConfig, train_recommender
from training.ml.rerankers import (
    BestOfN,
    MMRRerank,
    QualityRerank,
    RewardGreedy,
    RewardMMR,
    RewardRerank,
    best_of_n_kl,
    shrunk_mean_ratings,
)
from training.ml.reward_model import (
    SET_TERMS,
    Comparison,
    NumpyRewardModel,
    RewardModelConfig,
    evaluate_reward_model,
)
from training.ml.rlhf import SlateSource, World, bootstrap_win_rate, build_world, kl_from_reference
from training.ml.scoring import NumpyRecommender
from training.ml.simulator import OracleTaste, SimulatedAnnotator, make_annotators
from training.ml.stages import candidate_evidence, fit_policy, fit_reward_model, judge_trusted
from training.ml.user_features import UserContext, make_user_context

TRAIN, FEEDBACK, TEST, BEFORE_TEST = 0, 1, 2, 3
PERIOD_NAMES = ("train", "feedback", "test")

ProgressCallback = Callable[[str, int, int], None]  # (stage description, steps done, total steps)


def default_ppo_config() -> PPOConfig:
    """PPO as the experiment runs it: the product's defaults, which were chosen here (docs/experiment.md)."""
    return PPOConfig(seed=1)


def default_dqn_config() -> DQNConfig:
    """Q-learning as the experiment runs it: the same candidate set and reference as PPO."""
    return DQNConfig(seed=1)


def default_reward_config() -> RewardModelConfig:
    """The reward model as the experiment runs it: the product's defaults, which were chosen here
    (learning rate, L2, no rating pairs; docs/experiment.md). Held-out users replace the trainer's
    random validation split.
    """
    return RewardModelConfig(validation_fraction=0.0)


@dataclass
class ExperimentConfig:
    """Everything that defines one run of the closed-loop experiment."""

    rounds: int = 4  # feedback rounds; models are retrained after each
    comparisons_per_round: int = 500  # simulated judgements collected per round
    annotators: int = 3  # simulated annotators sharing the work (they differ by seed and deviation)
    temperature: float = 0.04  # annotators' Bradley-Terry temperature on oracle quality (--noise)
    annotator_deviation: float = 0.0  # std of each annotator's fixed personal deviation from the oracle
    population: str = "taste"  # "taste": lists judged by per-movie utility; "norms": plus list-level norms
    norms: NormsConfig = field(default_factory=NormsConfig)  # the norms population's terms and spread
    norms_deviation: float = 0.2  # annotator_deviation of the norms population (strict agreement ~70%)
    agreement_pairs: int = 500  # recommender-sampled pairs every two annotators judge (agreement)
    train_fraction: float = 0.6  # share of each user's oldest ratings in the train period (at least)
    feedback_fraction: float = 0.2  # share of the next ratings in the feedback period; the rest is test
    min_ratings: int = 10  # users with fewer ratings stay entirely in the train period
    slate_size: int = 10  # K, movies per list (compared, trained on and evaluated at NDCG@K)
    exploration_temperature: float = 1.0  # sampling temperature of recommender-only comparisons
    on_policy_fraction: float = 0.5  # share of comparisons from round 2 on that involve PPO
    split: str = "user"  # "user": each user's own ratings cut by time; "global": one cut-off date for all
    heldout_user_fraction: float = (
        0.2  # validation users: nothing of theirs trains anything; settings and gate
    )
    test_user_fraction: float = 0.2  # test users (per-user split): nothing of theirs trains anything
    seen_heldout_fraction: float = (
        0.15  # training users' comparisons kept from the reward model (seen-user accuracy)
    )
    history_fraction: float = (
        0.5  # global split: share of a user's ratings in a period known before it is judged
    )
    quality_weights: tuple[float, ...] = (
        0.0,
        0.1,
        0.25,
        0.5,
        1.0,
    )  # quality_rerank's a, chosen on validation
    reward_weights: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.0)  # rm_rerank's b, chosen on validation
    best_of_n: tuple[int, ...] = (4, 8, 16, 32, 64)  # best_of_n's n, chosen on validation
    mmr_weights: tuple[float, ...] = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)  # mmr's lambda, chosen on validation
    norms_mmr_weights: tuple[float, ...] = (
        1.0,
        0.9,
        0.8,
        0.7,
        0.6,
        0.5,
        0.4,
        0.3,
        0.2,
        0.1,
    )  # mmr's lambda for `norms`: 0.5, the first grid's edge, won in 7 of 10 seeds (docs/experiment.md)
    ppo_kl_targets: tuple[
        float, ...
    ] = ()  # PPO's KL targets chosen on validation after the last round; () = ppo's own
    norms_ppo_kl_targets: tuple[float, ...] = (
        2.0,
        4.0,
        6.0,
        8.0,
    )  # ppo_kl_targets for `norms` (4 came from `taste`); above 8 the controller's horizon saturates
    greedy_weights: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)  # rm_greedy's b, chosen on validation
    norms_rm_mmr_weights: tuple[float, ...] = (
        0.0,
        0.25,
        0.5,
        1.0,
        2.0,
    )  # rm_mmr's b for `norms` (0 = mmr itself), at mmr's chosen lambda; () elsewhere
    max_ndcg_loss: float = 0.003  # a baseline's setting may cost at most this validation NDCG@10
    pseudo_ratings: float = 5.0  # shrinkage of quality_rerank's mean ratings
    mean_rating_feature: bool = True  # the reward model and policies see each movie's shrunk mean rating
    gate_min_judge_accuracy: float = 0.55  # the gate's judge must beat chance by this on held-out comparisons
    gate_max_kl: float = (
        10.0  # the gate refuses policies further than this from the reference (nats per list)
    )
    judge_temperature: float = 0.01  # temperature of the test-period (and validation) judge: nearly noiseless
    bootstrap_rounds: int = 1000  # resamples of users for the win-rate intervals
    kl_users: int = 100  # users sampled to estimate each policy's KL from the reference
    kl_samples: int = 4  # lists sampled per user for the KL estimate
    max_eval_users: int | None = None  # cap on test/validation users (None = all); for quick runs
    evaluate_every_round: bool = (
        False  # False: Q-learning, the baselines and the gate only after the last round
    )
    seed: int = (
        0  # seeds everything: models (their own seeds are overridden, see `seeded`), sampling, annotators
    )
    recommender: RecommenderConfig = field(default_factory=RecommenderConfig)  # supervised recommender
    reward: RewardModelConfig = field(default_factory=default_reward_config)  # reward model
    ppo: PPOConfig = field(default_factory=default_ppo_config)  # PPO slate policy
    dqn: DQNConfig = field(default_factory=default_dqn_config)  # Q-learning slate policy

    @property
    def mmr_grid(self) -> tuple[float, ...]:
        """mmr's lambdas tried on validation: the wider grid for `norms`, the first one for `taste`."""
        return self.norms_mmr_weights if self.population == "norms" else self.mmr_weights

    @property
    def rm_mmr_grid(self) -> tuple[float, ...]:
        """rm_mmr's b tried on validation: `norms` only (the policy was added after seeds 0-19)."""
        return self.norms_rm_mmr_weights if self.population == "norms" else ()

    @property
    def kl_target_grid(self) -> tuple[float, ...]:
        """PPO's KL targets tried on validation; () keeps ``ppo.target_kl_for_controller`` (`taste`)."""
        if self.ppo_kl_targets:
            return self.ppo_kl_targets
        return self.norms_ppo_kl_targets if self.population == "norms" else ()


def seeded(config: ExperimentConfig) -> ExperimentConfig:
    """The config with every model seeded from ``config.seed`` (one seed defines the whole run).

    Recommender and reward model get ``seed``, PPO and Q-learning ``seed + 1`` (as the product
    pipeline seeds them). The ``norms`` population gets the set-aware reward model.
    """
    if config.population not in POPULATIONS:
        raise ValueError(f"unknown population {config.population!r}: one of {POPULATIONS}")
    set_features = config.reward.set_features or config.population == "norms"
    return replace(
        config,
        recommender=replace(config.recommender, seed=config.seed),
        reward=replace(config.reward, seed=config.seed, set_features=set_features),
        ppo=replace(config.ppo, seed=config.seed + 1),
        dqn=replace(config.dqn, seed=config.seed + 1),
    )


# --- 1. Periods --------------------------------------------------------------------------------


@dataclass
class Periods:
    """The time periods over one snapshot (same users and catalogue in each).

    Every rating has one label: ``TRAIN`` (known to the loop: users' histories while feedback is
    collected), ``FEEDBACK`` (what the annotators' taste is built from, and the validation
    targets), ``TEST`` (the test targets, read by nothing but the final judges) or
    ``BEFORE_TEST`` (global split only: known at test time, in no loop period). The recommender is
    trained on ``recommender_train`` (the ``TRAIN`` ratings, or, in the global split, only those
    before the first cut-off date).
    """

    snapshot: Snapshot  # every rating
    period: np.ndarray  # int8 [n_ratings] TRAIN, FEEDBACK, TEST or BEFORE_TEST of each rating
    eligible: np.ndarray  # bool [n_users] loop users: ratings in TRAIN and in FEEDBACK
    test_eligible: np.ndarray | None = None  # bool [n_users] users with TEST ratings; None = ``eligible``
    recommender_mask: np.ndarray | None = None  # bool [n_ratings] the recommender's data; None = TRAIN
    cutoffs: tuple[int, int] | None = None  # global split: the two cut-off timestamps

    @property
    def train(self) -> Snapshot:
        return self.snapshot.select(self.period == TRAIN)

    @property
    def feedback(self) -> Snapshot:
        return self.snapshot.select(self.period == FEEDBACK)

    @property
    def test(self) -> Snapshot:
        return self.snapshot.select(self.period == TEST)

    @property
    def known_at_test(self) -> Snapshot:
        """Everything that happened before the test targets."""
        return self.snapshot.select(self.period != TEST)

    @property
    def recommender_train(self) -> Snapshot:
        mask = self.period == TRAIN if self.recommender_mask is None else self.recommender_mask
        return self.snapshot.select(mask)

    @property
    def test_users(self) -> np.ndarray:
        return self.eligible if self.test_eligible is None else self.test_eligible

    def sizes(self) -> dict[str, int]:
        sizes = {name: int((self.period == p).sum()) for p, name in enumerate(PERIOD_NAMES)}
        if (self.period == BEFORE_TEST).any():
            sizes["before_test"] = int((self.period == BEFORE_TEST).sum())
        if self.recommender_mask is not None:
            sizes["recommender"] = int(self.recommender_mask.sum())
        return sizes


def split_periods(
    snapshot: Snapshot, train_fraction: float = 0.6, feedback_fraction: float = 0.2, min_ratings: int = 10
) -> Periods:
    """Cut each user's time-ordered ratings into train, feedback and test periods.

    A user with ``n >= min_ratings`` ratings gives ``max(1, floor(test_fraction * n))`` of their
    latest ratings to test and ``max(1, floor(feedback_fraction * n))`` of the ones before to
    feedback (``test_fraction = 1 - train_fraction - feedback_fraction``); the rest, at least
    ``train_fraction`` of them, stays in train. Users with fewer ratings stay in train entirely.
    The order is the snapshot's (timestamp, movie id), so the split is deterministic and every
    rating lands in exactly one period, never before a rating of an earlier period.
    """
    test_fraction = 1.0 - train_fraction - feedback_fraction
    if min(train_fraction, feedback_fraction, test_fraction) <= 0:
        raise ValueError("train, feedback and test fractions must all be positive")
    counts = np.diff(snapshot.indptr)
    eligible = counts >= max(min_ratings, 3)
    # + 1e-9: a fraction like 1 - 0.8 = 0.19999999999999996 must still give floor(0.2 * 30) = 6.
    n_test = np.where(eligible, np.maximum(1, np.floor(test_fraction * counts + 1e-9)), 0)
    n_feedback = np.where(eligible, np.maximum(1, np.floor(feedback_fraction * counts + 1e-9)), 0)
    position = np.arange(snapshot.n_ratings) - snapshot.indptr[snapshot.user_idx]
    from_end = counts[snapshot.user_idx] - 1 - position
    user_test, user_feedback = n_test[snapshot.user_idx], n_feedback[snapshot.user_idx]
    period = np.full(snapshot.n_ratings, TRAIN, np.int8)
    period[from_end < user_test + user_feedback] = FEEDBACK
    period[from_end < user_test] = TEST
    return Periods(snapshot=snapshot, period=period, eligible=eligible)


def split_periods_global(
    snapshot: Snapshot,
    train_fraction: float = 0.6,
    feedback_fraction: float = 0.2,
    history_fraction: float = 0.5,
) -> Periods:
    """One cut-off date for every user: ratings before t1 train the recommender, [t1, t2) is the
    feedback period and t2 onwards the test period (t1, t2 at those quantiles of all timestamps).

    Within each later period, a user's earliest ``history_fraction`` of ratings there (at least one)
    is what is known of them when they are judged, folded in at request time as serving does; the
    rest are the targets. A user needs two ratings in a period to be judged in it. The recommender
    never sees a rating from t1 on.
    """
    if not (train_fraction > 0 and feedback_fraction > 0 and train_fraction + feedback_fraction < 1):
        raise ValueError("train and feedback fractions must be positive and sum to less than 1")
    if not 0 < history_fraction < 1:
        raise ValueError("history_fraction must be between 0 and 1")
    t1, t2 = np.quantile(snapshot.timestamp, [train_fraction, train_fraction + feedback_fraction])
    window = np.where(snapshot.timestamp < t1, 0, np.where(snapshot.timestamp < t2, 1, 2))
    period = np.full(snapshot.n_ratings, TRAIN, np.int8)
    n_users = snapshot.n_users
    judged = {1: np.zeros(n_users, bool), 2: np.zeros(n_users, bool)}
    for w, (known, target) in ((1, (TRAIN, FEEDBACK)), (2, (BEFORE_TEST, TEST))):
        rows = np.flatnonzero(window == w)  # the snapshot is ordered by user, then time
        users = snapshot.user_idx[rows]
        count = np.bincount(users, minlength=n_users)
        start = np.concatenate([[0], np.cumsum(count)])[users]
        rank = np.arange(len(rows)) - start
        n_known = np.maximum(1, np.floor(history_fraction * count + 1e-9)).astype(np.int64)[users]
        period[rows] = np.where((rank < n_known) | (count[users] < 2), known, target)
        judged[w] = count >= 2
    if not (window == 0).any():
        raise ValueError("no rating falls before the first cut-off date")
    return Periods(
        snapshot=snapshot,
        period=period,
        eligible=judged[1],
        test_eligible=judged[2],
        recommender_mask=window == 0,
        cutoffs=(int(t1), int(t2)),
    )


def oracle_frame(snapshot: Snapshot) -> pd.DataFrame:
    """A snapshot's ratings as the ``user, item, rating, timestamp`` frame OracleTaste reads (indices)."""
    return pd.DataFrame(
        {
            "user": snapshot.user_idx.astype(np.int64),
            "item": snapshot.item_idx.astype(np.int64),
            "rating": snapshot.rating,
            "timestamp": snapshot.timestamp,
        }
    )


def relevant_items(snapshot: Snapshot, threshold: float = 4.0) -> dict[int, set[int]]:
    """Movies each user rated at least ``threshold`` in ``snapshot``; users without any omitted."""
    keep = snapshot.rating >= threshold
    relevant: dict[int, set[int]] = {}
    for user, item in zip(snapshot.user_idx[keep].tolist(), snapshot.item_idx[keep].tolist(), strict=True):
        relevant.setdefault(user, set()).add(item)
    return relevant


# --- 2. The simulated feedback loop --------------------------------------------------------------


@dataclass
class FeedbackLog:
    """Every simulated judgement so far, with the signals each user's reasons produced."""

    comparisons: list[Comparison] = field(default_factory=list)  # user key = (user, comparison number)
    users: list[int] = field(default_factory=list)  # user index of each comparison
    rounds: list[int] = field(default_factory=list)  # round (1-based) of each comparison
    kinds: list[str] = field(default_factory=list)  # "recommender vs recommender" or "ppo vs recommender"
    oracle_prefers_a: list[float] = field(default_factory=list)  # 1/0/0.5: the noise-free oracle's answer
    taste_prefers_a: list[float] = field(default_factory=list)  # the same without the user's own ratings
    prior_signals: list[int] = field(default_factory=list)  # how many of the user's signals came before it
    new_signals: list[int] = field(default_factory=list)  # how many signals its own reason gave
    reasons: list[str | None] = field(default_factory=list)  # the annotator's text
    signals: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # per user, oldest first

    def __len__(self) -> int:
        return len(self.comparisons)


def _side_outcome(outcome: str, candidate_left: bool) -> float:
    """1 when the candidate's list was chosen, 0 when the other, 0.5 for a tie or 'both bad'."""
    if outcome in ("tie", "both_bad"):
        return 0.5
    return float((outcome == "a") == candidate_left)


def simulate_comparisons(
    *,
    log: FeedbackLog,
    n: int,
    round_number: int,
    world: World,
    users: np.ndarray,
    annotators: Sequence[SimulatedAnnotator],
    analyzer: Any,
    ppo: NumpySlatePolicy | None,
    config: ExperimentConfig,
    rng: np.random.Generator,
    judge: Any = None,
) -> None:
    """Append ``n`` judgements for users drawn uniformly from ``users`` to ``log``.

    With ``ppo`` given, an ``on_policy_fraction`` of them compare a sample of the PPO policy with a
    sample of the reference policy PPO is regularised towards (softmax of the recommender's scores
    at ``ppo.ref_temperature``); the rest compare two samples of the recommender at
    ``exploration_temperature``, which cover its top candidates broadly. Which list is shown left
    is random. ``judge`` (default: the annotators' oracle) is the noise-free answer the label ceiling
    is measured against.
    """
    reference = SlateSource("recommender")
    policy = SlateSource("ppo", ppo) if ppo is not None else None
    oracle = annotators[0].oracle if judge is None else judge
    for _ in range(n):
        user = int(rng.choice(users))
        ctx = world.context(user)
        on_policy = policy is not None and rng.random() < config.on_policy_fraction
        if on_policy:  # each policy as it samples itself: PPO, and the reference PPO is held to
            first, _ = policy.sample(world, ctx, config.slate_size, rng, 1.0)
            second, _ = reference.sample(world, ctx, config.slate_size, rng, config.ppo.ref_temperature)
        else:  # broad exploration of the recommender's top candidates
            first, _ = reference.sample(world, ctx, config.slate_size, rng, config.exploration_temperature)
            second, _ = reference.sample(world, ctx, config.slate_size, rng, config.exploration_temperature)
        left, right = (first, second) if rng.random() < 0.5 else (second, first)
        annotator = annotators[int(rng.integers(len(annotators)))]
        judgement = annotator.compare(user, left, right)
        quality_gap = oracle.quality(user, left) - oracle.quality(user, right)
        taste_gap = oracle.taste_quality(user, left) - oracle.taste_quality(user, right)
        user_signals = log.signals.setdefault(user, [])
        log.comparisons.append(
            Comparison(user=(user, len(log)), slate_a=left, slate_b=right, outcome=judgement.outcome)
        )
        log.users.append(user)
        log.rounds.append(round_number)
        log.kinds.append("ppo vs recommender" if on_policy else "recommender vs recommender")
        log.oracle_prefers_a.append(0.5 if quality_gap == 0 else float(quality_gap > 0))
        log.taste_prefers_a.append(0.5 if taste_gap == 0 else float(taste_gap > 0))
        log.prior_signals.append(len(user_signals))
        log.reasons.append(judgement.reason)
        found = [s.as_dict() for s in analyzer.analyze(judgement.reason).signals] if judgement.reason else []
        log.new_signals.append(len(found))
        user_signals.extend(found)


def loop_contexts(
    world: World, histories: dict[int, History], signals: dict[int, list[dict[str, Any]]]
) -> dict[int, UserContext]:
    """One context per user: their history plus every signal they gave so far."""
    return {
        user: make_user_context(
            history, world.recommender, world.item_features, signals=signals.get(user) or None, key=user
        )
        for user, history in histories.items()
    }


def comparison_contexts(
    world: World, histories: dict[int, History], log: FeedbackLog, rows: Sequence[int]
) -> dict[Hashable, UserContext]:
    """Per-comparison contexts: the user's history plus only the signals given *before* it.

    A reason explains the very choice it comes with; letting it into that comparison's context
    would hand the reward model the answer.
    """
    contexts: dict[Hashable, UserContext] = {}
    for row in rows:
        user = log.users[row]
        signals = log.signals.get(user, [])[: log.prior_signals[row]]
        contexts[log.comparisons[row].user] = make_user_context(
            histories[user],
            world.recommender,
            world.item_features,
            signals=signals or None,
            key=log.comparisons[row].user,
        )
    return contexts


# --- 3. Evaluation -------------------------------------------------------------------------------


def policy_lists(
    source: SlateSource, world: World, contexts: dict[int, UserContext], users: Sequence[int], k: int
) -> dict[int, np.ndarray]:
    """Each user's greedy top-k list from ``source`` (rated movies excluded)."""
    return {user: source.slate(world, contexts[user], k) for user in users}


def judged_win_rate(
    candidate: dict[int, np.ndarray],
    incumbent: dict[int, np.ndarray],
    judge: SimulatedAnnotator,
    users: Sequence[int],
    bootstrap_rounds: int,
    seed: int,
) -> dict[str, float]:
    """Share of users whose judge prefers the candidate's list (ties 0.5), with a bootstrap 95% interval."""
    outcomes = []
    for j, user in enumerate(users):
        candidate_left = j % 2 == 0  # alternate sides: a judge with a side bias would cancel out
        left, right = (
            (candidate[user], incumbent[user]) if candidate_left else (incumbent[user], candidate[user])
        )
        outcomes.append(_side_outcome(judge.compare(user, left, right).outcome, candidate_left))
    return bootstrap_win_rate(outcomes, rounds=bootstrap_rounds, seed=seed)


def mean_ndcg(lists: dict[int, np.ndarray], relevant: dict[int, set[int]], k: int) -> float:
    users = [u for u in lists if relevant.get(u)]
    return float(np.mean([ndcg_at_k(lists[u], relevant[u], k) for u in users])) if users else float("nan")


def mean_recall(lists: dict[int, np.ndarray], relevant: dict[int, set[int]], k: int) -> float:
    users = [u for u in lists if relevant.get(u)]
    return float(np.mean([recall_at_k(lists[u], relevant[u], k) for u in users])) if users else float("nan")


def mean_quality(lists: dict[int, np.ndarray], oracle: OracleTaste) -> float:
    return float(np.mean([oracle.quality(user, slate) for user, slate in lists.items()]))


def quality_difference(
    candidate: dict[int, np.ndarray],
    incumbent: dict[int, np.ndarray],
    oracle: OracleTaste,
    bootstrap_rounds: int,
    seed: int,
) -> dict[str, float]:
    """Mean per-user oracle list quality of the candidate minus the incumbent, paired bootstrap 95% interval."""
    diff = [oracle.quality(u, candidate[u]) - oracle.quality(u, incumbent[u]) for u in candidate]
    return bootstrap_mean(diff, rounds=bootstrap_rounds, seed=seed)


def annotator_agreement(
    annotators: Sequence[SimulatedAnnotator],
    world: World,
    users: np.ndarray,
    n_pairs: int,
    temperature: float,
    seed: int,
) -> dict[str, float]:
    """How often two annotators make the same strict choice on the same pair of lists.

    ``n_pairs`` pairs of the recommender's samples (at the exploration ``temperature``, as round 1
    shows them) for users drawn from ``users``, each judged by every annotator; strict agreement
    (``training.ml.agreement.percent_agreement`` over the pairs both answered "a" or "b") and Cohen's
    kappa, averaged over annotator pairs. Fresh generators: the loop's random stream is untouched.
    """
    from training.ml.agreement import cohen_kappa, percent_agreement

    rng = np.random.default_rng([seed, 7])
    reference = SlateSource("recommender")
    pairs = []
    for _ in range(n_pairs):
        user = int(rng.choice(users))
        first, _ = reference.sample(world, world.context(user), 10, rng, temperature)
        second, _ = reference.sample(world, world.context(user), 10, rng, temperature)
        pairs.append((user, first, second))
    judges = [
        SimulatedAnnotator(
            a.oracle, a.temperature, a.seed + 500, a.noise, a.tie_threshold, with_reasons=False, norms=a.norms
        )
        for a in annotators
    ]
    labels = [[judge.compare(u, left, right).outcome for u, left, right in pairs] for judge in judges]
    agreements, kappas = [], []
    for i in range(len(judges)):
        for j in range(i + 1, len(judges)):
            both = [p for p in range(n_pairs) if labels[i][p] in ("a", "b") and labels[j][p] in ("a", "b")]
            agreements.append(percent_agreement([labels[i][p] for p in both], [labels[j][p] for p in both]))
            kappas.append(cohen_kappa([labels[i][p] for p in both], [labels[j][p] for p in both]))
    return {
        "strict_agreement": float(np.mean(agreements)) if agreements else float("nan"),
        "cohen_kappa": float(np.mean(kappas)) if kappas else float("nan"),
        "n_pairs": n_pairs,
    }


# --- 4. The experiment ---------------------------------------------------------------------------


@dataclass
class ExperimentReport:
    """What ``run_experiment`` measured; ``as_dict`` is the results.json document."""

    config: dict[str, Any]  # the ExperimentConfig as a dict (nested configs included)
    data: dict[str, Any]  # dataset description: sizes of the periods, users, fingerprint
    recommender: dict[str, Any]  # training record of the supervised recommender
    rounds: list[dict[str, Any]]  # one entry per round (see run_experiment)
    total_seconds: float = 0.0  # wall-clock time of the whole run

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_seen_heldout(row: int, fraction: float, seed: int) -> bool:
    """Whether comparison ``row`` of a training user is kept from the reward model (fixed per row)."""
    return fraction > 0 and (row * 2654435761 + seed * 40503) % 10_000 < fraction * 10_000


def reward_rows(
    log: FeedbackLog,
    heldout_users: set[int],
    training_users: set[int] | None = None,
    seen_fraction: float = 0.0,
    seed: int = 0,
) -> tuple[list[int], list[int], list[int]]:
    """(rows that train the reward model, unseen-user rows, seen-user held-out rows).

    Unseen-user rows are every comparison of a held-out (validation) user: split by user, never by
    comparison. Seen-user rows are a fixed ``seen_fraction`` of the training users' comparisons,
    kept out of training to measure how well the model knows the users it learned from. Rows of
    users in neither group (test users) train nothing.
    """
    train_rows, unseen_rows, seen_rows = [], [], []
    for j, user in enumerate(log.users):
        if user in heldout_users:
            unseen_rows.append(j)
        elif training_users is None or user in training_users:
            (seen_rows if is_seen_heldout(j, seen_fraction, seed) else train_rows).append(j)
    return train_rows, unseen_rows, seen_rows


def normalised_accuracy(accuracy: float, ceiling: float) -> float:
    """(accuracy - 0.5) / (ceiling - 0.5): 0 is a coin flip, 1 is the noise-free oracle."""
    if not np.isfinite(accuracy) or not np.isfinite(ceiling) or ceiling <= 0.5:
        return float("nan")
    return float((accuracy - 0.5) / (ceiling - 0.5))


def label_ceiling(log: FeedbackLog, rows: Sequence[int], without_own_ratings: bool = False) -> float:
    """Share of the strict labels in ``rows`` that the noise-free oracle agrees with.

    What a reward model that knew the annotators' true taste would score on these labels. With
    ``without_own_ratings``, the oracle's taste part alone (``OracleTaste.taste_utility``): what
    a reward model would score that knew every movie's quality and each user's genre taste in the
    oracle period, but not which movies the user rated then, nor how.
    """
    answers = log.taste_prefers_a if without_own_ratings else log.oracle_prefers_a
    strict = [j for j in rows if log.comparisons[j].outcome in ("a", "b")]
    if not strict:
        return float("nan")
    return float(np.mean([(log.comparisons[j].outcome == "a") == (answers[j] == 1.0) for j in strict]))


def _train_reward(
    log: FeedbackLog,
    world: World,
    train_histories: dict[int, History],
    user_contexts: dict[int, UserContext],
    reward_users: set[int],
    heldout_users: set[int],
    config: ExperimentConfig,
    list_attributes: ListAttributes | None = None,
) -> tuple[NumpyRewardModel, dict[str, Any], float]:
    """Fit the reward model from scratch on the training users' comparisons; evaluate on held-out ones."""
    train_rows, heldout_rows, seen_rows = reward_rows(
        log, heldout_users, reward_users, config.seen_heldout_fraction, config.seed
    )
    started = time.perf_counter()
    contexts: dict[Hashable, UserContext] = {
        **{u: user_contexts[u] for u in reward_users},
        **comparison_contexts(world, train_histories, log, train_rows),
    }
    fit = fit_reward_model(
        [log.comparisons[j] for j in train_rows],
        raters={u: user_contexts[u] for u in sorted(reward_users)},
        contexts=contexts,
        item_features=world.item_features,
        config=config.reward,
        list_attributes=list_attributes,
    )
    model, result, rating_pairs = fit.model, fit.result, fit.rating_pairs
    seconds = time.perf_counter() - started
    heldout = [log.comparisons[j] for j in heldout_rows]
    evaluation = evaluate_reward_model(
        model, heldout, comparison_contexts(world, train_histories, log, heldout_rows)
    )
    by_kind: dict[str, dict[str, float]] = {}
    for kind in sorted({log.kinds[j] for j in heldout_rows}):
        rows = [j for j in heldout_rows if log.kinds[j] == kind]
        kind_eval = evaluate_reward_model(
            model, [log.comparisons[j] for j in rows], comparison_contexts(world, train_histories, log, rows)
        )
        by_kind[kind] = {
            "accuracy": kind_eval["accuracy"],
            "n_strict": int(kind_eval["n_strict"]),
            "label_ceiling": label_ceiling(log, rows),
            "taste_ceiling": label_ceiling(log, rows, without_own_ratings=True),
        }
    seen = evaluate_reward_model(
        model,
        [log.comparisons[j] for j in seen_rows],
        comparison_contexts(world, train_histories, log, seen_rows),
    )
    ceiling = label_ceiling(log, heldout_rows)
    seen_ceiling = label_ceiling(log, seen_rows)
    metrics = {
        "heldout_accuracy": evaluation["accuracy"],
        "heldout_normalised": normalised_accuracy(evaluation["accuracy"], ceiling),
        "seen_accuracy": seen["accuracy"],
        "seen_n_strict": int(seen["n_strict"]),
        "seen_label_ceiling": seen_ceiling,
        "seen_normalised": normalised_accuracy(seen["accuracy"], seen_ceiling),
        "heldout_margin": evaluation["margin"],
        "heldout_loss": evaluation["loss"],
        "heldout_n": len(heldout),
        "heldout_n_strict": int(evaluation["n_strict"]),
        "heldout_label_ceiling": ceiling,
        "heldout_taste_ceiling": label_ceiling(log, heldout_rows, without_own_ratings=True),
        "train_accuracy": result.final_metrics.get("accuracy", float("nan")),
        "train_n_comparisons": len(train_rows),
        "train_n_rating_pairs": len(rating_pairs),
        "heldout_by_kind": by_kind,
    }
    if model.set_weights is not None:
        metrics["set_weights"] = dict(zip(SET_TERMS, model.set_weights.tolist(), strict=True))
    return model, metrics, seconds


def choose_on_validation(results: dict[str, dict[str, Any]], max_ndcg_loss: float) -> str:
    """The setting with the best validation ``quality_gain`` among those whose ``ndcg_difference`` to
    the recommender is at least ``-max_ndcg_loss``; the first (mildest) setting when none is."""
    keeping = [v for v in results if results[v]["ndcg_difference"] >= -max_ndcg_loss]
    return max(keeping, key=lambda v: results[v]["quality_gain"]) if keeping else next(iter(results))


def split_users(
    loop_users: np.ndarray,
    test_eligible: np.ndarray,
    validation_fraction: float,
    test_fraction: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(validation, test-reserved, training) loop users, disjoint, by a random permutation.

    In the per-user split every loop user can be tested, so ``test_fraction`` of them are kept for
    the test period. In the global split test users are mostly people who arrive later; loop users
    are then only split into validation and training (the test users are every test-eligible user
    that trained nothing).
    """
    shuffled = rng.permutation(loop_users)
    n_validation = max(1, round(validation_fraction * len(shuffled)))
    overlap = test_eligible[shuffled].mean() if len(shuffled) else 0.0
    n_test = max(1, round(test_fraction * len(shuffled))) if overlap > 0.5 else 0
    return (
        shuffled[:n_validation],
        shuffled[n_validation : n_validation + n_test],
        shuffled[n_validation + n_test :],
    )


@dataclass
class ClosedLoop:
    """The experiment's state: periods, recommender, world, oracles and the feedback collected so far.

    ``ClosedLoop.prepare`` does steps 1 (periods, recommender) once; then each round is
    ``collect`` -> ``retrain`` -> ``evaluate``. ``run_experiment`` drives it; the benchmark and
    notebooks can call the steps one by one.
    """

    config: ExperimentConfig
    periods: Periods
    trained: Any  # recommender.TrainingResult of the supervised recommender (train period only)
    world: World  # loop world: train-period histories; contexts refreshed with the signals so far
    train_histories: dict[int, History]  # every user's train-period history (what the loop sees)
    test_histories: dict[int, History]  # eligible users' train + feedback history (what the test sees)
    feedback_oracle: OracleTaste  # taste from feedback-period ratings: the annotators' truth
    test_oracle: OracleTaste  # taste from test-period ratings: only the test judge reads it
    annotators: list[SimulatedAnnotator]
    analyzer: Any  # training.ml.text.TextAnalyzer
    eligible: np.ndarray  # loop users: train and feedback ratings (annotators judge lists for them)
    heldout_users: set[int]  # validation users: none of their comparisons or signals train anything
    reward_users: set[int]  # training users: the only ones whose comparisons and contexts train models
    eval_users: list[int]  # test users: test-period evaluation, never trained on
    validation_users: list[int]  # feedback-period evaluation users (= held-out users); settings, gate
    kl_users: list[int]  # users the KL estimates are averaged over (test users)
    item_quality: np.ndarray  # shrunk mean rating of each movie over the recommender's data (quality_rerank)
    rng: np.random.Generator
    list_attributes: ListAttributes  # genres, decades, franchises: the list-level terms and mmr read them
    feedback_judge: Any  # the population's noise-free judge of the feedback period (validation)
    test_judge: Any  # the same over the test period: only the test judges read it
    judge_norms: ListNorms | None = None  # the population's mean norms (None for "taste")
    log: FeedbackLog = field(default_factory=FeedbackLog)
    ppo_policy: NumpySlatePolicy | None = None  # the current PPO policy (on-policy comparisons)
    dqn_policy: NumpySlatePolicy | None = None
    reward_model: NumpyRewardModel | None = None
    reward_metrics: dict[str, Any] = field(default_factory=dict)  # the reward model's latest held-out metrics
    settings: dict[str, float] = field(default_factory=dict)  # baselines' settings chosen on validation
    kl_targets_tried: dict[str, Any] = field(default_factory=dict)  # PPO's KL targets on validation (norms)

    @classmethod
    def prepare(cls, ratings: pd.DataFrame, movies: pd.DataFrame, config: ExperimentConfig) -> ClosedLoop:
        """Split into periods, train the recommender on the train period, build oracles and annotators."""
        from training.ml.text import TextAnalyzer  # plain Python (VADER); imported here to keep import light

        config = seeded(config)
        rng = np.random.default_rng(config.seed)
        snapshot = Snapshot.from_ratings(ratings, movies)
        if config.split == "user":
            periods = split_periods(
                snapshot, config.train_fraction, config.feedback_fraction, config.min_ratings
            )
        elif config.split == "global":
            periods = split_periods_global(
                snapshot, config.train_fraction, config.feedback_fraction, config.history_fraction
            )
        else:
            raise ValueError(f"unknown split {config.split!r}: 'user' or 'global'")
        train, known = periods.train, periods.known_at_test
        recommender_data = periods.recommender_train
        trained = train_recommender(recommender_data, config.recommender)

        eligible = np.flatnonzero(periods.eligible)
        movie_frame = movies.set_index("item").reindex(snapshot.item_ids)
        titles = movie_frame["title"].fillna("").astype(str).tolist()
        genres = [sorted(g) for g in item_genres(snapshot, movies)]
        years = movie_frame["year"].to_numpy(dtype=np.float64, na_value=np.nan)
        popularity = recommender_data.item_counts().astype(np.float64)  # the recommender's data only
        item_quality = shrunk_mean_ratings(
            recommender_data.item_idx, recommender_data.rating, snapshot.n_items, config.pseudo_ratings
        )
        train_histories = {u: train.history(u) for u in range(snapshot.n_users)}
        world = build_world(
            recommender=trained.scorer,
            histories=train_histories,
            genres=genres,
            years=years,
            popularity=popularity,
            mean_rating=item_quality if config.mean_rating_feature else None,
        )
        features = world.item_features
        feedback_oracle = OracleTaste(
            oracle_frame(periods.feedback), snapshot.n_items, features.genre_multi_hot, features.genres
        )
        test_oracle = OracleTaste(
            oracle_frame(periods.test), snapshot.n_items, features.genre_multi_hot, features.genres
        )
        list_attributes = ListAttributes.from_item_features(features, titles, config.norms.min_shared_genres)
        judge_norms = None
        feedback_judge, test_judge = feedback_oracle, test_oracle
        if config.population == "norms":
            judge_norms = mean_norms(list_attributes, config.norms)
            feedback_judge = NormsJudge(feedback_oracle, judge_norms)
            test_judge = NormsJudge(test_oracle, judge_norms)
        annotators = make_annotators(
            feedback_oracle,
            config.annotators,
            temperature=config.temperature,
            seed=config.seed,
            noise=config.norms_deviation if config.population == "norms" else config.annotator_deviation,
            norms=(
                population_norms(list_attributes, config.norms, config.annotators, config.seed)
                if config.population == "norms"
                else None
            ),
        )
        validation, _reserved, training = split_users(
            eligible,
            periods.test_users,
            config.heldout_user_fraction,
            config.test_user_fraction,
            rng,
        )
        heldout_users = {int(u) for u in validation}
        training_users = {int(u) for u in training}
        eval_users = [
            int(u)
            for u in np.flatnonzero(periods.test_users)
            if int(u) not in training_users and int(u) not in heldout_users
        ]
        test_histories = {u: known.history(u) for u in eval_users}
        validation_users = sorted(heldout_users)
        if config.max_eval_users is not None:
            eval_users = sorted(
                rng.choice(eval_users, min(config.max_eval_users, len(eval_users)), replace=False).tolist()
            )
            validation_users = validation_users[: config.max_eval_users]
        kl_users = sorted(
            rng.choice(eval_users, min(config.kl_users, len(eval_users)), replace=False).tolist()
        )
        return cls(
            config=config,
            periods=periods,
            trained=trained,
            world=world,
            train_histories=train_histories,
            test_histories=test_histories,
            feedback_oracle=feedback_oracle,
            test_oracle=test_oracle,
            annotators=annotators,
            analyzer=TextAnalyzer(),
            eligible=eligible,
            heldout_users=heldout_users,
            reward_users=training_users,
            eval_users=eval_users,
            validation_users=validation_users,
            kl_users=kl_users,
            item_quality=item_quality,
            rng=rng,
            list_attributes=list_attributes,
            feedback_judge=feedback_judge,
            test_judge=test_judge,
            judge_norms=judge_norms,
        )

    @property
    def recommender(self) -> NumpyRecommender:
        return self.trained.scorer

    def refresh_contexts(self) -> dict[int, UserContext]:
        """Loop contexts with every signal given so far (the policies' view of each user)."""
        self.world.contexts = loop_contexts(self.world, self.train_histories, self.log.signals)
        return self.world.contexts

    def collect(self, n: int, round_number: int) -> None:
        """Simulate ``n`` judgements with the current policies and add them to the log."""
        self.refresh_contexts()
        simulate_comparisons(
            log=self.log,
            n=n,
            round_number=round_number,
            world=self.world,
            users=np.array(sorted(self.reward_users | self.heldout_users), np.int64),
            annotators=self.annotators,
            analyzer=self.analyzer,
            ppo=self.ppo_policy,
            config=self.config,
            rng=self.rng,
            judge=self.feedback_judge,
        )

    def label_coefficients(self) -> dict[str, float] | None:
        """What the strict labels of the training users say each term of the norms utility is worth.

        A logistic regression of the labels on the first-minus-second differences of the feedback
        oracle's taste quality and of the ``NORM_TERMS`` (floor gap at the population's floor): the
        yardstick the reward model's learned set weights are compared with. None for ``taste``.
        """
        if self.judge_norms is None:
            return None
        oracle, attributes, floor = self.feedback_oracle, self.list_attributes, self.judge_norms.floor
        deltas, labels = [], []
        for user, comparison in zip(self.log.users, self.log.comparisons, strict=True):
            if user not in self.reward_users or comparison.outcome not in ("a", "b"):
                continue
            utility = oracle.utility(user)
            first = norm_terms(attributes, comparison.slate_a, utility, floor)
            second = norm_terms(attributes, comparison.slate_b, utility, floor)
            taste = oracle.quality(user, comparison.slate_a) - oracle.quality(user, comparison.slate_b)
            deltas.append(np.append(taste, first - second))
            labels.append(comparison.outcome == "a")
        if not labels:
            return None
        weights = label_coefficients(np.array(deltas), np.array(labels))
        return dict(zip(("taste", *NORM_TERMS), weights.tolist(), strict=True))

    def retrain_reward_model(self) -> tuple[dict[str, Any], float]:
        """Reward model from scratch on every comparison of non-held-out users; (metrics, seconds)."""
        contexts = self.refresh_contexts()
        model, metrics, seconds = _train_reward(
            self.log,
            self.world,
            self.train_histories,
            contexts,
            self.reward_users,
            self.heldout_users,
            self.config,
            self.list_attributes if self.config.reward.set_features else None,
        )
        coefficients = self.label_coefficients()
        if coefficients is not None:
            metrics["label_coefficients"] = coefficients
        self.reward_model = model
        self.reward_metrics = metrics
        return metrics, seconds

    def policy_users(self) -> list[UserContext]:
        """The training users' contexts: PPO and Q-learning never see a validation or test user."""
        return [self.world.contexts[u] for u in sorted(self.reward_users)]

    def retrain_ppo(self) -> tuple[Any, float]:
        """PPO from scratch against the current reward model; (PPOResult, seconds)."""
        started = time.perf_counter()
        self.ppo_policy, result = fit_policy(
            "ppo",
            self.policy_users(),
            self.recommender,
            self.reward_model,
            self.world.item_features.matrix,
            self.config.ppo,
        )
        return result, time.perf_counter() - started

    def retrain_dqn(self) -> tuple[Any, float]:
        """Q-learning from scratch against the current reward model; (DQNResult, seconds)."""
        started = time.perf_counter()
        self.dqn_policy, result = fit_policy(
            "qlearning",
            self.policy_users(),
            self.recommender,
            self.reward_model,
            self.world.item_features.matrix,
            self.config.dqn,
        )
        return result, time.perf_counter() - started

    def sources(self) -> dict[str, SlateSource]:
        """Every policy the experiment compares, baselines at their settings chosen on validation."""
        config, settings = self.config, self.settings
        candidates = config.ppo.n_candidates
        sources = {
            "recommender": SlateSource("recommender"),
            "quality_rerank": SlateSource(
                "quality_rerank",
                QualityRerank(self.item_quality, settings.get("quality_rerank", 0.25), candidates),
            ),
            "mmr": SlateSource("mmr", MMRRerank(self.list_attributes, settings.get("mmr", 1.0), candidates)),
        }
        if self.reward_model is not None:
            sources["rm_rerank"] = SlateSource(
                "rm_rerank", RewardRerank(self.reward_model, settings.get("rm_rerank", 0.5), candidates)
            )
            sources["best_of_n"] = SlateSource(
                "best_of_n",
                BestOfN(
                    self.reward_model,
                    int(settings.get("best_of_n", 16)),
                    config.ppo.ref_temperature,
                    candidates,
                    config.seed,
                ),
            )
            sources["rm_greedy"] = SlateSource(
                "rm_greedy", RewardGreedy(self.reward_model, settings.get("rm_greedy", 1.0), candidates)
            )
            if config.rm_mmr_grid:
                sources["rm_mmr"] = SlateSource(
                    "rm_mmr",
                    RewardMMR(
                        self.reward_model,
                        self.list_attributes,
                        settings.get("mmr", 1.0),
                        settings.get("rm_mmr", 0.0),
                        candidates,
                    ),
                )
        if self.ppo_policy is not None:
            sources["ppo"] = SlateSource("ppo", self.ppo_policy)
        if self.dqn_policy is not None:
            sources["qlearning"] = SlateSource("qlearning", self.dqn_policy)
        return sources

    def validation_baseline(
        self,
    ) -> tuple[dict[int, np.ndarray], dict[int, set[int]], dict[int, float], float]:
        """The recommender's validation lists, the feedback-period relevant movies, and the lists'
        judged quality and NDCG@10: what every setting chosen on validation is measured against."""
        contexts, K = self.world.contexts, self.config.slate_size
        reference = policy_lists(SlateSource("recommender"), self.world, contexts, self.validation_users, K)
        relevant = relevant_items(self.periods.feedback)
        base_quality = {u: self.feedback_judge.quality(u, slate) for u, slate in reference.items()}
        return reference, relevant, base_quality, mean_ndcg(reference, relevant, K)

    def validation_effect(
        self,
        source: SlateSource,
        baseline: tuple[dict[int, np.ndarray], dict[int, set[int]], dict[int, float], float],
    ) -> dict[str, float]:
        """A policy's mean judged quality gain and NDCG@10 difference over the recommender, on validation users."""
        _, relevant, base_quality, base_ndcg = baseline
        K = self.config.slate_size
        lists = policy_lists(source, self.world, self.world.contexts, self.validation_users, K)
        return {
            "quality_gain": float(
                np.mean([self.feedback_judge.quality(u, s) - base_quality[u] for u, s in lists.items()])
            ),
            "ndcg_difference": mean_ndcg(lists, relevant, K) - base_ndcg,
        }

    def choose_settings(self) -> dict[str, dict[str, dict[str, float]]]:
        """Each baseline's setting with the best mean oracle quality gain on validation users, among
        the settings that keep validation NDCG@10 within ``max_ndcg_loss`` of the recommender's.

        The validation judges are the annotators' own taste and the feedback-period ratings of the
        validation users, whom nothing trained on; the test period is never read here. When no
        setting keeps NDCG, the mildest one (first in the grid) is used.
        """
        baseline = self.validation_baseline()
        grids = {
            "quality_rerank": self.config.quality_weights,
            "rm_rerank": self.config.reward_weights if self.reward_model is not None else (),
            "best_of_n": self.config.best_of_n if self.reward_model is not None else (),
            "mmr": self.config.mmr_grid,
            "rm_greedy": self.config.greedy_weights if self.reward_model is not None else (),
            "rm_mmr": self.config.rm_mmr_grid if self.reward_model is not None else (),  # after mmr
        }
        tried: dict[str, dict[str, dict[str, float]]] = {}
        for name, grid in grids.items():
            results: dict[str, dict[str, float]] = {}
            for value in grid:
                self.settings[name] = value
                results[str(value)] = self.validation_effect(self.sources()[name], baseline)
            if results:
                best = choose_on_validation(results, self.config.max_ndcg_loss)
                self.settings[name] = float(best) if name != "best_of_n" else int(best)
            tried[name] = results
        return tried

    def choose_ppo_kl_target(self, trained: Any | None = None) -> dict[str, Any]:
        """PPO at each of ``config.kl_target_grid``'s KL targets against the current reward model; the
        one chosen on validation users by the baselines' rule becomes ``ppo_policy``.

        Run once, after the last round (as Q-learning and the baselines' settings): the on-policy
        comparisons of earlier rounds come from PPO at ``config.ppo``'s own target. ``trained`` is
        that round's PPOResult, reused for its own target instead of training it twice. Returns,
        per target, the validation effect, the validation KL, the final PPO metrics and seconds.
        """
        grid = self.config.kl_target_grid
        if not grid:
            return {}
        self.refresh_contexts()
        baseline = self.validation_baseline()
        kl_users = [self.world.contexts[u] for u in self.validation_users[: self.config.kl_users]]
        own_target = self.config.ppo.target_kl_for_controller
        policies: dict[str, NumpySlatePolicy] = {}
        tried: dict[str, dict[str, Any]] = {}
        for target in grid:
            started = time.perf_counter()
            if trained is not None and own_target == target:
                result = trained
            else:
                result = self.train_ppo_at(float(target))
            seconds = time.perf_counter() - started
            policy = NumpySlatePolicy.from_arrays(result.arrays, kind="ppo")
            policies[str(target)] = policy
            tried[str(target)] = {
                **self.validation_effect(SlateSource("ppo", policy), baseline),
                "kl": kl_from_reference(
                    policy,
                    self.world,
                    kl_users,
                    k=self.config.slate_size,
                    samples=self.config.kl_samples,
                    ref_temperature=self.config.ppo.ref_temperature,
                    seed=self.config.seed,
                ),
                "ppo_final": {k: float(v) for k, v in result.metrics.items()},
                "seconds": seconds,
            }
        best = choose_on_validation(tried, self.config.max_ndcg_loss)
        self.ppo_policy = policies[best]
        self.settings["ppo_kl_target"] = float(best)
        self.kl_targets_tried = tried
        return tried

    def train_ppo_at(self, target: float) -> Any:
        """PPO from scratch against the current reward model at KL target ``target`` (same seed)."""
        _policy, result = fit_policy(
            "ppo",
            self.policy_users(),
            self.recommender,
            self.reward_model,
            self.world.item_features.matrix,
            replace(self.config.ppo, target_kl_for_controller=target),
        )
        return result

    def judge_models(self) -> tuple[dict[int, NumpyRewardModel], dict[str, Any]]:
        """Two reward models over the validation users' comparisons, each judging the other half.

        Cross-fitting: the users are cut in two halves; the judge of a user was trained on the other
        half only. Neither ever trained the learner, so no candidate was optimised against them.
        Returns the judge of each validation user and the judges' pooled held-out accuracy.
        """
        users = sorted(self.heldout_users)
        halves = (set(users[0::2]), set(users[1::2]))
        judges: dict[int, NumpyRewardModel] = {}
        correct = strict = 0.0
        contexts_of = self.train_histories
        for fit, judged in (halves, halves[::-1]):
            rows = [j for j, u in enumerate(self.log.users) if u in fit]
            held = [j for j, u in enumerate(self.log.users) if u in judged]
            if not rows:
                continue
            contexts = comparison_contexts(self.world, contexts_of, self.log, rows)
            model = fit_reward_model(
                [self.log.comparisons[j] for j in rows],
                raters=None,
                contexts=contexts,
                item_features=self.world.item_features,
                config=self.config.reward,
                list_attributes=self.list_attributes if self.config.reward.set_features else None,
            ).model
            evaluation = evaluate_reward_model(
                model,
                [self.log.comparisons[j] for j in held],
                comparison_contexts(self.world, contexts_of, self.log, held),
            )
            if evaluation["n_strict"]:
                correct += evaluation["accuracy"] * evaluation["n_strict"]
                strict += evaluation["n_strict"]
            judges.update({u: model for u in judged})
        accuracy = correct / strict if strict else None
        return judges, {"accuracy": accuracy, "n_strict": int(strict)}

    def gate(self, lists: dict[str, dict[int, np.ndarray]], kls: dict[str, float | None]) -> GateDecision:
        """The gate on validation users: which policy would the product serve after this round?"""
        config = self.config
        rules = GateRules(
            min_judge_accuracy=config.gate_min_judge_accuracy,
            max_kl=config.gate_max_kl,
            bootstrap_rounds=config.bootstrap_rounds,
            seed=config.seed,
        )
        judges, credentials = self.judge_models()
        contexts = self.world.contexts
        users = [u for u in self.validation_users if u in judges]

        def score(user: Hashable, slate: np.ndarray) -> float:
            return judges[int(user)].list_score(contexts[int(user)], slate)

        def learner_score(user: Hashable, slate: np.ndarray) -> float:
            return self.reward_model.list_score(contexts[int(user)], slate)

        # The learner's reward model never saw a validation user, and a policy that learned nothing
        # from comparisons was not optimised against it: it may judge those (with its own credentials).
        learner = self.reward_metrics
        learner_trusted = judge_trusted(
            learner.get("heldout_accuracy", 0.0), learner.get("heldout_n_strict", 0), rules
        )

        replayed = [
            (u, c.slate_a, c.slate_b, c.outcome)
            for u, c in zip(self.log.users, self.log.comparisons, strict=True)
            if u in self.heldout_users
        ]
        feedback_relevant = relevant_items(self.periods.feedback)
        served = lists["recommender"]
        evidence = [
            candidate_evidence(
                name=name,
                lists=lists[name],
                served=served,
                judge=learner_score if name in FEEDBACK_FREE else score,
                judge_name="learner's reward model" if name in FEEDBACK_FREE else "cross-fitted judge",
                judge_trusted=learner_trusted if name in FEEDBACK_FREE else None,
                replayed=replayed,
                relevant=feedback_relevant,
                slate_size=config.slate_size,
                rules=rules,
                kl=kls.get(name),
                judged_users=self.validation_users if name in FEEDBACK_FREE else users,
            )
            for name in lists
            if name != "recommender"
        ]
        return gate_decide(
            evidence,
            incumbent="recommender",
            judge_accuracy=credentials["accuracy"],
            judge_comparisons=credentials["n_strict"],
            rules=rules,
        )

    def evaluate(self) -> dict[str, Any]:
        """Every policy on the test users' test period, and on the validation users' feedback period.

        Baselines' settings are chosen first (validation only); then the gate picks the policy the
        product would serve (validation only); then everything, the served policy included, is
        measured once on the test period.
        """
        config, K = self.config, self.config.slate_size
        features = self.world.item_features
        contexts = self.refresh_contexts()
        tried = self.choose_settings()
        if self.kl_targets_tried:
            tried["ppo_kl_target"] = self.kl_targets_tried
        test_world = World(
            self.recommender, features, loop_contexts(self.world, self.test_histories, self.log.signals)
        )
        test_relevant = relevant_items(self.periods.test)
        feedback_relevant = relevant_items(self.periods.feedback)
        sources = self.sources()
        validation_lists = {
            name: policy_lists(s, self.world, contexts, self.validation_users, K)
            for name, s in sources.items()
        }
        kls: dict[str, float | None] = {
            "quality_rerank": None,
            "rm_rerank": None,
            "mmr": None,
            "rm_greedy": None,
            "rm_mmr": None,
        }
        if "best_of_n" in sources:
            kls["best_of_n"] = best_of_n_kl(int(self.settings["best_of_n"]))
        validation_kl_users = [contexts[u] for u in self.validation_users[: config.kl_users]]
        for name in ("ppo", "qlearning"):
            if name in sources:
                kls[name] = kl_from_reference(
                    sources[name].policy,
                    self.world,
                    validation_kl_users,
                    k=K,
                    samples=config.kl_samples,
                    ref_temperature=config.ppo.ref_temperature,
                    seed=config.seed,
                )
        decision = self.gate(validation_lists, kls)

        test_lists = {
            name: policy_lists(s, test_world, test_world.contexts, self.eval_users, K)
            for name, s in sources.items()
        }
        long_lists = {
            name: policy_lists(s, test_world, test_world.contexts, self.eval_users, 20)
            for name, s in sources.items()
        }
        test_lists["served"] = test_lists[decision.served]
        long_lists["served"] = long_lists[decision.served]
        reference = test_lists["recommender"]
        result: dict[str, Any] = {
            "settings": dict(self.settings),
            "settings_tried": tried,
            "gate": decision.as_dict(),
            "served": decision.served,
            "ndcg@10": {name: mean_ndcg(lists, test_relevant, K) for name, lists in test_lists.items()},
            "recall@20": {name: mean_recall(lists, test_relevant, 20) for name, lists in long_lists.items()},
            "test_quality": {
                name: mean_quality(lists, self.test_judge) for name, lists in test_lists.items()
            },
            "ndcg@10_difference": {},
            "quality_difference": {},
            "win_rate": {},
            "kl": {},
            "validation": {
                "ndcg@10": {
                    name: mean_ndcg(lists, feedback_relevant, K) for name, lists in validation_lists.items()
                },
                "quality_difference": {},
                "win_rate": {},
                # The learner's reward model's mean list score minus the recommender's: how far each
                # policy climbed the proxy it was (or was not) optimised against.
                "proxy_difference": {
                    name: float(
                        np.mean(
                            [
                                self.reward_model.list_score(contexts[u], lists[u])
                                - self.reward_model.list_score(
                                    contexts[u], validation_lists["recommender"][u]
                                )
                                for u in self.validation_users
                            ]
                        )
                    )
                    for name, lists in validation_lists.items()
                    if name != "recommender" and self.reward_model is not None
                },
            },
        }
        test_judge = SimulatedAnnotator(
            self.test_oracle,
            temperature=config.judge_temperature,
            seed=config.seed + 1000,
            with_reasons=False,
            norms=self.judge_norms,
        )
        validation_judge = SimulatedAnnotator(
            self.feedback_oracle,
            temperature=config.judge_temperature,
            seed=config.seed + 2000,
            with_reasons=False,
            norms=self.judge_norms,
        )
        for name in test_lists:
            if name == "recommender":
                continue
            result["ndcg@10_difference"][name] = ndcg_difference(
                test_lists[name], reference, test_relevant, K, config.bootstrap_rounds, config.seed
            )
            result["quality_difference"][name] = quality_difference(
                test_lists[name], reference, self.test_judge, config.bootstrap_rounds, config.seed
            )
            result["win_rate"][name] = judged_win_rate(
                test_lists[name], reference, test_judge, self.eval_users, config.bootstrap_rounds, config.seed
            )
            if name == "served":
                continue
            result["validation"]["quality_difference"][name] = quality_difference(
                validation_lists[name],
                validation_lists["recommender"],
                self.feedback_judge,
                config.bootstrap_rounds,
                config.seed,
            )
            result["validation"]["win_rate"][name] = judged_win_rate(
                validation_lists[name],
                validation_lists["recommender"],
                validation_judge,
                self.validation_users,
                config.bootstrap_rounds,
                config.seed,
            )
        for name in ("ppo", "qlearning"):
            if name in sources:
                result["kl"][name] = kl_from_reference(
                    sources[name].policy,
                    test_world,
                    [test_world.context(u) for u in self.kl_users],
                    k=K,
                    samples=config.kl_samples,
                    ref_temperature=config.ppo.ref_temperature,
                    seed=config.seed,
                )
        if "best_of_n" in kls:
            result["kl"]["best_of_n"] = kls["best_of_n"]
        result["validation"]["kl"] = {k: v for k, v in kls.items() if v is not None}
        return result

    def describe_data(self) -> dict[str, Any]:
        snapshot = self.periods.snapshot
        test_relevant = relevant_items(self.periods.test)
        return {
            "n_users": snapshot.n_users,
            "n_items": snapshot.n_items,
            "n_ratings": snapshot.n_ratings,
            "eligible_users": len(self.eligible),
            "period_ratings": self.periods.sizes(),
            "reward_heldout_users": len(self.heldout_users),
            "test_users": len(self.eval_users),
            "test_users_with_relevant": sum(1 for u in self.eval_users if test_relevant.get(u)),
            "fingerprint": snapshot.fingerprint(),
        }


def run_experiment(
    ratings: pd.DataFrame,
    movies: pd.DataFrame,
    config: ExperimentConfig | None = None,
    progress: ProgressCallback | None = None,
    log_line: Callable[[str], None] | None = None,
) -> ExperimentReport:
    """Run the closed loop for ``config.rounds`` rounds and measure every round on the test period.

    ``progress(stage, done, total)`` is called after each step (for progress bars) and
    ``log_line(text)`` with a one-line summary of each step.
    """
    config = config or ExperimentConfig()
    started = time.perf_counter()
    total_steps = 1 + 5 * config.rounds
    step = 0

    def advance(stage: str) -> None:
        nonlocal step
        step += 1
        if progress is not None:
            progress(stage, step, total_steps)

    def say(line: str) -> None:
        if log_line is not None:
            log_line(line)

    loop = ClosedLoop.prepare(ratings, movies, config)
    config = loop.config  # with every model's seed derived from config.seed
    advance("recommender trained")
    data = loop.describe_data()
    if config.agreement_pairs > 0 and len(loop.annotators) > 1:
        data["annotator_agreement"] = annotator_agreement(
            loop.annotators,
            loop.world,
            np.array(sorted(loop.reward_users | loop.heldout_users), np.int64),
            config.agreement_pairs,
            config.exploration_temperature,
            config.seed,
        )
        say(f"annotators: {data['annotator_agreement']}")
    say(f"recommender: {config.recommender.epochs} epochs in {loop.trained.train_seconds:.1f} s")
    say(
        f"periods: {data['period_ratings']}; {data['eligible_users']} users in the loop, "
        f"{data['reward_heldout_users']} held out from the reward model"
    )

    rounds: list[dict[str, Any]] = []
    for round_number in range(1, config.rounds + 1):
        loop.collect(config.comparisons_per_round, round_number)
        advance(f"round {round_number}: {len(loop.log)} comparisons")

        reward_metrics, reward_seconds = loop.retrain_reward_model()
        advance(f"round {round_number}: reward model")
        say(
            f"round {round_number}: {len(loop.log)} comparisons; reward model held-out accuracy "
            f"{reward_metrics['heldout_accuracy']:.3f} (label ceiling {reward_metrics['heldout_label_ceiling']:.3f}, "
            f"without the users' own ratings {reward_metrics['heldout_taste_ceiling']:.3f})"
            f" in {reward_seconds:.1f} s"
        )
        ppo, ppo_seconds = loop.retrain_ppo()
        advance(f"round {round_number}: PPO")
        entry: dict[str, Any] = {
            "round": round_number,
            "comparisons": len(loop.log),
            "on_policy_comparisons": sum(1 for kind in loop.log.kinds if kind.startswith("ppo")),
            "signals": sum(len(s) for s in loop.log.signals.values()),
            "reward_model": reward_metrics,
            "seconds": {
                "reward_model": reward_seconds,
                "ppo": ppo_seconds,
                "reward_model+ppo": reward_seconds + ppo_seconds,
            },
            "ppo_final": {k: float(v) for k, v in ppo.metrics.items()},
        }
        if round_number < config.rounds and not config.evaluate_every_round:
            rounds.append(entry)
            advance(f"round {round_number}: (Q-learning after the last round)")
            advance(f"round {round_number}: (evaluated after the last round)")
            say(
                f"round {round_number}: PPO {ppo_seconds:.1f} s; reward model + PPO {reward_seconds + ppo_seconds:.1f} s"
            )
            continue
        dqn, dqn_seconds = loop.retrain_dqn()
        advance(f"round {round_number}: Q-learning")
        if config.kl_target_grid:
            started_grid = time.perf_counter()
            tried_targets = loop.choose_ppo_kl_target(ppo)
            entry["seconds"]["ppo_kl_targets"] = time.perf_counter() - started_grid
            say(
                f"round {round_number}: PPO's KL target {loop.settings['ppo_kl_target']:g} on validation ("
                + ", ".join(
                    f"{t}: gain {r['quality_gain']:+.4f}, NDCG {r['ndcg_difference']:+.4f}, KL {r['kl']:.1f}"
                    for t, r in tried_targets.items()
                )
                + f") in {entry['seconds']['ppo_kl_targets']:.1f} s"
            )
        say(
            f"round {round_number}: PPO {ppo_seconds:.1f} s, Q-learning {dqn_seconds:.1f} s; "
            f"reward model + PPO {reward_seconds + ppo_seconds:.1f} s"
        )
        entry["seconds"]["qlearning"] = dqn_seconds
        entry["qlearning_final"] = {k: float(v) for k, v in dqn.metrics.items()}
        entry.update(loop.evaluate())
        rounds.append(entry)
        advance(f"round {round_number}: evaluated")
        quality, ndcg = entry["quality_difference"], entry["ndcg@10"]
        say(
            f"round {round_number}: served {entry['served']} ({entry['gate']['reason']}); "
            f"NDCG@10 recommender {ndcg['recommender']:.4f}, "
            + ", ".join(f"{name} {ndcg[name]:.4f}" for name in POLICY_NAMES[1:] if name in ndcg)
            + "; oracle quality gain "
            + ", ".join(
                f"{name} {quality[name]['mean']:+.4f}" for name in POLICY_NAMES[1:] if name in quality
            )
        )

    return ExperimentReport(
        config=asdict(config),
        data=data,
        recommender={
            "epochs": config.recommender.epochs,
            "train_seconds": loop.trained.train_seconds,
            "seed": config.seed,
            "data_fingerprint": loop.trained.data_fingerprint,
            "final_loss": loop.trained.history[-1]["loss"] if loop.trained.history else None,
        },
        rounds=rounds,
        total_seconds=time.perf_counter() - started,
    )


# --- 5. Report -----------------------------------------------------------------------------------


def _interval(win: dict[str, float]) -> str:
    return f"{win['win_rate']:.3f} [{win['low']:.3f}, {win['high']:.3f}]"


def _difference(diff: dict[str, float]) -> str:
    return f"{diff['mean']:+.4f} [{diff['low']:+.4f}, {diff['high']:+.4f}]"


POLICY_NAMES = (
    "recommender",
    "quality_rerank",
    "mmr",
    "rm_rerank",
    "best_of_n",
    "rm_greedy",
    "rm_mmr",
    "ppo",
    "qlearning",
    "served",
)
FEEDBACK_FREE = ("recommender", "quality_rerank", "mmr")  # policies that learn nothing from comparisons


def _num(value: Any, spec: str = ".4f") -> str:
    return (
        "n/a"
        if value is None or (isinstance(value, float) and not np.isfinite(value))
        else format(value, spec)
    )


def markdown_table(report: ExperimentReport) -> str:
    """One row per round: reward-model accuracy (unseen and seen users), the served policy, timing."""
    header = (
        "| round | comparisons | RM acc. unseen users (ceiling; normalised) | RM acc. seen users (ceiling; "
        "normalised) | served | NDCG@10 rec. | NDCG@10 served | served - rec. quality [95% CI] | KL PPO | "
        "RM s | PPO s | RM+PPO s | Q s |\n"
        "|---:|---:|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|\n"
    )
    lines = []
    for r in report.rounds:
        rm, s = r["reward_model"], r["seconds"]
        evaluated = "ndcg@10" in r
        lines.append(
            f"| {r['round']} | {r['comparisons']} | {_num(rm['heldout_accuracy'], '.3f')} "
            f"({_num(rm['heldout_label_ceiling'], '.3f')}; {_num(rm.get('heldout_normalised'), '.2f')}) | "
            f"{_num(rm.get('seen_accuracy'), '.3f')} ({_num(rm.get('seen_label_ceiling'), '.3f')}; "
            f"{_num(rm.get('seen_normalised'), '.2f')}) | "
            + (
                f"{r['served']} | {r['ndcg@10']['recommender']:.4f} | {r['ndcg@10']['served']:.4f} | "
                f"{_difference(r['quality_difference']['served'])} | {_num(r['kl'].get('ppo'), '.2f')} | "
                if evaluated
                else "(not evaluated) | | | | | "
            )
            + f"{s['reward_model']:.1f} | {s['ppo']:.1f} | {s['reward_model+ppo']:.1f} | {_num(s.get('qlearning'), '.1f')} |"
        )
    return header + "\n".join(lines) + "\n"


def policy_table(entry: dict[str, Any]) -> str:
    """One round, one row per policy: test NDCG@10, Recall@20, paired differences, win rate, KL."""
    header = (
        "| policy | setting | NDCG@10 | Recall@20 | NDCG@10 - rec. [95% CI] | oracle quality - rec. [95% CI] | "
        "win rate vs rec. [95% CI] | KL | validation quality - rec. |\n"
        "|---|---:|---:|---:|---|---|---|---:|---:|\n"
    )
    lines = []
    for name in POLICY_NAMES:
        if name not in entry["ndcg@10"]:
            continue
        setting = entry["settings"].get(name, entry["served"] if name == "served" else "")
        kl = entry["kl"].get(entry["served"] if name == "served" else name)
        validation = entry["validation"]["quality_difference"].get(name)
        if name == "recommender":
            diffs = ("", "", "")
        else:
            diffs = (
                _difference(entry["ndcg@10_difference"][name]),
                _difference(entry["quality_difference"][name]),
                _interval(entry["win_rate"][name]),
            )
        lines.append(
            f"| {name} | {setting} | {entry['ndcg@10'][name]:.4f} | {entry['recall@20'][name]:.4f} | "
            f"{diffs[0]} | {diffs[1]} | {diffs[2]} | {_num(kl, '.2f')} | "
            f"{_num(None if validation is None else validation['mean'], '+.4f')} |"
        )
    return header + "\n".join(lines) + "\n"


def gate_table(entry: dict[str, Any]) -> str:
    """The gate's report for one round: the judge's credentials and every candidate's checks."""
    gate = entry["gate"]
    judge = gate["judge"]
    lines = [
        f"Served: **{gate['served']}**: {gate['reason']}. Judge: accuracy "
        f"{_num(judge['accuracy'], '.3f')} on {judge['n_strict']} held-out comparisons "
        f"({'trusted' if judge['trusted'] else 'not trusted'}).",
        "",
        "| candidate | judge | judge win rate [95% CI] | replay [95% CI] | validation NDCG@10 diff. | KL | passed | why |",
        "|---|---|---|---|---:|---:|---|---|",
    ]
    for c in gate["candidates"]:
        j, r, n = c["judge"], c["replay"] or {}, c["ndcg_difference"] or {}
        lines.append(
            f"| {c['name']} | {c.get('judge_name', '')} | {_num(j['mean'], '.3f')} [{_num(j['low'], '.3f')}, {_num(j['high'], '.3f')}] | "
            f"{_num(r.get('mean'), '.3f')} [{_num(r.get('low'), '.3f')}, {_num(r.get('high'), '.3f')}] | "
            f"{_num(n.get('mean'), '+.4f')} | {_num(c['kl'], '.2f')} | {'yes' if c['passed'] else 'no'} | "
            f"{c['reason']} |"
        )
    return "\n".join(lines) + "\n"


COLOURS = {
    "recommender": "dimgrey",
    "quality_rerank": "tab:brown",
    "mmr": "tab:pink",
    "rm_greedy": "tab:cyan",
    "rm_mmr": "tab:olive",
    "rm_rerank": "tab:purple",
    "best_of_n": "tab:green",
    "ppo": "tab:blue",
    "qlearning": "tab:orange",
    "served": "black",
}


def plot_report(report: ExperimentReport, path: Path) -> None:
    """Three panels per round: reward-model accuracy, oracle quality gain over the recommender, NDCG@10."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = [r["round"] for r in report.rounds]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), constrained_layout=True)

    ax = axes[0]
    for key, style, colour, label in (
        ("heldout_accuracy", "o-", "tab:green", "reward model, unseen users"),
        ("seen_accuracy", "o--", "tab:olive", "reward model, seen users"),
        ("heldout_label_ceiling", "s:", "grey", "label ceiling (noise-free oracle)"),
    ):
        ax.plot(
            rounds,
            [r["reward_model"].get(key, np.nan) for r in report.rounds],
            style,
            color=colour,
            label=label,
        )
    ax.axhline(0.5, color="grey", lw=0.8)
    ax.set(title="Reward model: held-out accuracy", xlabel="round", ylabel="accuracy", ylim=(0.4, 1.0))
    ax.legend(fontsize=8)

    evaluated = [r for r in report.rounds if "ndcg@10" in r]
    names = [n for n in POLICY_NAMES[1:] if n in evaluated[-1]["quality_difference"]]
    eval_rounds = [r["round"] for r in evaluated]
    ax = axes[1]
    for j, name in enumerate(names):
        diffs = [r["quality_difference"][name] for r in evaluated]
        centre = np.array([d["mean"] for d in diffs])
        err = np.array([centre - [d["low"] for d in diffs], [d["high"] for d in diffs] - centre])
        ax.errorbar(
            np.array(eval_rounds) + 0.04 * (j - len(names) / 2),
            centre,
            yerr=err,
            fmt="o-",
            capsize=2,
            color=COLOURS[name],
            label=name,
        )
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set(
        title="Oracle list quality minus the recommender's (test, 95% CI)",
        xlabel="round",
        ylabel="difference",
    )
    ax.legend(fontsize=7)

    ax = axes[2]
    for name in ("recommender", *names):
        ax.plot(eval_rounds, [r["ndcg@10"][name] for r in evaluated], "o-", color=COLOURS[name], label=name)
    ax.set(title="NDCG@10 on the test period", xlabel="round", ylabel="NDCG@10")
    ax.legend(fontsize=7)
    for ax in axes:
        ax.set_xticks(rounds)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(
    report: ExperimentReport, out_dir: str | Path, command: str | None = None
) -> dict[str, Path]:
    """Write ``results.json``, ``table.md`` (test and validation tables) and ``plot.png`` to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    document = report.as_dict()
    if command:
        document["command"] = command
    paths = {"results": out / "results.json", "table": out / "table.md", "plot": out / "plot.png"}
    paths["results"].write_text(json.dumps(document, indent=2, default=_json_default) + "\n")
    last = report.rounds[-1]
    paths["table"].write_text(
        "## Rounds\n\n"
        + markdown_table(report)
        + f"\n## Every policy after round {last['round']} (test users, test period)\n\n"
        + policy_table(last)
        + f"\n## The gate after round {last['round']} (validation users)\n\n"
        + gate_table(last)
    )
    plot_report(report, paths["plot"])
    return paths


def load_report(path: str | Path) -> ExperimentReport:
    """Read a ``results.json`` back (e.g. to redraw the plot without rerunning)."""
    document = json.loads(Path(path).read_text())
    names = ("config", "data", "recommender", "rounds", "total_seconds")
    return ExperimentReport(**{name: document[name] for name in names})


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple | set):
        return list(value)
    return str(value)


# --- 6. Across seeds -----------------------------------------------------------------------------


def seed_interval(values: Sequence[float]) -> dict[str, float]:
    """Across-seed mean with a Student-t 95% interval (the seed is the unit of the claim)."""
    from scipy import stats

    values = np.asarray([v for v in values if v is not None and np.isfinite(v)], np.float64)
    n = len(values)
    if n == 0:
        return {"mean": float("nan"), "low": float("nan"), "high": float("nan"), "n": 0}
    mean = float(values.mean())
    if n == 1:
        return {"mean": mean, "low": float("nan"), "high": float("nan"), "n": 1}
    half = float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / np.sqrt(n))
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}


def _per_user_half_width(intervals: Sequence[dict[str, float]]) -> float:
    """Mean half-width of the per-seed, per-user bootstrap intervals: what one seed's interval looks like."""
    widths = [(d["high"] - d["low"]) / 2 for d in intervals if np.isfinite(d.get("high", np.nan))]
    return float(np.mean(widths)) if widths else float("nan")


def aggregate_seeds(reports: Sequence[ExperimentReport]) -> dict[str, Any]:
    """Every policy's final-round test metrics across seeds: mean and 95% interval over seeds."""
    finals = [report.rounds[-1] for report in reports]
    policies = [name for name in POLICY_NAMES if all(name in f["ndcg@10"] for f in finals)]
    table: dict[str, dict[str, Any]] = {}
    for name in policies:
        row: dict[str, Any] = {
            "ndcg@10": seed_interval([f["ndcg@10"][name] for f in finals]),
            "recall@20": seed_interval([f["recall@20"][name] for f in finals]),
        }
        if name != "recommender":
            ndcg = [f["ndcg@10_difference"][name] for f in finals]
            quality = [f["quality_difference"][name] for f in finals]
            wins = [f["win_rate"][name] for f in finals]
            row["ndcg@10_difference"] = {
                **seed_interval([d["mean"] for d in ndcg]),
                "per_user_half_width": _per_user_half_width(ndcg),
            }
            row["quality_difference"] = {
                **seed_interval([d["mean"] for d in quality]),
                "per_user_half_width": _per_user_half_width(quality),
            }
            row["win_rate"] = {
                **seed_interval([d["win_rate"] for d in wins]),
                "per_user_half_width": _per_user_half_width(wins),
            }
        kls = [f["kl"].get(f["served"] if name == "served" else name) for f in finals]
        if any(k is not None for k in kls):
            row["kl"] = seed_interval([k for k in kls if k is not None])
        table[name] = row

    def paired(metric: str, a: str, b: str) -> dict[str, Any]:
        """Across seeds: a's paired difference to the recommender minus b's (= a - b, per seed)."""
        diffs = [f[metric][a]["mean"] - f[metric][b]["mean"] for f in finals]
        return {**seed_interval(diffs), "seeds_not_worse": int(sum(d >= 0 for d in diffs))}

    targets = {
        f"served_minus_{baseline}": {
            "ndcg@10": paired("ndcg@10_difference", "served", baseline),
            "quality": paired("quality_difference", "served", baseline),
        }
        for baseline in ("quality_rerank", "mmr")
        if baseline in policies
    }
    targets |= {
        "served_minus_recommender": {
            "ndcg@10": {
                **seed_interval([f["ndcg@10_difference"]["served"]["mean"] for f in finals]),
                "seeds_not_worse": int(sum(f["ndcg@10_difference"]["served"]["mean"] >= 0 for f in finals)),
            },
            "quality": {
                **seed_interval([f["quality_difference"]["served"]["mean"] for f in finals]),
                "seeds_not_worse": int(sum(f["quality_difference"]["served"]["mean"] >= 0 for f in finals)),
            },
        },
    }
    for builder in ("rm_greedy", "rm_mmr"):  # the set-aware constructions against the no-feedback baselines
        if builder not in policies:
            continue
        for baseline in ("quality_rerank", "mmr"):
            if baseline in policies:
                targets[f"{builder}_minus_{baseline}"] = {
                    "ndcg@10": paired("ndcg@10_difference", builder, baseline),
                    "quality": paired("quality_difference", builder, baseline),
                }
    if "ppo" in policies:
        for other in ("rm_rerank", "best_of_n", "rm_greedy"):
            if other in policies:
                targets[f"ppo_minus_{other}"] = {"quality": paired("quality_difference", "ppo", other)}
    reward = {
        key: seed_interval([f["reward_model"].get(key) for f in finals])
        for key in (
            "heldout_accuracy",
            "heldout_label_ceiling",
            "heldout_normalised",
            "seen_accuracy",
            "seen_label_ceiling",
            "seen_normalised",
        )
    }
    set_weights = {
        term: seed_interval([f["reward_model"]["set_weights"][term] for f in finals])
        for term in SET_TERMS
        if all("set_weights" in f["reward_model"] for f in finals)
    }
    coefficients = {
        term: seed_interval([f["reward_model"]["label_coefficients"][term] for f in finals])
        for term in ("taste", *NORM_TERMS)
        if all("label_coefficients" in f["reward_model"] for f in finals)
    }
    agreement = {
        key: seed_interval([r.data["annotator_agreement"][key] for r in reports])
        for key in ("strict_agreement", "cohen_kappa")
        if all("annotator_agreement" in r.data for r in reports)
    }
    served = {}
    for f in finals:
        served[f["served"]] = served.get(f["served"], 0) + 1
    return {
        "seeds": [report.config["seed"] for report in reports],
        "split": reports[0].config.get("split", "user"),
        "population": reports[0].config.get("population", "taste"),
        "rounds": finals[0]["round"],
        "comparisons": finals[0]["comparisons"],
        "policies": table,
        "targets": targets,
        "reward_model": reward,
        "set_weights": set_weights,
        "label_coefficients": coefficients,
        "annotator_agreement": agreement,
        "served": served,
        "settings": {
            name: [f["settings"].get(name) for f in finals]
            for name in (
                "quality_rerank",
                "mmr",
                "rm_rerank",
                "best_of_n",
                "rm_greedy",
                "rm_mmr",
                "ppo_kl_target",
            )
        },
        "retrain_seconds": seed_interval([f["seconds"]["reward_model+ppo"] for f in finals]),
        "data": reports[0].data,
    }


def _seed_cell(d: dict[str, Any] | None, spec: str = "+.4f") -> str:
    if not d:
        return ""
    return f"{format(d['mean'], spec)} [{_num(d['low'], spec)}, {_num(d['high'], spec)}]"


def summary_table(summary: dict[str, Any]) -> str:
    """One row per policy: across-seed mean [95% interval over seeds]; per-user half-widths beside."""
    header = (
        "| policy | NDCG@10 | Recall@20 | NDCG@10 - rec. | (per-user ±) | oracle quality - rec. | (per-user ±) "
        "| win rate vs rec. | KL |\n|---|---|---|---|---:|---|---:|---|---|\n"
    )
    lines = []
    for name, row in summary["policies"].items():
        ndcg, quality = row.get("ndcg@10_difference"), row.get("quality_difference")
        lines.append(
            f"| {name} | {_seed_cell(row['ndcg@10'], '.4f')} | {_seed_cell(row['recall@20'], '.4f')} | "
            f"{_seed_cell(ndcg)} | {_num(ndcg and ndcg['per_user_half_width'], '.4f') if ndcg else ''} | "
            f"{_seed_cell(quality)} | {_num(quality['per_user_half_width'], '.4f') if quality else ''} | "
            f"{_seed_cell(row.get('win_rate'), '.3f')} | {_seed_cell(row.get('kl'), '.2f')} |"
        )
    return header + "\n".join(lines) + "\n"


def targets_table(summary: dict[str, Any]) -> str:
    """The targets' comparisons across seeds: mean [95% interval], and in how many seeds it held."""
    n = len(summary["seeds"])
    lines = ["| comparison | metric | across seeds [95% CI] | seeds not worse |", "|---|---|---|---:|"]
    for name, metrics in summary["targets"].items():
        for metric, d in metrics.items():
            lines.append(
                f"| {name.replace('_', ' ')} | {metric} | {_seed_cell(d)} | {d['seeds_not_worse']}/{n} |"
            )
    rm = summary["reward_model"]
    lines += [
        "",
        "| reward model | accuracy | label ceiling | normalised (acc - 0.5) / (ceiling - 0.5) |",
        "|---|---|---|---|",
        f"| unseen users | {_seed_cell(rm['heldout_accuracy'], '.3f')} | {_seed_cell(rm['heldout_label_ceiling'], '.3f')} "
        f"| {_seed_cell(rm['heldout_normalised'], '.2f')} |",
        f"| seen users | {_seed_cell(rm['seen_accuracy'], '.3f')} | {_seed_cell(rm['seen_label_ceiling'], '.3f')} "
        f"| {_seed_cell(rm['seen_normalised'], '.2f')} |",
        "",
        "Served after the loop (seeds): "
        + ", ".join(f"{k} {v}" for k, v in sorted(summary["served"].items())),
    ]
    if summary.get("annotator_agreement"):
        agreement = summary["annotator_agreement"]
        lines += [
            "",
            f"Annotators' strict agreement on the same pairs: {_seed_cell(agreement['strict_agreement'], '.3f')}, "
            f"Cohen's kappa {_seed_cell(agreement['cohen_kappa'], '.3f')}.",
        ]
    if summary.get("set_weights"):
        coefficients = summary.get("label_coefficients") or {}
        lines += [
            "",
            "| list-level term | reward model's weight | the labels' own weight (logistic fit) |",
            "|---|---|---|",
        ]
        for term, weight in summary["set_weights"].items():
            label = coefficients.get("floor_gap" if term == "worst_item" else term)
            lines.append(f"| {term} | {_seed_cell(weight, '+.2f')} | {_seed_cell(label, '+.2f')} |")
        if "taste" in coefficients:
            lines.append(
                f"| (taste quality) | (item rewards) | {_seed_cell(coefficients['taste'], '+.2f')} |"
            )
    return "\n".join(lines) + "\n"


def settings_table(summary: dict[str, Any]) -> str:
    """Each setting chosen on validation, one column per seed (settings never chosen are left out)."""
    chosen = {
        name: values for name, values in summary["settings"].items() if any(v is not None for v in values)
    }
    seeds = summary["seeds"]
    lines = [
        "| setting | " + " | ".join(f"seed {s}" for s in seeds) + " |",
        "|---|" + "---:|" * len(seeds),
    ]
    for name, values in chosen.items():
        lines.append(f"| {name} | " + " | ".join("" if v is None else f"{v:g}" for v in values) + " |")
    return "\n".join(lines) + "\n"


def write_summary(
    reports: Sequence[ExperimentReport], out_dir: str | Path, command: str | None = None
) -> dict[str, Path]:
    """``summary.json`` and ``summary.md`` of several seeds' reports in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = aggregate_seeds(reports)
    if command:
        summary["command"] = command
    paths = {"summary": out / "summary.json", "table": out / "summary.md"}
    paths["summary"].write_text(json.dumps(summary, indent=2, default=_json_default) + "\n")
    population = "" if summary["population"] == "taste" else f", {summary['population']} population"
    paths["table"].write_text(
        f"## {len(reports)} seeds, {summary['split']} split{population}, round {summary['rounds']} "
        f"({summary['comparisons']} comparisons)\n\n"
        + summary_table(summary)
        + "\n"
        + targets_table(summary)
        + "\nSettings chosen on validation:\n\n"
        + settings_table(summary)
    )
    return paths


def combined_table(summaries: Sequence[dict[str, Any]]) -> str:
    """Every policy x split x metric, across-seed mean [95% interval over seeds], from summary.json files."""
    lines = [
        "| policy | split | NDCG@10 | Recall@20 | NDCG@10 - rec. | oracle quality - rec. | win rate vs rec. | KL |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in POLICY_NAMES:
        for summary in summaries:
            row = summary["policies"].get(name)
            if row is None:
                continue
            label = f"{summary['split']} ({len(summary['seeds'])} seeds)"
            lines.append(
                f"| {name} | {label} | {_seed_cell(row['ndcg@10'], '.4f')} | {_seed_cell(row['recall@20'], '.4f')} | "
                f"{_seed_cell(row.get('ndcg@10_difference'))} | {_seed_cell(row.get('quality_difference'))} | "
                f"{_seed_cell(row.get('win_rate'), '.3f')} | {_seed_cell(row.get('kl'), '.2f')} |"
            )
    return "\n".join(lines) + "\n"
