"""The RLHF stages of the pipeline: reward model, PPO, Q-learning and the reranker baselines, then the gate.

    snapshot feedback -> split the raters: learner, judge and gate users (``split_users``)
    -> reward model on the learner users' comparisons -> PPO / Q-learning on learner users, and the
    reranker baselines (quality_rerank, rm_rerank, best_of_n, mmr, rm_greedy, rm_mmr) -> register every candidate
    -> judge reward model on the judge users' comparisons -> gate on the gate users -> serve the winner

No comparison, signal or rating pair of a judge or gate user trains the learner, and no candidate is
judged by the reward model it was optimised against: the judge is a second reward model trained
only on the judge users' comparisons. A comparison is always scored in a context holding only the
signals its rater gave *before* it (``comparison_contexts``): a reason explains the very choice it
comes with. The gate's rules are the pure functions of ``training.ml.gate``.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings

from feedback.models import Comparison, ListFeedback
from training.ml.active import fit_posterior
from training.ml.algorithms import FEEDBACK_FREE_POLICIES
from training.ml.artifacts import load_artifact
from training.ml.data import History
from training.ml.dqn import DQNConfig
from training.ml.gate import (
    CandidateEvidence,
    GateDecision,
    GateRules,
    candidate_verdicts,
    gate_decide,
    reward_model_verdict,
)
from training.ml.metrics import wilson_interval
from training.ml.norms import ListAttributes
from training.ml.overrides import settings_apply
from training.ml.ppo import PPOConfig
from training.ml.rerankers import (
    RERANKER_KINDS,
    BestOfN,
    MMRRerank,
    QualityRerank,
    Reranker,
    RewardGreedy,
    RewardMMR,
    RewardRerank,
    best_of_n_kl,
    reranker_export,
    shrunk_mean_ratings,
)
from training.ml.reward_model import (
    NumpyRewardModel,
    RewardModelConfig,
    evaluate_reward_model,
)
from training.ml.rlhf import OUTCOME_OF_CHOICE, SlateSource, World, build_world, kl_from_reference
from training.ml.stages import candidate_evidence, fit_policy, fit_reward_model, judge_trusted
from training.ml.user_features import UserContext, make_user_context

from . import registry
from .exceptions import GateLeak, NotEnoughData
from .models import ModelEvent, ModelVersion
from .publish import model_version_gate, model_version_publish
from .runs import RunReporter
from .snapshots import movies_frame, ratings_frame
from .store import POLICY_ALGORITHMS, LoadedModel
from .store import models as served_models

MAX_CONTEXT_USERS = 1500  # raters sampled for rating pairs and RL episodes, besides comparison contexts
GATE_USERS = 200  # at most this many gate users; beyond it more users cost time and add little
GATE_SLATE_SIZE = 10  # lists are compared at K = 10, as in the experiment
NDCG_HELDOUT_SHARE = 0.2  # of a gate user's ratings, the latest kept out of their context for NDCG@10
NDCG_RELEVANT_RATING = 4.0  # a held-out rating at least this high makes a movie relevant
KL_USERS = 50  # gate users the KL of PPO and Q-learning is estimated over


def gate_rules(seed: int = 0) -> GateRules:
    return GateRules(
        min_judge_accuracy=settings.GATE_MIN_JUDGE_ACCURACY,
        min_judge_comparisons=settings.GATE_MIN_JUDGE_COMPARISONS,
        min_users=settings.GATE_MIN_HELDOUT_USERS,
        max_kl=settings.GATE_MAX_KL,
        bootstrap_rounds=settings.GATE_BOOTSTRAP_ROUNDS,
        seed=seed,
    )


def _base() -> LoadedModel:
    version = registry.active_version(algorithm="base")
    loaded = served_models.version(version) if version else None
    if loaded is None:
        raise NotEnoughData("No active recommender: run `manage.py train base` first.")
    return loaded


def comparison_rows(*, include_simulated: bool = True) -> list[dict]:
    """Every judgment usable for training: excluded annotators left out, MovieLens ids as lists."""
    judgments = Comparison.objects.exclude(annotator__annotator_status__excluded=True)
    if not include_simulated:
        judgments = judgments.filter(simulator="")
    return list(
        judgments.values(
            "id",
            "task_id",
            "choice",
            "signals",
            "created_at",
            "task__context_rater_id",
            "task__left_items",
            "task__right_items",
            "task__selection",
        ).order_by("id")
    )


# --- 1. Who may train what: the user split ------------------------------------------------------


@dataclass(frozen=True)
class UserSplit:
    """Raters by what they may train. Disjoint; every comparison belongs to its context rater's part."""

    learner: frozenset[int]  # comparisons, signals and ratings train the reward model and the policies
    judge: frozenset[int]  # comparisons train the judge reward model only
    gate: frozenset[int]  # nothing trains on them: the gate's users (win rate, replay, NDCG)

    def check(self) -> UserSplit:
        for a, b in (("learner", "judge"), ("learner", "gate"), ("judge", "gate")):
            shared = getattr(self, a) & getattr(self, b)
            if shared:
                raise GateLeak(f"raters {sorted(shared)[:5]} are both {a} and {b} users")
        return self

    def part(self, rater: int) -> str:
        for name in ("learner", "judge", "gate"):
            if rater in getattr(self, name):
                return name
        raise GateLeak(f"rater {rater} is in no part of the split")

    def describe(self) -> dict[str, Any]:
        return {name: len(getattr(self, name)) for name in ("learner", "judge", "gate")}


def split_users(
    *,
    comparison_raters: Iterable[int],
    other_raters: Iterable[int],
    seed: int,
    judge_share: float,
    gate_share: float,
    learner_raters: Iterable[int] = (),
    max_gate_users: int = GATE_USERS,
) -> UserSplit:
    """Split raters into learner, judge and gate users, deterministically by ``seed``.

    Raters with comparisons are shuffled and cut into the three parts by ``judge_share`` and
    ``gate_share``; raters without comparisons (rating pairs and RL episodes only) go to the gate
    by ``gate_share`` and otherwise to the learner. ``learner_raters`` (whose comparisons an existing
    reward model already trained on) always stay learners.
    """
    forced = {int(r) for r in learner_raters}
    rng = np.random.default_rng(seed)
    with_comparisons = np.array(sorted({int(r) for r in comparison_raters} - forced), np.int64)
    with_comparisons = rng.permutation(with_comparisons)
    n_judge = round(judge_share * len(with_comparisons))
    n_gate = min(max_gate_users, round(gate_share * len(with_comparisons)))
    judge = set(with_comparisons[:n_judge].tolist())
    gate = set(with_comparisons[n_judge : n_judge + n_gate].tolist())
    learner = forced | set(with_comparisons[n_judge + n_gate :].tolist())
    others = np.array(sorted({int(r) for r in other_raters} - forced - judge - gate - learner), np.int64)
    others = rng.permutation(others)
    n_other_gate = min(max_gate_users - len(gate), round(gate_share * len(others)))
    gate |= set(others[:n_other_gate].tolist())
    learner |= set(others[n_other_gate:].tolist())
    return UserSplit(frozenset(learner), frozenset(judge), frozenset(gate)).check()


def check_trained_only_on(records: Iterable[Mapping[str, Any]], allowed: Iterable[int], role: str) -> None:
    """Raise ``GateLeak`` when a comparison of a rater outside ``allowed`` would train the ``role``."""
    allowed = set(allowed)
    stray = sorted({int(r["rater"]) for r in records} - allowed)
    if stray:
        raise GateLeak(f"the {role} would train on comparisons of raters {stray[:5]} outside its users")


def learner_raters_of(reward_version: ModelVersion | None, rows: Sequence[dict]) -> set[int]:
    """Raters whose comparisons the reward model ``reward_version`` may have trained on.

    Recorded on the version since the gate has had judges; for an older version, every rater with a
    comparison made before it was created (a superset: safe, at the cost of fewer judge users).
    """
    if reward_version is None:
        return set()
    recorded = reward_version.data_snapshot.get("learner_raters")
    if recorded is not None:
        return {int(r) for r in recorded}
    return {
        int(row["task__context_rater_id"]) for row in rows if row["created_at"] <= reward_version.created_at
    }


# --- 2. The world: contexts of every user, and the comparisons' own contexts -----------------------


@dataclass
class FeedbackSnapshot:
    """The feedback snapshot one run learns from and is gated on."""

    world: World  # contexts of every user (gate users' without their latest ratings), item features
    split: UserSplit
    comparisons: list[dict]  # every usable comparison: rater, user (its context key), slates, outcome
    comparison_contexts: dict[Hashable, UserContext]  # per comparison: history + only earlier signals
    heldout_relevant: dict[int, set[int]]  # gate users: catalogue indices of their held-out liked movies
    item_quality: np.ndarray  # shrunk mean rating per movie, over the ratings the contexts hold
    list_attributes: ListAttributes | None = None  # genres, decades, franchises: what list-level terms read

    def records(self, part: str) -> list[dict]:
        users = getattr(self.split, part)
        return [c for c in self.comparisons if c["rater"] in users]

    def contexts_for(self, records: Sequence[dict], raters: Iterable[int]) -> dict[Hashable, UserContext]:
        """The comparisons' own contexts and the named raters' contexts (for rating pairs)."""
        contexts: dict[Hashable, UserContext] = {
            r: self.world.contexts[r] for r in raters if r in self.world.contexts
        }
        contexts.update({c["user"]: self.comparison_contexts[c["user"]] for c in records})
        return contexts


def _histories(ratings: pd.DataFrame, base: LoadedModel) -> tuple[dict[int, History], pd.DataFrame]:
    index, known = base.indices(ratings["item"].to_numpy(np.int64))
    ratings = ratings[known].assign(idx=index).sort_values(["user", "timestamp"], kind="stable")
    histories = {
        int(user): History(group["idx"].to_numpy(), group["rating"].to_numpy(), group["timestamp"].to_numpy())
        for user, group in ratings.groupby("user", sort=False)
    }
    return histories, ratings


def hold_out_latest(
    histories: dict[int, History], users: Iterable[int], min_ratings: int
) -> tuple[dict[int, History], dict[int, set[int]]]:
    """Histories without the latest ``NDCG_HELDOUT_SHARE`` of each named user's ratings (users with at
    least ``min_ratings``), and the movies among those held out rated ``NDCG_RELEVANT_RATING`` or more."""
    histories = dict(histories)
    relevant: dict[int, set[int]] = {}
    for user in users:
        history = histories.get(user)
        if history is None or len(history) < min_ratings:
            continue
        n_out = max(1, round(NDCG_HELDOUT_SHARE * len(history)))
        cut = len(history) - n_out  # histories are in time order
        liked = history.item_idx[cut:][history.ratings[cut:] >= NDCG_RELEVANT_RATING]
        histories[user] = History(history.item_idx[:cut], history.ratings[:cut], history.timestamps[:cut])
        if len(liked):
            relevant[user] = set(np.asarray(liked, np.int64).tolist())
    return histories, relevant


def feedback_snapshot(
    *, base: LoadedModel, rows: list[dict], seed: int, learner_raters: Iterable[int] = ()
) -> FeedbackSnapshot:
    """Split the raters, build every context and each comparison's own context over the base catalogue."""
    ratings = ratings_frame()
    context_raters = {int(row["task__context_rater_id"]) for row in rows}
    rng = np.random.default_rng(seed)
    counts = ratings.groupby("user").size()
    eligible = counts.index[counts >= 5].to_numpy()
    sampled = (
        set(rng.choice(eligible, size=min(MAX_CONTEXT_USERS, len(eligible)), replace=False).tolist())
        if len(eligible)
        else set()
    )
    split = split_users(
        comparison_raters=context_raters,
        other_raters=sampled - context_raters,
        seed=seed,
        judge_share=settings.GATE_JUDGE_USER_SHARE,
        gate_share=settings.GATE_HELDOUT_USER_SHARE,
        learner_raters=learner_raters,
    )
    histories, kept = _histories(ratings[ratings["user"].isin(context_raters | sampled)], base)
    histories, relevant = hold_out_latest(histories, split.gate, settings.GATE_NDCG_MIN_RATINGS)
    for rater in context_raters:
        histories.setdefault(rater, History.empty())

    # Signals in time order: (time, rater, comparison id or None, signals).
    said: list[tuple[Any, int, int | None, list]] = [
        (row["created_at"], int(row["task__context_rater_id"]), row["id"], row["signals"] or [])
        for row in rows
    ]
    for rater_id, created_at, batch in ListFeedback.objects.filter(
        user__rater__id__in=list(histories)
    ).values_list("user__rater__id", "created_at", "signals"):
        said.append((created_at, int(rater_id), None, batch or []))
    said.sort(key=lambda entry: (entry[0], entry[2] or 0))
    # A user's context holds every signal of theirs except, for judge and gate users, the reasons
    # given with their comparisons: those comparisons are what the judges and the replay score.
    user_signals: dict[int, list[dict]] = {}
    for _, rater, comparison_id, batch in said:
        if comparison_id is None or rater in split.learner:
            user_signals.setdefault(rater, []).extend(batch)

    movies = movies_frame().set_index("item").reindex(base.item_ids)
    genres = [list(g) if isinstance(g, list) else [] for g in movies["genres"]]
    years = movies["year"].to_numpy(dtype=np.float64, na_value=np.nan)
    popularity = np.bincount(kept["idx"].to_numpy(np.int64), minlength=len(base.item_ids)).astype(np.float64)
    world = build_world(
        recommender=base.scorer,
        histories=histories,
        genres=genres,
        years=years,
        popularity=popularity,
        signals=user_signals,
    )

    comparisons = comparison_records(rows, base)
    prior: dict[int, list[dict]] = {}  # each rater's signals so far, while walking through time
    before: dict[int, list[dict]] = {}  # comparison id -> its rater's signals given before it
    for _, rater, comparison_id, batch in said:
        if comparison_id is not None:
            before[comparison_id] = list(prior.get(rater, []))
        prior.setdefault(rater, []).extend(batch)
    contexts = {
        c["user"]: make_user_context(
            world.contexts[c["rater"]].history,
            world.recommender,
            world.item_features,
            signals=before.get(c["id"]) or None,
            key=c["user"],
        )
        for c in comparisons
    }
    # The quality reranker's movie means: every rating but the gate users' held-out ones.
    n_items = len(base.item_ids)
    index, known = base.indices(ratings["item"].to_numpy(np.int64))
    users = ratings["user"].to_numpy(np.int64)[known]
    held = np.array([u * n_items + i for u, items in relevant.items() for i in items], np.int64)
    keep = ~np.isin(users * n_items + index, held)
    item_quality = shrunk_mean_ratings(
        index[keep], ratings["rating"].to_numpy(np.float64)[known][keep], n_items
    )
    titles = movies["title"].fillna("").astype(str).tolist()
    attributes = ListAttributes.from_catalogue(
        world.item_features.genre_multi_hot, world.item_features.genres, years, titles
    )
    return FeedbackSnapshot(world, split, comparisons, contexts, relevant, item_quality, attributes)


def comparison_records(rows: list[dict], base: LoadedModel) -> list[dict]:
    """Comparisons in the reward model's format, lists mapped to catalogue indices; each is scored in
    its own context (key ``("comparison", id)``)."""
    records = []
    for row in rows:
        left, _ = base.indices(np.asarray(row["task__left_items"], np.int64))
        right, _ = base.indices(np.asarray(row["task__right_items"], np.int64))
        if not len(left) or not len(right):
            continue
        records.append(
            {
                "id": row["id"],
                "rater": int(row["task__context_rater_id"]),
                "user": ("comparison", row["id"]),
                "slate_a": left,
                "slate_b": right,
                "outcome": OUTCOME_OF_CHOICE[row["choice"]],
                "selection": row.get("task__selection", "random"),  # "active": chosen for disagreement
            }
        )
    return records


# --- 3. The learner: reward model, policies, reranker baselines ---------------------------------


def stage_reward(
    *,
    reporter: RunReporter,
    snapshot: FeedbackSnapshot,
    base: LoadedModel,
    span,
    config: RewardModelConfig | None = None,
) -> tuple[ModelVersion, NumpyRewardModel, dict]:
    """The learner's reward model: the learner users' comparisons and rating pairs, nobody else's."""
    run = reporter.run
    start, end = span
    world, split = snapshot.world, snapshot.split
    config = settings_apply(config or reward_config(run.seed), run.config.get("reward"))
    train = snapshot.records("learner")
    # Held-out accuracy on the randomly chosen tasks only: active ones are picked where the model is
    # unsure, so counting them would understate its accuracy on the tasks it will meet.
    heldout_all = snapshot.records("judge") + snapshot.records("gate")
    heldout = [c for c in heldout_all if c.get("selection", "random") == "random"]
    check_trained_only_on(train, split.learner, "learner reward model")
    learner_contexts = {r: world.contexts[r] for r in sorted(split.learner) if r in world.contexts}
    reporter.log(
        f"Reward model: {len(train)} comparisons of {len(split.learner)} learner users; "
        f"{len(heldout_all)} comparisons of judge and gate users held out "
        f"({len(heldout)} of randomly chosen tasks, which measure its accuracy)"
    )

    def on_epoch(epoch: int, metrics: dict) -> None:
        reporter.progress(
            step=f"Reward model epoch {epoch}/{config.epochs}",
            percent=start + (end - start) * epoch / config.epochs,
        )
        reporter.record_history("reward_model", {"epoch": epoch, **{k: float(v) for k, v in metrics.items()}})

    train_contexts = snapshot.contexts_for(train, learner_contexts)
    fit = fit_reward_model(
        train,
        raters=learner_contexts,
        contexts=train_contexts,
        item_features=world.item_features,
        config=config,
        progress=on_epoch,
        list_attributes=snapshot.list_attributes if config.set_features else None,
    )
    result, rating_pairs = fit.result, fit.rating_pairs
    # The last-layer posterior active comparisons score pairs with (training.ml.active), in the artifact.
    posterior_started = time.perf_counter()
    model = NumpyRewardModel.from_arrays({**result.arrays, **fit_posterior(fit.model, train, train_contexts)})
    reporter.log(
        f"Reward model posterior (active comparisons): {time.perf_counter() - posterior_started:.1f} s"
    )
    evaluation = evaluate_reward_model(model, heldout, snapshot.contexts_for(heldout, [])) if heldout else {}
    metrics = {f"train/{k}": float(v) for k, v in result.final_metrics.items()}
    metrics.update({f"heldout/{k}": float(v) for k, v in evaluation.items()})
    metrics["heldout/n"] = len(heldout)
    metrics["heldout/n_active_left_out"] = len(heldout_all) - len(heldout)
    accuracy = evaluation.get("accuracy")
    strict = int(evaluation.get("n_strict", 0))
    if accuracy is not None and strict:
        low, high = wilson_interval(accuracy * strict, strict)
        metrics["heldout/accuracy_low"], metrics["heldout/accuracy_high"] = low, high
        reporter.log(
            f"Reward model held-out accuracy: {accuracy:.3f} [{low:.3f}, {high:.3f}] on {strict} strict "
            f"comparison{'s' if strict != 1 else ''}"
        )
    else:
        reporter.log("Reward model held-out accuracy: n/a (no held-out comparison with a strict choice)")
    learner_raters = sorted({c["rater"] for c in train})
    version = model_version_publish(
        algorithm="reward",
        arrays=model.export_arrays(),
        item_ids=base.item_ids,
        manifest={"kind": "reward", "base_version_id": base.version_id, "metrics": metrics},
        metrics=metrics,
        config={**asdict(config), "base_version_id": base.version_id},
        seed=config.seed,
        data_snapshot={
            "comparisons": len(train),
            "heldout": len(heldout_all),
            "heldout_random": len(heldout),  # what the held-out accuracy is measured on
            "rating_pairs": len(rating_pairs),
            "users": split.describe(),
            "learner_raters": learner_raters,  # the gate keeps these out of its judges and users
        },
        run=run,
        verdict=reward_model_verdict(
            accuracy=accuracy,
            heldout_comparisons=len(heldout),
            min_comparisons=settings.GATE_MIN_HELDOUT_COMPARISONS,
            min_accuracy=settings.GATE_MIN_REWARD_ACCURACY,
        ),
    )
    return version, model, metrics


@dataclass
class Candidate:
    """A registered version the gate judges: its list source and, for sampled policies, its KL."""

    name: str  # the algorithm
    source: SlateSource
    version: ModelVersion
    kl: float | None = None


def reward_config(seed: int) -> RewardModelConfig:
    """The product's reward model: the defaults, set-aware unless ``REWARD_SET_FEATURES`` is off."""
    return RewardModelConfig(seed=seed, set_features=settings.REWARD_SET_FEATURES)


def policy_users(snapshot: FeedbackSnapshot) -> list[Hashable]:
    """Learner users with five ratings or more: PPO and Q-learning's episodes."""
    contexts = snapshot.world.contexts
    return [
        key for key in sorted(snapshot.split.learner) if key in contexts and len(contexts[key].history) >= 5
    ]


def stage_policy(
    *,
    algorithm: str,
    reporter: RunReporter,
    snapshot: FeedbackSnapshot,
    base: LoadedModel,
    reward_model: NumpyRewardModel,
    span,
    ref_temperature: float,
    config: PPOConfig | DQNConfig | None = None,
    reward_version_id: int | None = None,
) -> Candidate:
    """Train PPO or Q-learning on the learner users against the learner's reward model; register it."""
    run = reporter.run
    start, end = span
    world = snapshot.world
    train_users = policy_users(snapshot)
    if len(train_users) < 8:
        raise NotEnoughData("Fewer than 8 raters with five ratings: not enough users to train a policy.")
    contexts = [world.context(key) for key in train_users]
    config = policy_config(algorithm, run, config)
    total = config.iterations if algorithm == "ppo" else config.total_steps
    counter = {"n": 0}

    def on_iteration(metrics: dict) -> None:
        counter["n"] += 1
        step = metrics.get("iteration", metrics.get("global_step", counter["n"]))
        reporter.progress(
            step=f"{algorithm} {int(step)}/{total}",
            percent=start + (end - start) * min(1.0, float(step) / total),
        )
        reporter.record_history(
            algorithm, {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
        )

    reporter.log(f"{algorithm}: {len(contexts)} learner users")
    policy, result = fit_policy(
        algorithm, contexts, world.recommender, reward_model, world.item_features.matrix, config, on_iteration
    )
    gate_contexts = [world.context(key) for key in sorted(snapshot.split.gate) if key in world.contexts]
    kl = kl_from_reference(
        policy,
        world,
        gate_contexts[:KL_USERS],
        k=GATE_SLATE_SIZE,
        ref_temperature=ref_temperature,
        seed=run.seed,
    )
    metrics = {
        **{k: float(v) for k, v in result.metrics.items() if isinstance(v, (int, float))},
        "gate/kl": kl,
    }
    version = model_version_publish(
        algorithm=algorithm,
        arrays={**result.arrays, "item_features": world.item_features.matrix},
        item_ids=base.item_ids,
        manifest={
            "kind": algorithm,
            "base_version_id": base.version_id,
            "signal_dim": int(world.item_features.signal_dim),
            "metrics": metrics,
        },
        metrics=metrics,
        config={**result.config, "base_version_id": base.version_id, "reward_version_id": reward_version_id},
        seed=config.seed,
        data_snapshot={"train_users": len(train_users), "users": snapshot.split.describe()},
        run=run,
    )
    reporter.progress(step=f"{algorithm} trained", percent=end, force=True)
    return Candidate(algorithm, SlateSource(algorithm, policy), version, kl)


def policy_config(algorithm: str, run, config: PPOConfig | DQNConfig | None = None) -> PPOConfig | DQNConfig:
    if algorithm == "ppo":
        return settings_apply(config or PPOConfig(seed=run.seed + 1), run.config.get("ppo"))
    return settings_apply(config or DQNConfig(seed=run.seed + 1), run.config.get("qlearning"))


def rerankers(
    *, snapshot: FeedbackSnapshot, reward_model: NumpyRewardModel, ppo_config: PPOConfig, seed: int
) -> list[Reranker]:
    """The six baselines at the settings' a, b, n, lambda, b and b, over the top candidates PPO re-ranks
    too; best-of-n samples from the reference policy PPO is held to (its ``ref_temperature``). MMR
    needs the movies' attributes (every snapshot has them; a hand-built one may not)."""
    n_candidates = int(ppo_config.n_candidates)
    built: list[Reranker] = [
        QualityRerank(snapshot.item_quality, settings.RERANK_QUALITY_WEIGHT, n_candidates),
        RewardRerank(reward_model, settings.RERANK_REWARD_WEIGHT, n_candidates),
        BestOfN(reward_model, settings.RERANK_BEST_OF_N, ppo_config.ref_temperature, n_candidates, seed),
    ]
    attributes = snapshot.list_attributes
    if attributes is not None:
        built.append(MMRRerank(attributes, settings.RERANK_MMR_LAMBDA, n_candidates))
    built.append(RewardGreedy(reward_model, settings.RERANK_GREEDY_WEIGHT, n_candidates))
    if attributes is not None:
        built.append(
            RewardMMR(
                reward_model,
                attributes,
                settings.RERANK_MMR_LAMBDA,
                settings.RERANK_RM_MMR_WEIGHT,
                n_candidates,
            )
        )
    return built


def reranker_version_register(
    *,
    reranker: Reranker,
    base: LoadedModel,
    run=None,
    reward_version: ModelVersion | None = None,
    data_snapshot: dict | None = None,
) -> Candidate:
    """Write a reranker's artifact (numpy arrays + manifest) and register it as a servable version."""
    kind = reranker.kind
    arrays, meta = reranker_export(reranker)
    signal_dim = (
        0
        if isinstance(reranker, QualityRerank | MMRRerank)
        else reranker.reward_model.item_features.signal_dim
    )
    kl = best_of_n_kl(reranker.n) if isinstance(reranker, BestOfN) else None
    manifest = {
        **meta,
        "base_version_id": base.version_id,
        "reward_version_id": reward_version.pk if reward_version else None,
        "signal_dim": int(signal_dim),
    }
    version = model_version_publish(
        algorithm=kind,
        arrays=arrays,
        item_ids=base.item_ids,
        manifest=manifest,
        metrics={} if kl is None else {"gate/kl": kl},
        config=manifest,
        seed=run.seed if run else 0,
        data_snapshot=data_snapshot or {},
        run=run,
    )
    return Candidate(kind, SlateSource(kind, reranker), version, kl)


# --- 4. The judge and the gate ------------------------------------------------------------------


@dataclass
class Judge:
    """A reward model none of the candidates was optimised against, with its held-out credentials."""

    model: Any  # NumpyRewardModel, or anything with ``list_score(ctx, slate)``
    accuracy: float | None  # on the gate users' strict comparisons
    n_strict: int
    n_train: int = 0


def train_judge(
    *, snapshot: FeedbackSnapshot, records: Sequence[dict], config: RewardModelConfig, seed: int
) -> Judge | None:
    """Fit the judge on the judge users' comparisons only; measure it on the gate users' comparisons."""
    check_trained_only_on(records, snapshot.split.judge, "judge")
    if not records:
        return None
    judge_config = replace(config, seed=seed, validation_fraction=0.0)
    raters = sorted({c["rater"] for c in records})
    contexts = snapshot.contexts_for(records, raters)
    model = fit_reward_model(
        records,
        raters={r: contexts[r] for r in raters if r in contexts},
        contexts=contexts,
        item_features=snapshot.world.item_features,
        config=judge_config,
        list_attributes=snapshot.list_attributes if judge_config.set_features else None,
    ).model
    return replace(credentials_on_gate_users(snapshot=snapshot, model=model), n_train=len(records))


def incumbent_source(base: LoadedModel) -> tuple[SlateSource, str]:
    """The policy end users get now, as a list source over the same catalogue; else the recommender."""
    loaded = served_models.served()
    if (
        loaded is not None
        and loaded.algorithm in POLICY_ALGORITHMS
        and np.array_equal(loaded.item_ids, base.item_ids)
    ):
        policy = loaded.scorer.reranker if loaded.algorithm in RERANKER_KINDS else loaded.scorer.policy
        return SlateSource(loaded.algorithm, policy), f"{loaded.algorithm} v{loaded.version}"
    return SlateSource("base"), f"base v{base.version}"


FEEDBACK_FREE = FEEDBACK_FREE_POLICIES  # candidates that learned nothing from comparisons: quality_rerank


def credentials_on_gate_users(*, snapshot: FeedbackSnapshot, model: Any) -> Judge:
    """A reward model as a judge, with its accuracy on the gate users' strict comparisons.

    Used for the judge, and for the learner's reward model, which may judge only candidates that
    learned nothing from comparisons (``FEEDBACK_FREE``): they were not optimised against it, and it
    trained on far more comparisons than the judge.
    """
    gate_records = snapshot.records("gate")
    evaluation = (
        evaluate_reward_model(model, gate_records, snapshot.contexts_for(gate_records, []))
        if gate_records
        else {}
    )
    n_strict = int(evaluation.get("n_strict", 0))
    return Judge(model, evaluation.get("accuracy") if n_strict else None, n_strict)


def gate_evidence(
    *,
    snapshot: FeedbackSnapshot,
    candidates: Sequence[Candidate],
    served: SlateSource,
    judge: Judge | None,
    rules: GateRules,
    learner: Judge | None = None,
) -> list[CandidateEvidence]:
    """Each candidate against the served policy on the gate users: judge, replay, held-out NDCG@10.

    A feedback-free candidate is judged by the learner's reward model when one is given.
    """
    world = snapshot.world
    users = [u for u in sorted(snapshot.split.gate) if u in world.contexts and len(world.contexts[u].history)]

    def lists(source: SlateSource) -> dict[int, np.ndarray]:
        return {u: source.slate(world, world.contexts[u], GATE_SLATE_SIZE) for u in users}

    served_lists = lists(served)
    replayed = [(c["rater"], c["slate_a"], c["slate_b"], c["outcome"]) for c in snapshot.records("gate")]
    evidence = []
    for candidate in candidates:
        own = learner if learner is not None and candidate.name in FEEDBACK_FREE else None
        scorer = own or judge
        evidence.append(
            candidate_evidence(
                name=candidate.name,
                lists=lists(candidate.source),
                served=served_lists,
                judge=None
                if scorer is None
                else lambda user, slate, scorer=scorer: scorer.model.list_score(world.contexts[user], slate),
                judge_name="learner's reward model" if own is not None else "independent judge",
                judge_trusted=None if own is None else judge_trusted(own.accuracy, own.n_strict, rules),
                replayed=replayed,
                relevant=snapshot.heldout_relevant,
                slate_size=GATE_SLATE_SIZE,
                rules=rules,
                kl=candidate.kl,
            )
        )
    return evidence


def stage_gate(
    *,
    reporter: RunReporter | None,
    snapshot: FeedbackSnapshot,
    base: LoadedModel,
    candidates: Sequence[Candidate],
    judge: Judge | None,
    incumbent: tuple[SlateSource, str] | None = None,
    seed: int = 0,
    learner: Judge | None = None,
) -> GateDecision:
    """Judge every candidate against the served policy, store the full report on each, serve the winner."""
    rules = gate_rules(seed)
    served, incumbent_name = incumbent or incumbent_source(base)
    evidence = gate_evidence(
        snapshot=snapshot, candidates=candidates, served=served, judge=judge, rules=rules, learner=learner
    )
    decision = gate_decide(
        evidence,
        incumbent=incumbent_name,
        judge_accuracy=judge.accuracy if judge else None,
        judge_comparisons=judge.n_strict if judge else 0,
        rules=rules,
    )
    verdicts = candidate_verdicts(
        decision,
        [candidate.name for candidate in candidates],
        context={
            "judge": {**decision.judge, "train_comparisons": judge.n_train if judge else 0},
            "users": {
                **snapshot.split.describe(),
                "gate_with_heldout_ratings": len(snapshot.heldout_relevant),
                "gate_comparisons": len(snapshot.records("gate")),
                "judge_comparisons": len(snapshot.records("judge")),
            },
        },
    )
    actor = reporter.run.created_by if reporter else None
    for candidate in candidates:
        # "activated": what the gate chooses is what users get (a ServingDecision), not only the
        # active version of its algorithm; a person's promotion is the other way in.
        model_version_gate(
            version=candidate.version,
            verdict=verdicts[candidate.name],
            actor=actor,
            action=ModelEvent.Action.ACTIVATED,
        )
    if reporter:
        reporter.log(f"Gate: {decision.reason}")
    return decision


def run_rlhf_stage(*, kind: str, reporter: RunReporter, configs: dict | None = None) -> list[ModelVersion]:
    """Run `reward`, `ppo`, `qlearning` or `all` (reward model, then both policies against it).

    ``configs`` may override the hyperparameters per stage: ``{"reward": RewardModelConfig(...),
    "ppo": PPOConfig(...), "qlearning": DQNConfig(...)}``. ``all`` also registers the three
    reranker baselines; the policies trained are gated against the served policy.
    """
    configs = configs or {}
    run = reporter.run
    reporter.progress(step="FeedbackSnapshot of feedback", percent=1, force=True)
    base = _base()
    rows = comparison_rows()
    reward_version = None if kind in ("reward", "all") else registry.active_version(algorithm="reward")
    if kind not in ("reward", "all") and reward_version is None:
        raise NotEnoughData("No active reward model: run `manage.py train reward` first.")
    snapshot = feedback_snapshot(
        base=base, rows=rows, seed=run.seed, learner_raters=learner_raters_of(reward_version, rows)
    )
    reporter.log(
        f"Feedback snapshot: {len(rows)} judgments; base v{base.version}; users {snapshot.split.describe()}"
    )
    versions: list[ModelVersion] = []
    if reward_version is None:
        reward_version, reward_model, _ = stage_reward(
            reporter=reporter,
            snapshot=snapshot,
            base=base,
            span=(2, 30 if kind == "all" else 100),
            config=configs.get("reward"),
        )
        versions.append(reward_version)
    else:
        arrays, _ = load_artifact(Path(settings.ARTIFACTS_DIR) / reward_version.artifact)
        arrays.pop("item_ids", None)
        reward_model = NumpyRewardModel.from_arrays(arrays)
    spans = {
        "all": {"ppo": (30, 60), "qlearning": (60, 80)},
        "ppo": {"ppo": (5, 80)},
        "qlearning": {"qlearning": (5, 80)},
    }
    ppo_config = policy_config("ppo", run, configs.get("ppo"))
    candidates = [
        stage_policy(
            algorithm=algorithm,
            reporter=reporter,
            snapshot=snapshot,
            base=base,
            reward_model=reward_model,
            span=span,
            ref_temperature=ppo_config.ref_temperature,
            config=configs.get(algorithm),
            reward_version_id=reward_version.pk,
        )
        for algorithm, span in spans.get(kind, {}).items()
    ]
    if kind == "all":
        candidates += [
            reranker_version_register(
                reranker=reranker,
                base=base,
                run=run,
                reward_version=reward_version,
                data_snapshot={"users": snapshot.split.describe()},
            )
            for reranker in rerankers(
                snapshot=snapshot, reward_model=reward_model, ppo_config=ppo_config, seed=run.seed
            )
        ]
    if candidates:
        reporter.progress(step="Judge reward model", percent=82, force=True)
        judge = train_judge(
            snapshot=snapshot,
            records=snapshot.records("judge"),
            config=settings_apply(configs.get("reward") or reward_config(run.seed), run.config.get("reward")),
            seed=run.seed + 7,
        )
        reporter.log(
            f"Judge: {judge.n_train if judge else 0} comparisons of judge users; accuracy on the gate "
            f"users' comparisons {judge.accuracy if judge else 'n/a'} ({judge.n_strict if judge else 0} strict)"
        )
        reporter.progress(step="Gate", percent=90, force=True)
        stage_gate(
            reporter=reporter,
            snapshot=snapshot,
            base=base,
            candidates=candidates,
            judge=judge,
            seed=run.seed,
            learner=credentials_on_gate_users(snapshot=snapshot, model=reward_model),
        )
        versions += [candidate.version for candidate in candidates]
    reporter.progress(step="RLHF done", percent=99, force=True)
    return versions


def new_feedback_since_last_run() -> int:
    """Judgments and list comments created since the last successful RLHF run started."""
    from .models import TrainingRun

    last = (
        TrainingRun.objects.filter(status=TrainingRun.Status.SUCCEEDED, kind__in=["all", "reward"])
        .order_by("-started_at")
        .values_list("started_at", flat=True)
        .first()
    )
    judgments = Comparison.objects.all()
    comments = ListFeedback.objects.all()
    if last is not None:
        judgments = judgments.filter(created_at__gt=last)
        comments = comments.filter(created_at__gt=last)
    return judgments.count() + comments.count()
