"""Team-draft interleaving on the bundled data: how many users detect a planted better policy, and
what interleaving costs a request.

    .venv/bin/python bench/bench_interleaving.py [--data data/ml-latest-small] [--trials 200]

Users and their actions: ml-latest-small's per-user temporal split (latest 20% held out); a user
acts on a shown movie they rated 4 or more later (probability 0.9 where they look; 0.02 on any
other), looking at position r with probability 1 / (r + 1) (``ClickModel``). Planted pairs, the
better one named second:

- popularity vs EASE: a large difference;
- EASE with 3 of its top 10 swapped for random movies from its ranks 11 to 50, vs EASE: a small one.

For each number of users, the share of ``--trials`` simulated experiments that find the better
policy (sign test, p < 0.05, in its favour), by interleaving and by an A/B test that splits the same
users in half (Welch's test on liked movies per user). Then the cost per request: one list
(score the catalogue, top 20) against an interleaved one (two lists and the team draft), in process.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.ml.baselines import EASE, Popularity  # noqa: E402
from training.ml.data import Snapshot, read_movielens, temporal_split  # noqa: E402
from training.ml.evaluation import rank_users  # noqa: E402
from training.ml.interleaving import detection_power, team_draft, users_needed  # noqa: E402

USER_COUNTS = (50, 100, 200, 400, 800, 1600, 3200)


def degraded(rankings: dict[int, np.ndarray], swaps: int, seed: int) -> dict[int, list[int]]:
    """Each top 10 with ``swaps`` of its movies replaced by random ones from ranks 11 to 50."""
    rng = np.random.default_rng(seed)
    out = {}
    for user, ranked in rankings.items():
        top, rest = list(ranked[:10]), list(ranked[10:50])
        positions = rng.choice(10, size=swaps, replace=False)
        replacements = rng.choice(len(rest), size=swaps, replace=False)
        for position, replacement in zip(positions, replacements, strict=True):
            top[position] = rest[replacement]
        out[user] = [int(m) for m in top]
    return out


def latency_ms(call, n: int = 2000) -> float:
    for _ in range(50):
        call()
    timings = np.empty(n)
    for i in range(n):
        started = time.perf_counter()
        call()
        timings[i] = time.perf_counter() - started
    return float(np.percentile(timings, 50) * 1e3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / "data" / "ml-latest-small"))
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    ratings, _ = read_movielens(args.data)
    split = temporal_split(Snapshot.from_ratings(ratings))
    relevant = split.relevant()
    users = sorted(relevant)
    ease = EASE.fit(split.train)
    popularity = Popularity.fit(split.train)
    ease_lists = rank_users(ease, split, users, 50)
    popular_lists = rank_users(popularity, split, users, 10)
    pairs = {
        "popularity vs EASE": ({u: list(r[:10]) for u, r in popular_lists.items()}, ease_lists),
        "EASE with 3 of 10 swapped vs EASE": (degraded(ease_lists, 3, args.seed), ease_lists),
    }
    print(f"{len(users)} users with held-out movies rated 4 or more; {args.trials} experiments per cell\n")
    print("| planted pair (better second) | users | found by interleaving | found by A/B test |")
    print("|---|---:|---:|---:|")
    summary = []
    for name, (worse, better) in pairs.items():
        better_top = {u: list(r[:10]) for u, r in better.items()}
        rows = detection_power(worse, better_top, relevant, USER_COUNTS, trials=args.trials, seed=args.seed)
        for row in rows:
            print(f"| {name} | {row['users']} | {row['interleaving']:.2f} | {row['ab_test']:.2f} |")
        summary.append((name, users_needed(rows, "interleaving"), users_needed(rows, "ab_test")))
    print("\n| planted pair | users for 80% detection: interleaving | A/B test |")
    print("|---|---:|---:|")
    for name, inter, ab in summary:
        print(f"| {name} | {inter or f'> {USER_COUNTS[-1]}'} | {ab or f'> {USER_COUNTS[-1]}'} |")

    user = users[len(users) // 2]
    history = split.train.history(user)
    rng = np.random.default_rng(0)

    def one_list():
        return ease.top_k(history, 20)

    def interleaved():
        first, second = ease.top_k(history, 20)[0], popularity.top_k(history, 20)[0]
        return team_draft(first, second, 20, rng)

    plain, both = latency_ms(one_list), latency_ms(interleaved)
    draft = latency_ms(lambda: team_draft(list(range(20)), list(range(19, -1, -1)), 20, rng))
    print(
        f"\nper request, in process (p50): one list {plain:.3f} ms; interleaved {both:.3f} ms "
        f"(overhead {both - plain:.3f} ms; target < 2 ms); the team draft alone {draft:.3f} ms"
    )


if __name__ == "__main__":
    main()
