"""The RLHF stages of the pipeline: reward model, PPO and Q-learning from the feedback in the database.

    snapshot feedback -> reward model (Bradley-Terry + rating pairs) -> PPO / Q-learning against it
    -> evaluate on held-out comparisons and users -> register candidates -> gate -> activate

Comparisons whose task id is divisible by ``HELDOUT_MODULUS`` are held out: they never train the
reward model and are what the gate measures its accuracy on.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
from django.conf import settings

from feedback.models import Comparison, ListFeedback
from training.ml.artifacts import write_artifact
from training.ml.data import History
from training.ml.dqn import DQNConfig, train_dqn
from training.ml.overrides import settings_apply
from training.ml.policy import NumpySlatePolicy
from training.ml.ppo import PPOConfig, train_ppo
from training.ml.reward_model import (
    NumpyRewardModel,
    RewardModelConfig,
    evaluate_reward_model,
    train_reward_model,
)
from training.ml.rlhf import (
    OUTCOME_OF_CHOICE,
    GateConfig,
    SlateSource,
    World,
    bootstrap_win_rate,
    build_world,
    head_to_head,
    kl_from_reference,
    promotion_gate,
)

from . import registry
from .exceptions import NotEnoughData
from .models import ModelVersion
from .runs import RunReporter, json_safe
from .serving import LoadedModel
from .serving import models as served_models
from .snapshots import movies_frame, ratings_frame

HELDOUT_MODULUS = 5
MAX_CONTEXT_USERS = 1500  # raters sampled for rating pairs and RL episodes, besides comparison contexts
GATE_USERS = 200  # held-out users the win rate is measured on
TIE_MARGIN = 1e-3  # list-score difference under which the judge calls a tie


def gate_config() -> GateConfig:
    return GateConfig(
        min_reward_accuracy=getattr(settings, "GATE_MIN_REWARD_ACCURACY", 0.6),
        max_kl=getattr(settings, "GATE_MAX_KL", 10.0),
        min_heldout_comparisons=getattr(settings, "GATE_MIN_HELDOUT_COMPARISONS", 10),
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
            "task__context_rater_id",
            "task__left_items",
            "task__right_items",
        ).order_by("id")
    )


def load_world(*, base: LoadedModel, rows: list[dict], seed: int) -> World:
    """Contexts for every comparison's context rater plus a sample of raters, over the base catalogue."""
    ratings = ratings_frame()
    context_raters = {row["task__context_rater_id"] for row in rows}
    rng = np.random.default_rng(seed)
    counts = ratings.groupby("user").size()
    eligible = counts.index[counts >= 5].to_numpy()
    sampled = (
        set(rng.choice(eligible, size=min(MAX_CONTEXT_USERS, len(eligible)), replace=False).tolist())
        if len(eligible)
        else set()
    )
    keep = ratings["user"].isin(context_raters | sampled)
    ratings = ratings[keep]
    index, known = base.indices(ratings["item"].to_numpy(np.int64))
    ratings = ratings[known].assign(idx=index).sort_values(["user", "timestamp"], kind="stable")
    histories: dict[int, History] = {}
    for user, group in ratings.groupby("user", sort=False):
        histories[int(user)] = History(
            group["idx"].to_numpy(), group["rating"].to_numpy(), group["timestamp"].to_numpy()
        )
    for rater in context_raters:
        histories.setdefault(int(rater), History.empty())
    signals: dict[int, list[dict]] = {}
    for row in rows:
        signals.setdefault(row["task__context_rater_id"], []).extend(row["signals"] or [])
    for rater_id, batch in ListFeedback.objects.filter(user__rater__id__in=list(histories)).values_list(
        "user__rater__id", "signals"
    ):
        signals.setdefault(rater_id, []).extend(batch or [])
    movies = movies_frame().set_index("item").reindex(base.item_ids)
    genres = [list(g) if isinstance(g, list) else [] for g in movies["genres"]]
    years = movies["year"].to_numpy(dtype=np.float64, na_value=np.nan)
    popularity = np.bincount(index, minlength=len(base.item_ids)).astype(np.float64)
    return build_world(
        recommender=base.scorer,
        histories=histories,
        genres=genres,
        years=years,
        popularity=popularity,
        signals=signals,
    )


def reward_comparisons(rows: list[dict], base: LoadedModel) -> tuple[list[dict], list[dict]]:
    """(train, held-out) comparisons in the reward model's format; lists mapped to catalogue indices."""
    train, heldout = [], []
    for row in rows:
        left, _ = base.indices(np.asarray(row["task__left_items"], np.int64))
        right, _ = base.indices(np.asarray(row["task__right_items"], np.int64))
        if not len(left) or not len(right):
            continue
        record = {
            "user": row["task__context_rater_id"],
            "slate_a": left,
            "slate_b": right,
            "outcome": OUTCOME_OF_CHOICE[row["choice"]],
        }
        (heldout if row["task_id"] % HELDOUT_MODULUS == 0 else train).append(record)
    return train, heldout


def _artifact_name(algorithm: str, number: int, run_id: int) -> str:
    return f"{algorithm}-v{number}-run{run_id}"


def stage_reward(
    *,
    reporter: RunReporter,
    world: World,
    base: LoadedModel,
    train,
    heldout,
    span,
    config: RewardModelConfig | None = None,
) -> tuple[ModelVersion, NumpyRewardModel, dict]:
    run = reporter.run
    start, end = span
    config = settings_apply(config or RewardModelConfig(seed=run.seed), run.config.get("reward"))
    reporter.log(
        f"Reward model: {len(train)} training and {len(heldout)} held-out comparisons, {len(world.contexts)} users"
    )

    def on_epoch(epoch: int, metrics: dict) -> None:
        reporter.progress(
            step=f"Reward model epoch {epoch}/{config.epochs}",
            percent=start + (end - start) * epoch / config.epochs,
        )
        reporter.record_history("reward_model", {"epoch": epoch, **{k: float(v) for k, v in metrics.items()}})

    result = train_reward_model(train, None, world.contexts, world.item_features, config, progress=on_epoch)
    model = result.numpy_model()
    evaluation = evaluate_reward_model(model, heldout, world.contexts) if heldout else {}
    metrics = {f"train/{k}": float(v) for k, v in result.final_metrics.items()}
    metrics.update({f"heldout/{k}": float(v) for k, v in evaluation.items()})
    metrics["heldout/n"] = len(heldout)
    accuracy = evaluation.get("accuracy")
    reporter.log(f"Reward model held-out accuracy: {accuracy if accuracy is not None else 'n/a'}")
    number = registry.next_version_number(algorithm="reward")
    name = _artifact_name("reward", number, run.pk)
    write_artifact(
        Path(settings.ARTIFACTS_DIR),
        name,
        {**model.export_arrays(), "item_ids": base.item_ids},
        {
            "kind": "reward",
            "algorithm": "reward",
            "version": number,
            "base_version_id": base.version_id,
            "metrics": metrics,
        },
    )
    version = registry.model_version_register(
        algorithm="reward",
        version=number,
        artifact=name,
        metrics=metrics,
        config={**asdict(config), "base_version_id": base.version_id},
        seed=config.seed,
        data_snapshot={
            "comparisons": len(train) + len(heldout),
            "heldout": len(heldout),
            "users": len(world.contexts),
        },
        run=run,
    )
    gate = gate_config()
    trusted = (
        accuracy is not None
        and len(heldout) >= gate.min_heldout_comparisons
        and accuracy >= gate.min_reward_accuracy
    )
    report = {
        "passed": trusted,
        "reward_accuracy": accuracy,
        "heldout_comparisons": len(heldout),
        "reason": "held-out accuracy above the threshold"
        if trusted
        else "not enough held-out evidence or accuracy below the threshold",
    }
    version.gate = json_safe(report)
    version.save(update_fields=["gate"])
    if trusted:
        registry.model_version_activate(version=version, actor=run.created_by, note=report["reason"])
    else:
        registry.model_version_reject(version=version, gate=report)
    return version, model, metrics


def _split_users(world: World, seed: int) -> tuple[list, list]:
    keys = [key for key, ctx in world.contexts.items() if len(ctx.history) >= 5]
    rng = np.random.default_rng(seed)
    rng.shuffle(keys)
    n_gate = min(GATE_USERS, max(1, len(keys) // 5))
    return keys[n_gate:], keys[:n_gate]


def _incumbent(world: World, base: LoadedModel) -> tuple[SlateSource, str]:
    """The policy end users get now: the active PPO or Q-learning policy, else the recommender."""
    loaded = served_models.served()
    if (
        loaded is not None
        and loaded.algorithm in ("ppo", "qlearning")
        and np.array_equal(loaded.item_ids, base.item_ids)
    ):
        name = f"{loaded.algorithm} v{loaded.version}"
        return SlateSource(name, loaded.scorer.policy), name
    return SlateSource(f"base v{base.version}"), f"base v{base.version}"


def stage_policy(
    *,
    algorithm: str,
    reporter: RunReporter,
    world: World,
    base: LoadedModel,
    reward_model: NumpyRewardModel,
    reward_accuracy: float | None,
    n_heldout: int,
    span,
    config: PPOConfig | DQNConfig | None = None,
) -> ModelVersion:
    run = reporter.run
    start, end = span
    train_users, gate_users = _split_users(world, run.seed)
    if len(train_users) < 8:
        raise NotEnoughData("Fewer than 8 raters with five ratings: not enough users to train a policy.")
    contexts = [world.context(key) for key in train_users]

    if algorithm == "ppo":
        config = settings_apply(config or PPOConfig(seed=run.seed + 1), run.config.get("ppo"))
        total = config.iterations
    else:
        config = settings_apply(config or DQNConfig(seed=run.seed + 1), run.config.get("qlearning"))
        total = config.total_steps
    counter = {"n": 0}

    def on_iteration(metrics: dict) -> None:
        counter["n"] += 1
        step = metrics.get("iteration", metrics.get("global_step", counter["n"]))
        reporter.progress(
            step=f"{algorithm} {int(step)}/{total}",
            percent=start + (end - start) * 0.85 * min(1.0, float(step) / total),
        )
        reporter.record_history(
            algorithm, {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
        )

    reporter.log(f"{algorithm}: {len(contexts)} training users, {len(gate_users)} held-out users")
    trainer = train_ppo if algorithm == "ppo" else train_dqn
    result = trainer(
        contexts, world.recommender, reward_model, world.item_features.matrix, config, progress=on_iteration
    )
    policy = NumpySlatePolicy.from_arrays(result.arrays, kind=algorithm)

    reporter.progress(step=f"{algorithm}: gate", percent=start + (end - start) * 0.9, force=True)
    gate_contexts = [world.context(key) for key in gate_users]
    kl = kl_from_reference(policy, world, gate_contexts[:50], seed=run.seed)
    incumbent, incumbent_label = _incumbent(world, base)

    def judge(key, a, b) -> float:
        ctx = world.context(key)
        diff = reward_model.list_score(ctx, a) - reward_model.list_score(ctx, b)
        return 0.5 if abs(diff) <= TIE_MARGIN else float(diff > 0)

    outcomes = head_to_head(world, gate_users, SlateSource(algorithm, policy), incumbent, judge)
    win = bootstrap_win_rate(outcomes, seed=run.seed)
    report = promotion_gate(
        reward_accuracy=reward_accuracy, n_heldout=n_heldout, kl=kl, win=win, config=gate_config()
    )
    gate = {**report.as_dict(), "incumbent": incumbent_label, "judge": "reward model on held-out users"}
    metrics = {
        **{k: float(v) for k, v in result.metrics.items() if isinstance(v, (int, float))},
        "gate/kl": kl,
        "gate/win_rate": win["win_rate"],
    }
    reporter.log(f"{algorithm} gate vs {incumbent_label}: {report.reason}")

    number = registry.next_version_number(algorithm=algorithm)
    name = _artifact_name(algorithm, number, run.pk)
    write_artifact(
        Path(settings.ARTIFACTS_DIR),
        name,
        {**result.arrays, "item_ids": base.item_ids, "item_features": world.item_features.matrix},
        {
            "kind": algorithm,
            "algorithm": algorithm,
            "version": number,
            "base_version_id": base.version_id,
            "signal_dim": int(world.item_features.signal_dim),
            "metrics": metrics,
        },
    )
    version = registry.model_version_register(
        algorithm=algorithm,
        version=number,
        artifact=name,
        metrics=metrics,
        config={**result.config, "base_version_id": base.version_id},
        seed=run.seed + 1,
        data_snapshot={"train_users": len(train_users), "gate_users": len(gate_users)},
        run=run,
    )
    version.gate = json_safe(gate)
    version.save(update_fields=["gate"])
    if report.passed:
        registry.model_version_activate(
            version=version, actor=run.created_by, action="promoted", note="passed the gate"
        )
    else:
        registry.model_version_reject(version=version, gate=gate)
    reporter.progress(step=f"{algorithm} done", percent=end, force=True)
    return version


def run_rlhf_stage(*, kind: str, reporter: RunReporter, configs: dict | None = None) -> list[ModelVersion]:
    """Run `reward`, `ppo`, `qlearning` or `all` (reward model, then both policies against it).

    ``configs`` may override the hyperparameters per stage: ``{"reward": RewardModelConfig(...),
    "ppo": PPOConfig(...), "qlearning": DQNConfig(...)}``.
    """
    configs = configs or {}
    run = reporter.run
    reporter.progress(step="Snapshot of feedback", percent=1, force=True)
    base = _base()
    rows = comparison_rows()
    world = load_world(base=base, rows=rows, seed=run.seed)
    train, heldout = reward_comparisons(rows, base)
    reporter.log(f"Feedback snapshot: {len(rows)} judgments; base v{base.version}")
    versions: list[ModelVersion] = []
    if kind in ("reward", "all"):
        reward_version, reward_model, metrics = stage_reward(
            reporter=reporter,
            world=world,
            base=base,
            train=train,
            heldout=heldout,
            span=(2, 35 if kind == "all" else 100),
            config=configs.get("reward"),
        )
        versions.append(reward_version)
        accuracy = metrics.get("heldout/accuracy")
    else:
        reward_version = registry.active_version(algorithm="reward")
        if reward_version is None:
            raise NotEnoughData("No active reward model: run `manage.py train reward` first.")
        from training.ml.artifacts import load_artifact

        arrays, _ = load_artifact(Path(settings.ARTIFACTS_DIR) / reward_version.artifact)
        arrays.pop("item_ids", None)
        reward_model = NumpyRewardModel.from_arrays(arrays)
        accuracy = reward_version.metrics.get("heldout/accuracy")
    spans = {
        "all": {"ppo": (35, 75), "qlearning": (75, 99)},
        "ppo": {"ppo": (5, 99)},
        "qlearning": {"qlearning": (5, 99)},
    }
    for algorithm, span in spans.get(kind, {}).items():
        versions.append(
            stage_policy(
                algorithm=algorithm,
                reporter=reporter,
                world=world,
                base=base,
                reward_model=reward_model,
                reward_accuracy=accuracy,
                n_heldout=len(heldout),
                span=span,
                config=configs.get(algorithm),
            )
        )
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
