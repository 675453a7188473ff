"""Serving latency of top_k(k=20), its reasons and "more like this", training time and the NDCG table on ml-latest-small.

Run: ``.venv/bin/python bench/bench_scoring.py [data/ml-latest-small]``. Every number printed is
measured by this script on this machine. Latency is measured in a fresh process that loads the
trained model from an artifact (memory-mapped, like a web worker) with BLAS limited to one thread
(``OPENBLAS_NUM_THREADS=1``): on a shared 2-core machine a multi-threaded matrix-vector product
mostly waits for the other thread, and web workers should not fight each other for cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.ml.artifacts import load_scorer, save_scorer
from training.ml.data import History, read_movielens
from training.ml.experiment_compare import run_comparison
from training.ml.scoring import NumpyRecommender, Scorer

N_CALLS = 2000  # timed top_k calls per catalogue
SYNTHETIC_ITEMS = 62_000  # ml-25m-sized catalogue
HEAVY_USER = 2000  # ratings of a heavy user (ml-latest-small's heaviest has 2,698)
SIMILAR_POOL = 50  # training.serving.SIMILAR_POOL (not imported: this script runs without Django)


def latency_ms(call: Callable[[], object]) -> tuple[float, float]:
    """p50 and p99 of one ``call()``, in milliseconds, after a warm-up."""
    for _ in range(50):
        call()
    timings = np.empty(N_CALLS)
    for i in range(N_CALLS):
        started = time.perf_counter()
        call()
        timings[i] = time.perf_counter() - started
    return float(np.percentile(timings, 50) * 1e3), float(np.percentile(timings, 99) * 1e3)


def top_20(scorer: Scorer, history: History) -> Callable[[], object]:
    return lambda: scorer.top_k(history, 20)


def reasons(scorer: Scorer, history: History) -> Callable[[], object]:
    """What the recommendations page asks after top_k: the "because you rated" movie of each of 20."""
    items = scorer.top_k(history, 20)[0]
    return lambda: scorer.explain_many(history, items)


def more_like_this(scorer: NumpyRecommender, item_idx: int) -> Callable[[], object]:
    """What a movie page's "More like this" asks of the model: its 50 nearest movies."""
    return lambda: scorer.nearest_items(item_idx, SIMILAR_POOL)


def user_with_ratings(n: int, n_items: int, rng: np.random.Generator) -> History:
    return History(
        rng.choice(n_items, size=n, replace=False),
        rng.choice(np.arange(1, 11) / 2, size=n),
        1_500_000_000 + np.sort(rng.integers(0, 10**7, size=n)),
    )


def item_item_label(scorer: NumpyRecommender) -> str:
    if scorer.neighbour_items is None:
        return "no item-item term"
    return f"item-item term of {scorer.neighbour_items.shape[1]} neighbours per movie"


def measure_latency(artifact: Path) -> None:
    """Runs in the child process: (a) the trained arrays, (b) random arrays of 62k movies."""
    rng = np.random.default_rng(0)
    trained, _, _ = load_scorer(artifact)
    assert isinstance(trained, NumpyRecommender)
    user = user_with_ratings(50, trained.n_items, rng)
    p50, p99 = latency_ms(top_20(trained, user))
    print(
        f"(a) trained recommender arrays (memory-mapped artifact), {trained.n_items} movies, "
        f"dim {trained.dim}, {item_item_label(trained)}: p50 {p50:.3f} ms  p99 {p99:.3f} ms"
    )
    p50, p99 = latency_ms(reasons(trained, user))
    print(f"    reasons for those 20 (explain_many): p50 {p50:.3f} ms  p99 {p99:.3f} ms")
    heavy = user_with_ratings(HEAVY_USER, trained.n_items, rng)
    p50, p99 = latency_ms(top_20(trained, heavy))
    reasons_p50, reasons_p99 = latency_ms(reasons(trained, heavy))
    print(
        f"    a user with {HEAVY_USER} ratings: top-20 p50 {p50:.3f} ms  p99 {p99:.3f} ms; "
        f"its reasons p50 {reasons_p50:.3f} ms  p99 {reasons_p99:.3f} ms"
    )
    if trained.neighbour_items is not None:
        alone = NumpyRecommender.from_arrays(
            {
                name: array
                for name, array in trained.export_arrays().items()
                if name in NumpyRecommender.ARRAY_NAMES
            }
        )
        p50, p99 = latency_ms(top_20(alone, user_with_ratings(50, trained.n_items, rng)))
        print(f"    the same without the item-item term: p50 {p50:.3f} ms  p99 {p99:.3f} ms")
    p50, p99 = latency_ms(more_like_this(trained, 0))
    print(f"    more like this ({SIMILAR_POOL} nearest movies): p50 {p50:.3f} ms  p99 {p99:.3f} ms")
    arrays = dict(trained.export_arrays())
    dim = trained.dim
    arrays.update(
        input_embeddings=rng.normal(size=(SYNTHETIC_ITEMS, dim)).astype(np.float32),
        item_embeddings=rng.normal(size=(SYNTHETIC_ITEMS, dim)).astype(np.float32),
        item_bias=rng.normal(size=SYNTHETIC_ITEMS).astype(np.float32),
    )
    if trained.neighbour_items is not None:  # the EASE item-item term, as wide as the trained one
        width = trained.neighbour_items.shape[1]
        arrays.update(
            neighbour_items=rng.integers(0, SYNTHETIC_ITEMS, size=(SYNTHETIC_ITEMS, width), dtype=np.int32),
            neighbour_weights=rng.normal(scale=0.05, size=(SYNTHETIC_ITEMS, width)).astype(np.float32),
        )
    synthetic = NumpyRecommender.from_arrays(arrays)
    user = user_with_ratings(50, SYNTHETIC_ITEMS, rng)
    p50, p99 = latency_ms(top_20(synthetic, user))
    print(
        f"(b) random arrays of the same architecture, {SYNTHETIC_ITEMS} movies, dim {dim}, "
        f"{item_item_label(synthetic)}: "
        f"p50 {p50:.3f} ms  p99 {p99:.3f} ms"
    )
    p50, p99 = latency_ms(reasons(synthetic, user))
    print(f"    reasons for those 20 (explain_many): p50 {p50:.3f} ms  p99 {p99:.3f} ms")
    p50, p99 = latency_ms(more_like_this(synthetic, 0))
    print(f"    more like this ({SIMILAR_POOL} nearest movies): p50 {p50:.3f} ms  p99 {p99:.3f} ms")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--latency":
        measure_latency(Path(sys.argv[2]))
        return
    data = sys.argv[1] if len(sys.argv) > 1 else "data/ml-latest-small"
    ratings, movies = read_movielens(data)

    print(f"== quality: per-user temporal holdout 0.2 on {data} (recommender seed 0) ==")
    comparison = run_comparison(ratings, movies, holdout=0.2, seed=0)
    columns = ["ndcg@10", "recall@10", "map@10", "ndcg@20", "coverage@10", "novelty@10", "diversity@10"]
    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.precision", 4):
        print(comparison.table[columns])
    print(
        "EASE validation NDCG@10 by lambda:", {k: round(v, 4) for k, v in comparison.ease_validation.items()}
    )
    for name, seconds in comparison.fit_seconds.items():
        print(f"fit time {name}: {seconds:.1f} s")

    print(f"\n== latency of top_k(k=20), user with 50 ratings, {N_CALLS} calls, 1 BLAS thread ==")
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as root:
        trained = comparison.scorers["recommender"]
        item_ids = np.arange(trained.n_items)  # ids do not matter for timing
        artifact = save_scorer(Path(root), "recommender", trained, item_ids)
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        subprocess.run([sys.executable, __file__, "--latency", str(artifact)], env=env, check=True)


if __name__ == "__main__":
    main()
