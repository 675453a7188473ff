"""Label efficiency of active comparisons: how many labels the reward model needs to reach random pairs' accuracy.

Per seed, from the closed-loop experiment's preparation (periods, recommender, annotators, users):

1. a fixed set of validation comparisons: validation users only, round 1's kind (two samples of the
   recommender at the exploration temperature), judged by the annotators. Nothing of these users
   trains anything; every accuracy below is on these labels.
2. a pool of candidate pairs of the same kind for the training users, each judged once up front
   (annotator, noise, reason), so both arms see the same label for the same pair.
3. random arm: label the pool in a random order; train the reward model at each budget.
4. active arm (one per active share): the same first batch as the random arm, then batch after
   batch chosen by ``active.select_pairs`` (BALD under the last-layer Laplace posterior of the
   reward model trained on the labels so far), retraining after each batch.

At every budget the reward model is trained from scratch exactly as the experiment trains it
(``experiment._train_reward``) and scored on the validation comparisons: accuracy on the strict
labels and normalised accuracy ``(accuracy - 0.5) / (label ceiling - 0.5)``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.ml.active import PosteriorConfig, PosteriorRewardModel, fit_posterior, select_pairs
from training.ml.experiment import (
    ClosedLoop,
    ExperimentConfig,
    FeedbackLog,
    _json_default,
    _train_reward,
    comparison_contexts,
    loop_contexts,
    reward_rows,
    seed_interval,
    simulate_comparisons,
)
from training.ml.reward_model import Comparison
from training.ml.rlhf import SlateSource


@dataclass
class LabelEfficiencyConfig:
    """What one label-efficiency run measures."""

    budgets: tuple[int, ...] = (250, 500, 750, 1000, 1250, 1500, 1750, 2000)  # training labels
    seed_batch: int = 250  # random labels the active arm starts from (= the random arm's first ones)
    batch: int = 250  # labels chosen per active step (the model is retrained after each)
    active_shares: tuple[float, ...] = (0.5, 1.0)  # COMPARISON_ACTIVE_SHARE values measured
    pool: int = 6000  # candidate pairs of training users (each labelled at most once)
    validation: int = 1000  # validation users' comparisons the accuracy is measured on
    posterior: PosteriorConfig = field(default_factory=PosteriorConfig)


@dataclass
class _Judged:
    """One pool pair and its judgement, made once and appended to any arm's log."""

    user: int
    left: np.ndarray
    right: np.ndarray
    outcome: str
    reason: str | None
    signals: list[dict[str, Any]]
    oracle_prefers_a: float
    taste_prefers_a: float


def _judge_pool(loop: ClosedLoop, n: int, rng: np.random.Generator) -> list[_Judged]:
    """``n`` round-1 pairs for training users, each judged by a random annotator."""
    config, world = loop.config, loop.world
    users = np.array(sorted(loop.reward_users), np.int64)
    reference = SlateSource("recommender")
    judge = loop.feedback_judge
    pool = []
    for _ in range(n):
        user = int(rng.choice(users))
        ctx = world.context(user)
        left, _ = reference.sample(world, ctx, config.slate_size, rng, config.exploration_temperature)
        right, _ = reference.sample(world, ctx, config.slate_size, rng, config.exploration_temperature)
        annotator = loop.annotators[int(rng.integers(len(loop.annotators)))]
        judgement = annotator.compare(user, left, right)
        quality_gap = judge.quality(user, left) - judge.quality(user, right)
        taste_gap = judge.taste_quality(user, left) - judge.taste_quality(user, right)
        found = (
            [s.as_dict() for s in loop.analyzer.analyze(judgement.reason).signals] if judgement.reason else []
        )
        pool.append(
            _Judged(
                user=user,
                left=np.asarray(left, np.int64),
                right=np.asarray(right, np.int64),
                outcome=judgement.outcome,
                reason=judgement.reason,
                signals=found,
                oracle_prefers_a=0.5 if quality_gap == 0 else float(quality_gap > 0),
                taste_prefers_a=0.5 if taste_gap == 0 else float(taste_gap > 0),
            )
        )
    return pool


def _copy_log(log: FeedbackLog) -> FeedbackLog:
    return FeedbackLog(
        comparisons=list(log.comparisons),
        users=list(log.users),
        rounds=list(log.rounds),
        kinds=list(log.kinds),
        oracle_prefers_a=list(log.oracle_prefers_a),
        taste_prefers_a=list(log.taste_prefers_a),
        prior_signals=list(log.prior_signals),
        new_signals=list(log.new_signals),
        reasons=list(log.reasons),
        signals={user: list(s) for user, s in log.signals.items()},
    )


def _append(log: FeedbackLog, judged: _Judged) -> None:
    """Add a judged pool pair to ``log`` as ``simulate_comparisons`` would have."""
    user_signals = log.signals.setdefault(judged.user, [])
    log.comparisons.append(
        Comparison(
            user=(judged.user, len(log)), slate_a=judged.left, slate_b=judged.right, outcome=judged.outcome
        )
    )
    log.users.append(judged.user)
    log.rounds.append(1)
    log.kinds.append("recommender vs recommender")
    log.oracle_prefers_a.append(judged.oracle_prefers_a)
    log.taste_prefers_a.append(judged.taste_prefers_a)
    log.prior_signals.append(len(user_signals))
    log.reasons.append(judged.reason)
    log.new_signals.append(len(judged.signals))
    user_signals.extend(judged.signals)


class _Arm:
    """One arm's labels so far and the reward model trained on them."""

    def __init__(self, loop: ClosedLoop, validation_log: FeedbackLog) -> None:
        self.loop = loop
        self.log = _copy_log(validation_log)
        self.labelled: list[int] = []  # pool positions, in labelling order
        self.model = None
        self.seconds = 0.0

    def add(self, pool: Sequence[_Judged], positions: Sequence[int]) -> None:
        for position in positions:
            _append(self.log, pool[int(position)])
            self.labelled.append(int(position))

    def train(self) -> dict[str, Any]:
        loop = self.loop
        contexts = loop_contexts(loop.world, loop.train_histories, self.log.signals)
        model, metrics, seconds = _train_reward(
            self.log,
            loop.world,
            loop.train_histories,
            contexts,
            loop.reward_users,
            loop.heldout_users,
            loop.config,
            loop.list_attributes if loop.config.reward.set_features else None,
        )
        self.model, self.seconds = model, self.seconds + seconds
        return {
            "labels": len(self.labelled),
            "accuracy": metrics["heldout_accuracy"],
            "normalised": metrics["heldout_normalised"],
            "label_ceiling": metrics["heldout_label_ceiling"],
            "heldout_n_strict": metrics["heldout_n_strict"],
            "train_n_comparisons": metrics["train_n_comparisons"],
        }

    def disagreement(
        self, pool: Sequence[_Judged], positions: np.ndarray, posterior: PosteriorConfig
    ) -> np.ndarray:
        """BALD of each pool pair at ``positions`` under the current model's last-layer posterior."""
        loop, log = self.loop, self.log
        train_rows, _, _ = reward_rows(log, loop.heldout_users, loop.reward_users)
        rows = [log.comparisons[j] for j in train_rows]
        contexts = comparison_contexts(loop.world, loop.train_histories, log, train_rows)
        arrays = {**self.model.export_arrays(), **fit_posterior(self.model, rows, contexts, posterior)}
        scorer = PosteriorRewardModel.from_arrays(arrays)
        current = loop_contexts(loop.world, {u: loop.train_histories[u] for u in log.signals}, log.signals)
        scores = np.zeros(len(positions))
        by_user: dict[int, list[int]] = {}
        for j, position in enumerate(positions):
            by_user.setdefault(pool[int(position)].user, []).append(j)
        for user, js in by_user.items():
            ctx = current.get(user) or loop.world.context(user)
            left = np.stack([pool[int(positions[j])].left for j in js])
            right = np.stack([pool[int(positions[j])].right for j in js])
            scores[js] = scorer.disagreement(ctx, left, right)
        return scores


def run_seed(
    ratings: pd.DataFrame,
    movies: pd.DataFrame,
    config: ExperimentConfig,
    efficiency: LabelEfficiencyConfig,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Both arms for one seed: accuracy at every budget."""
    say = progress or (lambda line: None)
    started = time.perf_counter()
    config = replace(config, seen_heldout_fraction=0.0)  # every training user's label trains
    loop = ClosedLoop.prepare(ratings, movies, config)
    loop.refresh_contexts()
    say(f"prepared in {time.perf_counter() - started:.0f} s")
    rng = np.random.default_rng([loop.config.seed, 15])
    validation_log = FeedbackLog()
    simulate_comparisons(
        log=validation_log,
        n=efficiency.validation,
        round_number=1,
        world=loop.world,
        users=np.array(sorted(loop.heldout_users), np.int64),
        annotators=loop.annotators,
        analyzer=loop.analyzer,
        ppo=None,
        config=loop.config,
        rng=rng,
        judge=loop.feedback_judge,
    )
    pool = _judge_pool(loop, efficiency.pool, rng)
    order = rng.permutation(len(pool))
    budgets = sorted(efficiency.budgets)
    say(f"{len(validation_log)} validation comparisons, {len(pool)} pool pairs judged")

    random_arm = _Arm(loop, validation_log)
    random_rows: list[dict[str, Any]] = []
    seed_metrics, seed_model = None, None
    for budget in budgets:
        random_arm.add(pool, order[len(random_arm.labelled) : budget])
        row = random_arm.train()
        random_rows.append(row)
        if budget == efficiency.seed_batch:
            seed_metrics, seed_model = row, random_arm.model
        say(
            f"random {budget}: accuracy {row['accuracy']:.4f} (normalised {row['normalised']:.3f}) "
            f"at {time.perf_counter() - started:.0f} s"
        )

    active: dict[str, Any] = {}
    for share in efficiency.active_shares:
        arm = _Arm(loop, validation_log)
        arm.add(pool, order[: efficiency.seed_batch])
        arm_rng = np.random.default_rng([loop.config.seed, 15, round(share * 1000)])
        if seed_metrics is not None:  # the same labels as the random arm's first batch: its model
            rows, arm.model = [seed_metrics], seed_model
        else:
            rows = [arm.train()]
        chosen_active = 0
        while len(arm.labelled) < budgets[-1]:
            remaining = np.setdiff1d(np.arange(len(pool)), arm.labelled)
            scores = arm.disagreement(pool, remaining, efficiency.posterior)
            n = min(efficiency.batch, budgets[-1] - len(arm.labelled))
            selection = select_pairs(len(remaining), scores, n, share, arm_rng)
            arm.add(pool, remaining[selection.index])
            chosen_active += int(selection.active.sum())
            row = arm.train()
            row["chosen_actively"] = chosen_active
            rows.append(row)
            say(
                f"active {share:g} {len(arm.labelled)}: accuracy {row['accuracy']:.4f} "
                f"(normalised {row['normalised']:.3f}) at {time.perf_counter() - started:.0f} s"
            )
        active[f"{share:g}"] = rows
    return {
        "seed": loop.config.seed,
        "population": loop.config.population,
        "random": random_rows,
        "active": active,
        "validation_comparisons": len(validation_log),
        "pool": len(pool),
        "training_users": len(loop.reward_users),
        "validation_users": len(loop.heldout_users),
        "seconds": time.perf_counter() - started,
    }


# --- Summary ---------------------------------------------------------------------------------------


def _by_budget(rows: Sequence[dict[str, Any]], metric: str) -> dict[int, float]:
    return {int(row["labels"]): float(row[metric]) for row in rows}


def first_reaching(curve: dict[int, float], target: float) -> int | None:
    """The smallest budget whose value reaches ``target`` (None if none does)."""
    for budget in sorted(curve):
        if np.isfinite(curve[budget]) and curve[budget] >= target:
            return budget
    return None


def summarise(
    runs: Sequence[dict[str, Any]], reference_budget: int = 2000, target_budget: int = 1000
) -> dict[str, Any]:
    """Across-seed means and 95% intervals per budget; where active reaches random's ``reference_budget``."""
    shares = sorted({share for run in runs for share in run["active"]}, key=float)
    summary: dict[str, Any] = {"seeds": [run["seed"] for run in runs], "metrics": {}}
    for metric in ("accuracy", "normalised"):
        random_curves = [_by_budget(run["random"], metric) for run in runs]
        budgets = sorted(random_curves[0])
        entry: dict[str, Any] = {
            "random": {b: seed_interval([c.get(b, np.nan) for c in random_curves]) for b in budgets},
            "active": {},
        }
        reference = [c[reference_budget] for c in random_curves]
        entry["random_reference"] = seed_interval(reference)
        for share in shares:
            curves = [_by_budget(run["active"][share], metric) for run in runs]
            means = {b: seed_interval([c.get(b, np.nan) for c in curves]) for b in budgets}
            mean_curve = {b: means[b]["mean"] for b in budgets}
            per_seed = [first_reaching(c, r) for c, r in zip(curves, reference, strict=True)]
            entry["active"][share] = {
                "by_budget": means,
                "minus_random_same_budget": {
                    b: seed_interval([c[b] - rc[b] for c, rc in zip(curves, random_curves, strict=True)])
                    for b in budgets
                },
                "minus_random_reference": {
                    b: seed_interval([c[b] - r for c, r in zip(curves, reference, strict=True)])
                    for b in budgets
                },
                "reaches_reference_at_mean": first_reaching(mean_curve, entry["random_reference"]["mean"]),
                "reaches_reference_per_seed": per_seed,
                "seeds_reaching_by_target": sum(1 for b in per_seed if b is not None and b <= target_budget),
            }
        summary["metrics"][metric] = entry
    summary["reference_budget"], summary["target_budget"] = reference_budget, target_budget
    return summary


def _cell(d: dict[str, float], spec: str = ".4f") -> str:
    if not np.isfinite(d["mean"]):
        return "n/a"
    if not np.isfinite(d.get("low", np.nan)):
        return f"{d['mean']:{spec}}"
    return f"{d['mean']:{spec}} [{d['low']:{spec}}, {d['high']:{spec}}]"


def summary_markdown(summary: dict[str, Any], command: str, population: str) -> str:
    """The table (accuracy and normalised accuracy per budget) and the verdict lines."""
    lines = [f"Population `{population}`, seeds {summary['seeds']}. Command: `{command}`", ""]
    for metric, title in (("accuracy", "held-out accuracy"), ("normalised", "normalised accuracy")):
        entry = summary["metrics"][metric]
        shares = list(entry["active"])
        header = (
            "| labels | random | "
            + " | ".join(f"active (share {s}) | active {s} - random" for s in shares)
            + " |"
        )
        lines += [f"**{title}** (validation users; mean over seeds [95% across-seed interval])", "", header]
        lines.append("|" + "---|" * (2 + 2 * len(shares)))
        for budget in entry["random"]:
            cells = [_cell(entry["random"][budget])]
            for share in shares:
                cells.append(_cell(entry["active"][share]["by_budget"][budget]))
                cells.append(_cell(entry["active"][share]["minus_random_same_budget"][budget], "+.4f"))
            lines.append(f"| {budget} | " + " | ".join(cells) + " |")
        lines.append("")
        reference = entry["random_reference"]
        for share in shares:
            active = entry["active"][share]
            at_mean = active["reaches_reference_at_mean"]
            target = max(
                [b for b in active["by_budget"] if b <= summary["target_budget"]]
                or [min(active["by_budget"])]
            )
            diff = active["minus_random_reference"][target]
            lines.append(
                f"- share {share}: the across-seed mean reaches random's {summary['reference_budget']}-label "
                f"{metric} ({_cell(reference)}) at {at_mean if at_mean is not None else 'no budget up to 2000'}; "
                f"per seed at {active['reaches_reference_per_seed']} "
                f"({active['seeds_reaching_by_target']} of {len(summary['seeds'])} seeds by {target}); "
                f"active at {target} minus random at {summary['reference_budget']}: {_cell(diff, '+.4f')}."
            )
        lines.append("")
    return "\n".join(lines)


def write(
    runs: Sequence[dict[str, Any]],
    out: str | Path,
    command: str,
    population: str,
    efficiency: LabelEfficiencyConfig,
) -> dict[str, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarise(runs, reference_budget=max(efficiency.budgets))
    results = out / "results.json"
    results.write_text(
        json.dumps(
            {"command": command, "config": asdict(efficiency), "runs": list(runs), "summary": summary},
            indent=1,
            default=_json_default,
        )
    )
    table = out / "summary.md"
    table.write_text(summary_markdown(summary, command, population) + "\n")
    return {"results": results, "summary": table}
