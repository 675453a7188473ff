"""Serving latency of the NumPy slate policy (and, with --train, PPO training time) at MovieLens-small scale.

    .venv/bin/python bench/bench_policy.py            # serving only, random weights
    .venv/bin/python bench/bench_policy.py --train    # also trains PPO: 30 iterations x 256 users x K=10

Uses the synthetic stand-ins of training/tests/ml/test_env.py (a dot-product reference recommender and a
reward model that loves "hidden gems" the reference ranks low), padded to realistic feature widths.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# One BLAS thread, as recsys_site/wsgi.py sets for web workers (must precede the numpy import).
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.ml.env import candidate_set  # noqa: E402
from training.ml.policy import NumpySlatePolicy  # noqa: E402
from training.tests.ml.test_env import make_problem  # noqa: E402

N_ITEMS, DIM, EXTRA_FEATURES, N_CANDIDATES = 9_742, 32, 40, 200


def make_world(n_users: int, seed: int = 0):
    world = make_problem(n_users=n_users, n_items=N_ITEMS, dim=DIM, seed=seed)
    rng = np.random.default_rng(seed)
    extra = rng.random((N_ITEMS, EXTRA_FEATURES)).astype(np.float32)  # genres, year, popularity, tags
    world.item_features = np.concatenate([world.item_features, extra], axis=1)
    for user in world.users:
        user.signals = rng.normal(size=EXTRA_FEATURES).astype(np.float32)
    return world


def timed(fn, repeats: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1e3


def bench_serving(world, arrays) -> None:
    policy = NumpySlatePolicy.from_arrays(arrays, kind="ppo")
    user = world.users[0]
    rng = np.random.default_rng(0)
    args = (user, world.reference, world.item_features)
    retrieval = timed(lambda: candidate_set(world.reference, [user.history], N_CANDIDATES), 50)
    print(f"items={N_ITEMS} features={world.item_features.shape[1]} candidates={N_CANDIDATES}")
    print(f"  reference top-{N_CANDIDATES} retrieval (stand-in recommender): {retrieval:6.2f} ms")
    for k in (10, 20):
        greedy = timed(lambda k=k: policy.recommend(*args, k=k), 50)
        sampled = timed(lambda k=k: policy.sample(*args, k=k, rng=rng), 50)
        slate, _ = policy.sample(*args, k=k, rng=rng)
        logprob = timed(lambda slate=slate: policy.logprob_of_slate(*args, slate), 50)
        print(
            f"  K={k:2d}: recommend {greedy:6.2f} ms | sample {sampled:6.2f} ms | "
            f"logprob_of_slate {logprob:6.2f} ms   (each includes retrieval)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", action="store_true", help="train PPO at full size and report its metrics")
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--users", type=int, default=1_000)
    cli = parser.parse_args()

    world = make_world(cli.users if cli.train else 8)
    from training.ml.ppo import PPOConfig, train_ppo
    from training.ml.slate_scorer import build_scorer_for, scorer_arrays

    if cli.train:
        config = PPOConfig(
            iterations=cli.iterations, users_per_iteration=256, n_candidates=N_CANDIDATES, slate_size=10
        )
        start = time.perf_counter()
        result = train_ppo(world.users, world.reference, world.reward_model, world.item_features, config)
        seconds = time.perf_counter() - start
        first, last = result.history[0], result.history[-1]
        print(
            f"PPO {config.iterations} it x {config.users_per_iteration} users x K=10, C={N_CANDIDATES}: {seconds:.1f} s"
        )
        print(
            f"  of which iterations: {last['time/elapsed'] - first['time/elapsed'] + first['time/rollout'] + first['time/update']:.1f} s"
        )
        for key in (
            "objective/scores",
            "objective/rlhf_reward",
            "objective/kl",
            "objective/kl_coef",
            "val/mean_reward",
        ):
            print(f"  {key:26s} first {first[key]:8.3f}  last {last[key]:8.3f}")
        print(f"  val/ref_mean_reward        {last['val/ref_mean_reward']:8.3f}")
        arrays = result.arrays
    else:
        model = build_scorer_for(
            world.users, world.item_features, hidden_sizes=(64, 32), slate_size=10, ref_logit_scale=1.0
        )
        rng = np.random.default_rng(0)
        for weight in model.trainable_weights:
            weight.assign(rng.normal(scale=0.1, size=weight.shape).astype(np.float32))
        arrays = scorer_arrays(model, N_CANDIDATES)
    bench_serving(world, arrays)


if __name__ == "__main__":
    main()
