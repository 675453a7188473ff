"""The closed-loop RLHF experiment: simulated feedback rounds on MovieLens, judged on a later time period.

Each user's ratings are cut by time into three periods (``split_periods``):

    train (oldest ~60%)  ->  feedback (next ~20%)  ->  test (latest ~20%)

1. The supervised recommender is trained on the train period only.
2. Every round, simulated annotators compare two lists for sampled users. Their taste is an
   ``OracleTaste`` over the *feedback-period* ratings, so the feedback says something the train
   period does not. Lists come from the current policies: the recommender sampled twice
   (round 1), then also the current PPO policy against the reference policy it is held to
   (on-policy feedback).
   Each judgement's templated reason goes through the project's NLP (``feedback.text``) and its
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
from training.ml.dqn import DQNConfig, train_dqn
from training.ml.evaluation import ndcg_difference
from training.ml.metrics import ndcg_at_k
from training.ml.policy import NumpySlatePolicy
from training.ml.ppo import PPOConfig, train_ppo
from training.ml.recommender import RecommenderConfig, train_recommender
from training.ml.reward_model import (
    Comparison,
    NumpyRewardModel,
    RewardModelConfig,
    evaluate_reward_model,
    sample_rating_pairs,
    train_reward_model,
)
from training.ml.rlhf import SlateSource, World, bootstrap_win_rate, build_world, kl_from_reference
from training.ml.scoring import NumpyRecommender
from training.ml.simulator import OracleTaste, SimulatedAnnotator, make_annotators
from training.ml.user_features import UserContext, make_user_context

TRAIN, FEEDBACK, TEST = 0, 1, 2
PERIOD_NAMES = ("train", "feedback", "test")

ProgressCallback = Callable[[str, int, int], None]  # (stage description, steps done, total steps)


def default_ppo_config() -> PPOConfig:
    """PPO as the experiment runs it (docs/experiment.md says why; chosen on the feedback period).

    The product's defaults (its reference temperature and KL budget per slate were chosen here),
    except ``n_candidates=50``: PPO re-ranks the recommender's top 50 rather than 200
    (also halves its time).
    """
    return PPOConfig(n_candidates=50, seed=1)


def default_dqn_config() -> DQNConfig:
    """Q-learning as the experiment runs it: the same candidate set and reference as PPO."""
    return DQNConfig(n_candidates=50, seed=1)


def default_reward_config() -> RewardModelConfig:
    """The reward model as the experiment runs it (see docs/experiment.md for the choices).

    The product's learning rate and L2 (chosen here), but no rating pairs: on the feedback period
    they lowered held-out-user accuracy. Held-out users replace the trainer's random validation split.
    """
    return RewardModelConfig(pairs_per_user=0, validation_fraction=0.0)


@dataclass
class ExperimentConfig:
    """Everything that defines one run of the closed-loop experiment."""

    rounds: int = 4  # feedback rounds; models are retrained after each
    comparisons_per_round: int = 500  # simulated judgements collected per round
    annotators: int = 3  # simulated annotators sharing the work (they differ by seed and deviation)
    temperature: float = 0.04  # annotators' Bradley-Terry temperature on oracle quality (--noise)
    annotator_deviation: float = 0.0  # std of each annotator's fixed personal deviation from the oracle
    train_fraction: float = 0.6  # share of each user's oldest ratings in the train period (at least)
    feedback_fraction: float = 0.2  # share of the next ratings in the feedback period; the rest is test
    min_ratings: int = 10  # users with fewer ratings stay entirely in the train period
    slate_size: int = 10  # K, movies per list (compared, trained on and evaluated at NDCG@K)
    exploration_temperature: float = 1.0  # sampling temperature of recommender-only comparisons
    on_policy_fraction: float = 0.5  # share of comparisons from round 2 on that involve PPO
    heldout_user_fraction: float = 0.2  # users whose comparisons never train the reward model
    judge_temperature: float = 0.01  # temperature of the test-period (and validation) judge: nearly noiseless
    bootstrap_rounds: int = 1000  # resamples of users for the win-rate intervals
    kl_users: int = 100  # users sampled to estimate each policy's KL from the reference
    kl_samples: int = 4  # lists sampled per user for the KL estimate
    max_eval_users: int | None = None  # cap on test/validation users (None = all); for quick runs
    seed: int = (
        0  # seeds everything: models (their own seeds are overridden, see `seeded`), sampling, annotators
    )
    recommender: RecommenderConfig = field(default_factory=RecommenderConfig)  # supervised recommender
    reward: RewardModelConfig = field(default_factory=default_reward_config)  # reward model
    ppo: PPOConfig = field(default_factory=default_ppo_config)  # PPO slate policy
    dqn: DQNConfig = field(default_factory=default_dqn_config)  # Q-learning slate policy


def seeded(config: ExperimentConfig) -> ExperimentConfig:
    """The config with every model seeded from ``config.seed`` (one seed defines the whole run).

    Recommender and reward model get ``seed``, PPO and Q-learning ``seed + 1`` (as the product
    pipeline seeds them).
    """
    return replace(
        config,
        recommender=replace(config.recommender, seed=config.seed),
        reward=replace(config.reward, seed=config.seed),
        ppo=replace(config.ppo, seed=config.seed + 1),
        dqn=replace(config.dqn, seed=config.seed + 1),
    )


# --- 1. Periods --------------------------------------------------------------------------------


@dataclass
class Periods:
    """The three per-user time periods over one snapshot (same users and catalogue in each)."""

    snapshot: Snapshot  # every rating
    period: np.ndarray  # int8 [n_ratings] TRAIN, FEEDBACK or TEST of each rating of ``snapshot``
    eligible: np.ndarray  # bool [n_users] users with ratings in all three periods

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
        """Train + feedback: everything that happened before the test period."""
        return self.snapshot.select(self.period != TEST)

    def sizes(self) -> dict[str, int]:
        return {name: int((self.period == p).sum()) for p, name in enumerate(PERIOD_NAMES)}


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
) -> None:
    """Append ``n`` judgements for users drawn uniformly from ``users`` to ``log``.

    With ``ppo`` given, an ``on_policy_fraction`` of them compare a sample of the PPO policy with a
    sample of the reference policy PPO is regularised towards (softmax of the recommender's scores
    at ``ppo.ref_temperature``); the rest compare two samples of the recommender at
    ``exploration_temperature``, which cover its top candidates broadly. Which list is shown left
    is random.
    """
    reference = SlateSource("recommender")
    policy = SlateSource("ppo", ppo) if ppo is not None else None
    oracle = annotators[0].oracle
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


def mean_quality(lists: dict[int, np.ndarray], oracle: OracleTaste) -> float:
    return float(np.mean([oracle.quality(user, slate) for user, slate in lists.items()]))


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


def reward_rows(log: FeedbackLog, heldout_users: set[int]) -> tuple[list[int], list[int]]:
    """(rows that train the reward model, rows it is evaluated on): split by user, never by comparison."""
    train_rows = [j for j, user in enumerate(log.users) if user not in heldout_users]
    heldout_rows = [j for j, user in enumerate(log.users) if user in heldout_users]
    return train_rows, heldout_rows


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
) -> tuple[NumpyRewardModel, dict[str, Any], float]:
    """Fit the reward model from scratch on the non-held-out users' comparisons; evaluate on the rest."""
    train_rows, heldout_rows = reward_rows(log, heldout_users)
    started = time.perf_counter()
    rating_pairs = sample_rating_pairs(
        {u: user_contexts[u] for u in sorted(reward_users)},
        config.reward.pairs_per_user,
        config.reward.min_rating_gap,
        config.reward.seed,
    )
    contexts: dict[Hashable, UserContext] = {
        **{u: user_contexts[u] for u in reward_users},
        **comparison_contexts(world, train_histories, log, train_rows),
    }
    result = train_reward_model(
        [log.comparisons[j] for j in train_rows], rating_pairs, contexts, world.item_features, config.reward
    )
    model = result.numpy_model()
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
    metrics = {
        "heldout_accuracy": evaluation["accuracy"],
        "heldout_margin": evaluation["margin"],
        "heldout_loss": evaluation["loss"],
        "heldout_n": len(heldout),
        "heldout_n_strict": int(evaluation["n_strict"]),
        "heldout_label_ceiling": label_ceiling(log, heldout_rows),
        "heldout_taste_ceiling": label_ceiling(log, heldout_rows, without_own_ratings=True),
        "train_accuracy": result.final_metrics.get("accuracy", float("nan")),
        "train_n_comparisons": len(train_rows),
        "train_n_rating_pairs": len(rating_pairs),
        "heldout_by_kind": by_kind,
    }
    return model, metrics, seconds


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
    analyzer: Any  # feedback.text.TextAnalyzer
    eligible: np.ndarray  # user indices with ratings in all three periods (sampled for comparisons)
    heldout_users: set[int]  # their comparisons never train the reward model
    reward_users: set[int]  # every other user (their rating pairs and comparisons train it)
    eval_users: list[int]  # test-period evaluation users
    validation_users: list[int]  # feedback-period evaluation users (= held-out users)
    kl_users: list[int]  # users the KL estimates are averaged over
    rng: np.random.Generator
    log: FeedbackLog = field(default_factory=FeedbackLog)
    ppo_policy: NumpySlatePolicy | None = None  # the current PPO policy (on-policy comparisons)
    dqn_policy: NumpySlatePolicy | None = None
    reward_model: NumpyRewardModel | None = None

    @classmethod
    def prepare(cls, ratings: pd.DataFrame, movies: pd.DataFrame, config: ExperimentConfig) -> ClosedLoop:
        """Split into periods, train the recommender on the train period, build oracles and annotators."""
        from feedback.text import TextAnalyzer  # plain Python (VADER); imported here to keep import light

        config = seeded(config)
        rng = np.random.default_rng(config.seed)
        snapshot = Snapshot.from_ratings(ratings, movies)
        periods = split_periods(snapshot, config.train_fraction, config.feedback_fraction, config.min_ratings)
        train, known = periods.train, periods.known_at_test
        trained = train_recommender(train, config.recommender)

        eligible = np.flatnonzero(periods.eligible)
        movie_frame = movies.set_index("item").reindex(snapshot.item_ids)
        genres = [sorted(g) for g in item_genres(snapshot, movies)]
        years = movie_frame["year"].to_numpy(dtype=np.float64, na_value=np.nan)
        popularity = train.item_counts().astype(np.float64)  # train period only
        train_histories = {u: train.history(u) for u in range(snapshot.n_users)}
        test_histories = {int(u): known.history(int(u)) for u in eligible}
        world = build_world(
            recommender=trained.scorer,
            histories=train_histories,
            genres=genres,
            years=years,
            popularity=popularity,
        )
        features = world.item_features
        feedback_oracle = OracleTaste(
            oracle_frame(periods.feedback), snapshot.n_items, features.genre_multi_hot, features.genres
        )
        test_oracle = OracleTaste(
            oracle_frame(periods.test), snapshot.n_items, features.genre_multi_hot, features.genres
        )
        annotators = make_annotators(
            feedback_oracle,
            config.annotators,
            temperature=config.temperature,
            seed=config.seed,
            noise=config.annotator_deviation,
        )
        shuffled = rng.permutation(eligible)
        n_heldout = max(1, round(config.heldout_user_fraction * len(eligible)))
        heldout_users = {int(u) for u in shuffled[:n_heldout]}
        eval_users = [int(u) for u in eligible]
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
            reward_users={u for u in range(snapshot.n_users) if u not in heldout_users},
            eval_users=eval_users,
            validation_users=validation_users,
            kl_users=kl_users,
            rng=rng,
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
            users=self.eligible,
            annotators=self.annotators,
            analyzer=self.analyzer,
            ppo=self.ppo_policy,
            config=self.config,
            rng=self.rng,
        )

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
        )
        self.reward_model = model
        return metrics, seconds

    def policy_users(self) -> list[UserContext]:
        return [self.world.contexts[int(u)] for u in self.eligible]

    def retrain_ppo(self) -> tuple[Any, float]:
        """PPO from scratch against the current reward model; (PPOResult, seconds)."""
        started = time.perf_counter()
        result = train_ppo(
            self.policy_users(),
            self.recommender,
            self.reward_model,
            self.world.item_features.matrix,
            self.config.ppo,
        )
        self.ppo_policy = NumpySlatePolicy.from_arrays(result.arrays, kind="ppo")
        return result, time.perf_counter() - started

    def retrain_dqn(self) -> tuple[Any, float]:
        """Q-learning from scratch against the current reward model; (DQNResult, seconds)."""
        started = time.perf_counter()
        result = train_dqn(
            self.policy_users(),
            self.recommender,
            self.reward_model,
            self.world.item_features.matrix,
            self.config.dqn,
        )
        self.dqn_policy = NumpySlatePolicy.from_arrays(result.arrays, kind="qlearning")
        return result, time.perf_counter() - started

    def evaluate(self) -> dict[str, Any]:
        """Test-period (and feedback-period validation) metrics of the recommender and both policies."""
        config, K = self.config, self.config.slate_size
        features = self.world.item_features
        contexts = self.refresh_contexts()
        test_world = World(
            self.recommender, features, loop_contexts(self.world, self.test_histories, self.log.signals)
        )
        test_relevant = relevant_items(self.periods.test)
        feedback_relevant = relevant_items(self.periods.feedback)
        sources = {
            "recommender": SlateSource("recommender"),
            "ppo": SlateSource("ppo", self.ppo_policy),
            "qlearning": SlateSource("qlearning", self.dqn_policy),
        }
        test_lists = {
            name: policy_lists(s, test_world, test_world.contexts, self.eval_users, K)
            for name, s in sources.items()
        }
        validation_lists = {
            name: policy_lists(s, self.world, contexts, self.validation_users, K)
            for name, s in sources.items()
        }
        result: dict[str, Any] = {
            "ndcg@10": {name: mean_ndcg(lists, test_relevant, K) for name, lists in test_lists.items()},
            "test_quality": {
                name: mean_quality(lists, self.test_oracle) for name, lists in test_lists.items()
            },
            "ndcg@10_difference": {},
            "win_rate": {},
            "kl": {},
            "validation": {
                "ndcg@10": {
                    name: mean_ndcg(lists, feedback_relevant, K) for name, lists in validation_lists.items()
                },
                "win_rate": {},
            },
        }
        for j, name in enumerate(("ppo", "qlearning")):
            result["ndcg@10_difference"][name] = ndcg_difference(
                test_lists[name],
                test_lists["recommender"],
                test_relevant,
                K,
                config.bootstrap_rounds,
                config.seed,
            )
            test_judge = SimulatedAnnotator(
                self.test_oracle,
                temperature=config.judge_temperature,
                seed=config.seed + 1000 + j,
                with_reasons=False,
            )
            result["win_rate"][name] = judged_win_rate(
                test_lists[name],
                test_lists["recommender"],
                test_judge,
                self.eval_users,
                config.bootstrap_rounds,
                config.seed,
            )
            result["kl"][name] = kl_from_reference(
                sources[name].policy,
                test_world,
                [test_world.context(u) for u in self.kl_users],
                k=K,
                samples=config.kl_samples,
                ref_temperature=config.ppo.ref_temperature,
                seed=config.seed,
            )
            validation_judge = SimulatedAnnotator(
                self.feedback_oracle,
                temperature=config.judge_temperature,
                seed=config.seed + 2000 + j,
                with_reasons=False,
            )
            result["validation"]["win_rate"][name] = judged_win_rate(
                validation_lists[name],
                validation_lists["recommender"],
                validation_judge,
                self.validation_users,
                config.bootstrap_rounds,
                config.seed,
            )
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
        dqn, dqn_seconds = loop.retrain_dqn()
        advance(f"round {round_number}: Q-learning")
        say(
            f"round {round_number}: PPO {ppo_seconds:.1f} s, Q-learning {dqn_seconds:.1f} s; "
            f"reward model + PPO {reward_seconds + ppo_seconds:.1f} s"
        )

        entry: dict[str, Any] = {
            "round": round_number,
            "comparisons": len(loop.log),
            "on_policy_comparisons": sum(1 for kind in loop.log.kinds if kind.startswith("ppo")),
            "signals": sum(len(s) for s in loop.log.signals.values()),
            "reward_model": reward_metrics,
            **loop.evaluate(),
            "seconds": {
                "reward_model": reward_seconds,
                "ppo": ppo_seconds,
                "qlearning": dqn_seconds,
                "reward_model+ppo": reward_seconds + ppo_seconds,
            },
            "ppo_final": {k: float(v) for k, v in ppo.metrics.items()},
            "qlearning_final": {k: float(v) for k, v in dqn.metrics.items()},
        }
        rounds.append(entry)
        advance(f"round {round_number}: evaluated")
        win, ndcg = entry["win_rate"], entry["ndcg@10"]
        say(
            f"round {round_number}: test win rate PPO {win['ppo']['win_rate']:.3f}, "
            f"Q-learning {win['qlearning']['win_rate']:.3f}; NDCG@10 recommender {ndcg['recommender']:.4f}, "
            f"PPO {ndcg['ppo']:.4f}, Q-learning {ndcg['qlearning']:.4f}"
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


def markdown_table(report: ExperimentReport) -> str:
    """One row per round: reward-model accuracy, test win rates, test NDCG@10, KL and retrain timing."""
    header = (
        "| round | comparisons | RM held-out acc. (label ceiling; taste ceiling) | PPO win rate [95% CI] | "
        "Q-learning win rate [95% CI] | NDCG@10 rec. | NDCG@10 PPO | NDCG@10 Q | PPO - rec. NDCG@10 [95% CI] | "
        "KL PPO | KL Q | "
        "RM s | PPO s | RM+PPO s | Q s |\n"
        "|---:|---:|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = []
    for r in report.rounds:
        rm, s = r["reward_model"], r["seconds"]
        lines.append(
            f"| {r['round']} | {r['comparisons']} | {rm['heldout_accuracy']:.3f} ({rm['heldout_label_ceiling']:.3f}; "
            f"{rm['heldout_taste_ceiling']:.3f}) | "
            f"{_interval(r['win_rate']['ppo'])} | {_interval(r['win_rate']['qlearning'])} | "
            f"{r['ndcg@10']['recommender']:.4f} | {r['ndcg@10']['ppo']:.4f} | {r['ndcg@10']['qlearning']:.4f} | "
            f"{_difference(r['ndcg@10_difference']['ppo'])} | "
            f"{r['kl']['ppo']:.2f} | {r['kl']['qlearning']:.2f} | "
            f"{s['reward_model']:.1f} | {s['ppo']:.1f} | {s['reward_model+ppo']:.1f} | {s['qlearning']:.1f} |"
        )
    return header + "\n".join(lines) + "\n"


def validation_table(report: ExperimentReport) -> str:
    """The feedback-period numbers defaults were chosen on (reward model's held-out users)."""
    header = (
        "| round | PPO win rate (feedback period) | Q win rate (feedback period) | "
        "NDCG@10 rec. | NDCG@10 PPO | NDCG@10 Q |\n|---:|---|---|---:|---:|---:|\n"
    )
    lines = []
    for r in report.rounds:
        v = r["validation"]
        lines.append(
            f"| {r['round']} | {_interval(v['win_rate']['ppo'])} | {_interval(v['win_rate']['qlearning'])} | "
            f"{v['ndcg@10']['recommender']:.4f} | {v['ndcg@10']['ppo']:.4f} | {v['ndcg@10']['qlearning']:.4f} |"
        )
    return header + "\n".join(lines) + "\n"


COLOURS = {"recommender": "dimgrey", "ppo": "tab:blue", "qlearning": "tab:orange"}


def plot_report(report: ExperimentReport, path: Path) -> None:
    """Three panels per round: reward-model accuracy, test win rates with intervals, test NDCG@10."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = [r["round"] for r in report.rounds]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), constrained_layout=True)

    ax = axes[0]
    for key, style, colour, label in (
        ("heldout_accuracy", "o-", "tab:green", "reward model"),
        ("heldout_label_ceiling", "s--", "grey", "noise-free oracle (label ceiling)"),
        ("heldout_taste_ceiling", "^:", "grey", "taste ceiling: the oracle without the users' own ratings"),
    ):
        ax.plot(rounds, [r["reward_model"][key] for r in report.rounds], style, color=colour, label=label)
    ax.axhline(0.75, color="tab:red", lw=0.8, ls=":", label="target 0.75")
    ax.set(title="Reward model: held-out-user accuracy", xlabel="round", ylabel="accuracy", ylim=(0.4, 1.0))
    ax.legend(fontsize=8)

    ax = axes[1]
    for offset, (name, label) in zip(
        (-0.05, 0.05), (("ppo", "PPO"), ("qlearning", "Q-learning")), strict=True
    ):
        wins = [r["win_rate"][name] for r in report.rounds]
        centre = np.array([w["win_rate"] for w in wins])
        err = np.array(
            [
                [c - w["low"] for c, w in zip(centre, wins, strict=True)],
                [w["high"] - c for c, w in zip(centre, wins, strict=True)],
            ]
        )
        ax.errorbar(
            np.array(rounds) + offset, centre, yerr=err, fmt="o-", capsize=3, color=COLOURS[name], label=label
        )
    ax.axhline(0.5, color="grey", lw=0.8)
    ax.axhline(0.6, color="tab:red", lw=0.8, ls=":", label="target 0.60 (PPO)")
    ax.set(
        title="Win rate vs recommender (test period, 95% CI)",
        xlabel="round",
        ylabel="win rate",
        ylim=(0.0, 1.0),
    )
    ax.legend(fontsize=8)

    ax = axes[2]
    for name, label in (("recommender", "recommender"), ("ppo", "PPO"), ("qlearning", "Q-learning")):
        ax.plot(rounds, [r["ndcg@10"][name] for r in report.rounds], "o-", color=COLOURS[name], label=label)
    ax.set(title="NDCG@10 on the test period", xlabel="round", ylabel="NDCG@10")
    ax.legend(fontsize=8)
    for ax in axes:
        ax.set_xticks(rounds)
    fig.savefig(path, dpi=120)
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
    paths["table"].write_text(
        "## Test period\n\n"
        + markdown_table(report)
        + "\n## Feedback period (validation)\n\n"
        + validation_table(report)
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
