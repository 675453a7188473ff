"""Reward over-optimisation, measured (Gao, Schulman and Hilton 2023): gold and proxy against sqrt(KL).

After the closed loop's rounds, the policy is pushed further and further from the reference:

- PPO with the adaptive KL controller aiming at ever larger targets, and with fixed coefficients
  down to no penalty at all;
- best-of-n for n = 1 to 64 (its KL is ``log n - (n - 1) / n``).

For each, on the **validation users** (nothing trained on them): the *proxy* is the learner's own
reward model's list score and the *gold* is the annotators' true taste (the feedback-period oracle),
both as the mean paired difference to the recommender's list. The proxy keeps rising with KL; where
the gold stops rising (or falls) is over-optimisation. The KL target is chosen where the gold peaks,
on validation users only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.ml.experiment import ClosedLoop, ExperimentConfig, _json_default, policy_lists, seed_interval
from training.ml.metrics import bootstrap_mean
from training.ml.policy import NumpySlatePolicy
from training.ml.ppo import train_ppo
from training.ml.rerankers import BestOfN, best_of_n_kl
from training.ml.rlhf import SlateSource, kl_from_reference


@dataclass
class SweepConfig:
    """How far the sweep pushes each method."""

    kl_targets: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)  # PPO's adaptive-controller targets
    kl_coefs: tuple[float, ...] = (0.0,)  # fixed KL coefficients (0: no penalty at all)
    best_of_n: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)  # best-of-n sample counts


def measure(loop: ClosedLoop, source: SlateSource, reference: dict[int, np.ndarray]) -> dict[str, Any]:
    """Gold (annotators' taste) and proxy (learner's reward model) gains over the recommender."""
    users, K = loop.validation_users, loop.config.slate_size
    lists = policy_lists(source, loop.world, loop.world.contexts, users, K)
    contexts = loop.world.contexts
    gold = [
        loop.feedback_judge.quality(u, lists[u]) - loop.feedback_judge.quality(u, reference[u]) for u in users
    ]
    proxy = [
        loop.reward_model.list_score(contexts[u], lists[u])
        - loop.reward_model.list_score(contexts[u], reference[u])
        for u in users
    ]
    rounds, seed = loop.config.bootstrap_rounds, loop.config.seed
    return {
        "gold": bootstrap_mean(gold, rounds=rounds, seed=seed),
        "proxy": bootstrap_mean(proxy, rounds=rounds, seed=seed),
    }


def sweep(
    loop: ClosedLoop, config: SweepConfig, progress: Callable[[str], None] | None = None
) -> list[dict[str, Any]]:
    """Every point of the curve for the loop's current reward model (one seed)."""
    K = loop.config.slate_size
    reference = policy_lists(
        SlateSource("recommender"), loop.world, loop.world.contexts, loop.validation_users, K
    )
    kl_contexts = [loop.world.contexts[u] for u in loop.validation_users[: loop.config.kl_users]]
    points = []
    settings: list[tuple[str, float | None, float | None]] = [("ppo", t, None) for t in config.kl_targets]
    settings += [("ppo_fixed", None, c) for c in config.kl_coefs]
    for method, target, coef in settings:
        ppo_config = replace(loop.config.ppo, target_kl_for_controller=target)
        if coef is not None:
            ppo_config = replace(ppo_config, init_kl_coef=coef)
        started = time.perf_counter()
        result = train_ppo(
            loop.policy_users(),
            loop.recommender,
            loop.reward_model,
            loop.world.item_features.matrix,
            ppo_config,
        )
        policy = NumpySlatePolicy.from_arrays(result.arrays, kind="ppo")
        kl = kl_from_reference(
            policy,
            loop.world,
            kl_contexts,
            k=K,
            samples=loop.config.kl_samples,
            ref_temperature=ppo_config.ref_temperature,
            seed=loop.config.seed,
        )
        point = {
            "method": method,
            "setting": target if coef is None else coef,
            "kl": kl,
            "train_kl": float(result.metrics.get("objective/kl", np.nan)),
            "seconds": time.perf_counter() - started,
            **measure(loop, SlateSource("ppo", policy), reference),
        }
        points.append(point)
        if progress:
            progress(f"{method} {point['setting']}: KL {kl:.2f}, gold {point['gold']['mean']:+.4f}")
    for n in config.best_of_n:
        source = SlateSource(
            "best_of_n",
            BestOfN(
                loop.reward_model,
                n,
                loop.config.ppo.ref_temperature,
                loop.config.ppo.n_candidates,
                loop.config.seed,
            ),
        )
        point = {
            "method": "best_of_n",
            "setting": n,
            "kl": best_of_n_kl(n),
            **measure(loop, source, reference),
        }
        points.append(point)
        if progress:
            progress(f"best_of_n {n}: KL {point['kl']:.2f}, gold {point['gold']['mean']:+.4f}")
    return points


def run_overoptimisation(
    ratings: pd.DataFrame,
    movies: pd.DataFrame,
    config: ExperimentConfig,
    sweep_config: SweepConfig,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The loop's rounds (comparisons, reward model, PPO), then the sweep on its last reward model."""
    started = time.perf_counter()
    loop = ClosedLoop.prepare(ratings, movies, config)
    for round_number in range(1, config.rounds + 1):
        loop.collect(config.comparisons_per_round, round_number)
        loop.retrain_reward_model()
        if round_number < config.rounds:
            loop.retrain_ppo()  # the next round's on-policy comparisons
        if progress:
            progress(f"round {round_number}: {len(loop.log)} comparisons")
    points = sweep(loop, sweep_config, progress)
    return {
        "seed": loop.config.seed,
        "config": asdict(loop.config),
        "sweep": asdict(sweep_config),
        "points": points,
        "seconds": time.perf_counter() - started,
    }


def aggregate(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (method, setting): across-seed mean KL, gold and proxy with 95% intervals over seeds."""
    keys = [(p["method"], p["setting"]) for p in runs[0]["points"]]
    rows = []
    for method, setting in keys:
        points = [
            p for run in runs for p in run["points"] if (p["method"], p["setting"]) == (method, setting)
        ]
        rows.append(
            {
                "method": method,
                "setting": setting,
                "kl": seed_interval([p["kl"] for p in points]),
                "gold": seed_interval([p["gold"]["mean"] for p in points]),
                "proxy": seed_interval([p["proxy"]["mean"] for p in points]),
            }
        )
    return rows


def choose_kl_target(rows: Sequence[dict[str, Any]], max_kl: float = float("inf")) -> float:
    """The adaptive PPO target with the highest across-seed mean gold on validation users.

    Only targets whose policies stay within ``max_kl`` (the gate's bound) on average are eligible:
    the gate would refuse the others.
    """
    ppo = [r for r in rows if r["method"] == "ppo" and r["kl"]["mean"] <= max_kl] or [
        min((r for r in rows if r["method"] == "ppo"), key=lambda r: r["kl"]["mean"])
    ]
    return float(max(ppo, key=lambda r: r["gold"]["mean"])["setting"])


def table(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| method | setting | KL (nats / list) | sqrt KL | gold: oracle quality - rec. [95% CI over seeds] | "
        "proxy: reward model - rec. [95% CI] |",
        "|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        setting = "no penalty" if r["method"] == "ppo_fixed" and r["setting"] == 0 else r["setting"]
        gold, proxy = r["gold"], r["proxy"]
        lines.append(
            f"| {r['method']} | {setting} | {r['kl']['mean']:.2f} | {np.sqrt(max(r['kl']['mean'], 0)):.2f} | "
            f"{gold['mean']:+.4f} [{gold['low']:+.4f}, {gold['high']:+.4f}] | "
            f"{proxy['mean']:+.4f} [{proxy['low']:+.4f}, {proxy['high']:+.4f}] |"
        )
    return "\n".join(lines) + "\n"


def plot(runs: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Gold and proxy against sqrt(KL): each seed faint, the across-seed mean bold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"ppo": "tab:blue", "ppo_fixed": "tab:cyan", "best_of_n": "tab:green"}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), constrained_layout=True)
    for ax, key, title in (
        (axes[0], "gold", "Gold: annotators' taste (validation users)"),
        (axes[1], "proxy", "Proxy: the learner's reward model"),
    ):
        for method in ("ppo", "best_of_n"):
            for run in runs:
                pts = sorted((p for p in run["points"] if p["method"] == method), key=lambda p: p["kl"])
                ax.plot(
                    [np.sqrt(max(p["kl"], 0)) for p in pts],
                    [p[key]["mean"] for p in pts],
                    "-",
                    color=colours[method],
                    alpha=0.2,
                    lw=0.8,
                )
            mean = sorted((r for r in rows if r["method"] == method), key=lambda r: r["kl"]["mean"])
            ax.plot(
                [np.sqrt(max(r["kl"]["mean"], 0)) for r in mean],
                [r[key]["mean"] for r in mean],
                "o-",
                color=colours[method],
                label=f"{'PPO (KL target)' if method == 'ppo' else 'best-of-n'}",
            )
        fixed = [r for r in rows if r["method"] == "ppo_fixed"]
        for r in fixed:
            ax.plot(
                np.sqrt(max(r["kl"]["mean"], 0)),
                r[key]["mean"],
                "s",
                color=colours["ppo_fixed"],
                label=f"PPO, fixed KL coef. {r['setting']}",
            )
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set(
            title=title,
            xlabel="sqrt(KL from the reference), nats^0.5",
            ylabel="mean list score - recommender's",
        )
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(
    runs: Sequence[dict[str, Any]],
    out_dir: str | Path,
    command: str | None = None,
    max_kl: float = float("inf"),
) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = aggregate(runs)
    chosen = choose_kl_target(rows, max_kl)
    document = {
        "command": command,
        "chosen_kl_target": chosen,
        "max_kl": max_kl,
        "rows": rows,
        "runs": list(runs),
    }
    paths = {"results": out / "results.json", "table": out / "table.md", "plot": out / "plot.png"}
    paths["results"].write_text(json.dumps(document, indent=2, default=_json_default) + "\n")
    paths["table"].write_text(
        table(rows)
        + f"\nKL target with the highest validation gold among those within the gate's {max_kl:g} nats: "
        f"**{chosen:g}** nats per list.\n"
    )
    plot(runs, rows, paths["plot"])
    return paths
