"""Time one full RLHF retrain (reward model + PPO) on 2,000 simulated comparisons of the bundled data.

    .venv/bin/python bench/bench_retrain.py                      # target: < 120 s on 2 shared cores
    .venv/bin/python bench/bench_retrain.py --comparisons 4000   # scaling
    .venv/bin/python bench/bench_retrain.py --product-defaults   # RewardModelConfig() and PPOConfig() as the product runs them
    .venv/bin/python bench/bench_retrain.py --population norms   # norms annotators, the set-aware reward model

Setup (not timed): the experiment's periods, the recommender trained on the train period, and
``--comparisons`` judgements of the simulated annotators (``training.ml.experiment.ClosedLoop``).
Timed: the reward model from scratch (rating pairs included) and PPO from scratch, with the
experiment's default configs. Peak RSS is the whole process's (TensorFlow included). With
``--population norms`` the comparisons come from the norms annotators and the reward model is the
set-aware one (``RewardModelConfig.set_features``, as the experiment trains it for that population);
PPO is trained once, at ``PPOConfig``'s KL target.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.ml.data import read_movielens  # noqa: E402
from training.ml.experiment import ClosedLoop, ExperimentConfig  # noqa: E402
from training.ml.ppo import PPOConfig  # noqa: E402
from training.ml.reward_model import RewardModelConfig  # noqa: E402

TARGET_SECONDS = 120.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / "data" / "ml-latest-small"))
    parser.add_argument("--comparisons", type=int, default=2_000)
    parser.add_argument("--recommender-epochs", type=int, default=None, help="default: RecommenderConfig's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--product-defaults",
        action="store_true",
        help="train with the product's default reward-model and PPO configs instead of the experiment's",
    )
    parser.add_argument(
        "--population",
        choices=("taste", "norms"),
        default="taste",
        help="'norms': list-level annotators and the set-aware reward model (docs/experiment.md)",
    )
    cli = parser.parse_args()

    config = ExperimentConfig(seed=cli.seed, population=cli.population)
    if cli.recommender_epochs is not None:
        config = replace(config, recommender=replace(config.recommender, epochs=cli.recommender_epochs))
    if cli.product_defaults:  # rating pairs, 200 candidates; held-out users still replace the random split
        config = replace(config, reward=RewardModelConfig(validation_fraction=0.0), ppo=PPOConfig())
    ratings, movies = read_movielens(cli.data)
    started = time.perf_counter()
    loop = ClosedLoop.prepare(ratings, movies, config)
    loop.collect(cli.comparisons, round_number=1)
    setup = time.perf_counter() - started
    print(
        f"setup (not timed): recommender {loop.trained.train_seconds:.1f} s, {len(loop.log)} comparisons, "
        f"{setup:.1f} s in all; cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f}"
    )

    reward_metrics, reward_seconds = loop.retrain_reward_model()
    _, ppo_seconds = loop.retrain_ppo()
    total = reward_seconds + ppo_seconds
    print(
        f"reward model: {reward_seconds:.1f} s ({reward_metrics['train_n_comparisons']} comparisons + "
        f"{reward_metrics['train_n_rating_pairs']} rating pairs, {config.reward.epochs} epochs; "
        f"held-out accuracy {reward_metrics['heldout_accuracy']:.3f}; "
        f"set-aware: {'yes' if loop.config.reward.set_features else 'no'})"
    )
    print(
        f"PPO: {ppo_seconds:.1f} s ({config.ppo.iterations} iterations x {config.ppo.users_per_iteration} users, "
        f"{config.ppo.n_candidates} candidates)"
    )
    print(
        f"full retrain: {total:.1f} s (target < {TARGET_SECONDS:.0f} s: {'met' if total < TARGET_SECONDS else 'MISSED'})"
    )
    print(f"peak RSS: {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
