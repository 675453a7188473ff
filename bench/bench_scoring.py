"""Serving latency of top_k(k=20), training time and the NDCG table on ml-latest-small.

Run: ``.venv/bin/python bench/bench_scoring.py [data/ml-latest-small]``. Every number printed
is measured on this machine by this script.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.ml.data import History, read_movielens
from training.ml.experiment_compare import run_comparison
from training.ml.recommender import RecommenderConfig
from training.ml.scoring import NumpyRecommender, Scorer

N_CALLS = 2000  # timed top_k calls per catalogue
SYNTHETIC_ITEMS = 62_000  # ml-25m-sized catalogue


def latency_ms(scorer: Scorer, history: History, k: int = 20) -> tuple[float, float]:
    """p50 and p99 of one ``top_k`` call, in milliseconds, after a warm-up."""
    for _ in range(50):
        scorer.top_k(history, k)
    timings = np.empty(N_CALLS)
    for i in range(N_CALLS):
        started = time.perf_counter()
        scorer.top_k(history, k)
        timings[i] = time.perf_counter() - started
    return float(np.percentile(timings, 50) * 1e3), float(np.percentile(timings, 99) * 1e3)


def random_recommender(n_items: int, dim: int, rng: np.random.Generator) -> NumpyRecommender:
    """Random arrays of the trained architecture's shapes and dtypes."""
    return NumpyRecommender(
        input_embeddings=rng.normal(size=(n_items, dim)).astype(np.float32),
        encoder_bias=np.zeros(dim, np.float32),
        item_embeddings=rng.normal(size=(n_items, dim)).astype(np.float32),
        item_bias=rng.normal(size=n_items).astype(np.float32),
        rating_weights=np.asarray(RecommenderConfig().rating_weights, np.float32),
        recency_half_life=RecommenderConfig().recency_half_life,
    )


def user_with_50_ratings(n_items: int, rng: np.random.Generator) -> History:
    return History(
        rng.choice(n_items, size=50, replace=False),
        rng.choice(np.arange(1, 11) / 2, size=50),
        1_500_000_000 + np.sort(rng.integers(0, 10**7, size=50)),
    )


def main() -> None:
    data = sys.argv[1] if len(sys.argv) > 1 else "data/ml-latest-small"
    rng = np.random.default_rng(0)
    ratings, movies = read_movielens(data)

    print(f"== quality: per-user temporal holdout 0.2 on {data} (seed 0) ==")
    comparison = run_comparison(ratings, movies, holdout=0.2, seed=0)
    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.precision", 4):
        print(comparison.table[["ndcg@10", "recall@10", "map@10", "ndcg@20", "coverage@10", "novelty@10"]])
    for name, seconds in comparison.fit_seconds.items():
        print(f"fit time {name}: {seconds:.1f} s")

    print(f"\n== latency of top_k(k=20), user with 50 ratings, {N_CALLS} calls ==")
    trained = comparison.scorers["recommender"]
    real_user = user_with_50_ratings(trained.n_items, rng)
    p50, p99 = latency_ms(trained, real_user)
    print(
        f"(a) trained recommender arrays, {trained.n_items} movies, dim {trained.dim}: p50 {p50:.3f} ms  p99 {p99:.3f} ms"
    )
    ease = comparison.scorers["ease"]
    p50, p99 = latency_ms(ease, real_user)
    print(
        f"    EASE for reference, {ease.n_items} movies ({len(ease.item_subset)} modelled): p50 {p50:.3f} ms  p99 {p99:.3f} ms"
    )
    synthetic = random_recommender(SYNTHETIC_ITEMS, trained.dim, rng)
    p50, p99 = latency_ms(synthetic, user_with_50_ratings(SYNTHETIC_ITEMS, rng))
    print(
        f"(b) random arrays, {SYNTHETIC_ITEMS} movies, dim {synthetic.dim}: p50 {p50:.3f} ms  p99 {p99:.3f} ms"
    )


if __name__ == "__main__":
    main()
