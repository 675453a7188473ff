"""Training time and peak memory of the base recommender on synthetic data shaped like MovieLens ml-25m.

    .venv/bin/python bench/bench_train_25m.py --scale 0.05    # quick check: 1/20 of the users, movies and ratings
    .venv/bin/python bench/bench_train_25m.py --epochs 2      # full size, 2 epochs; extrapolates the default run
    .venv/bin/python bench/bench_train_25m.py                 # full size, RecommenderConfig's epochs (hours)

The data is generated, seeded and vectorised: 25,000,095 ratings by 162,541 users of 62,423 movies
at ``--scale 1``, every count multiplied by ``--scale`` otherwise, so per-user and per-movie averages
stay those of ml-25m (an epoch at 0.05 took about 1/250 of a full-size one: both the users and the
catalogue shrink). Movie popularity is lognormal, user activity is heavy-tailed with at least 20
ratings per user, each user rates over a span of time, and a rating is a global mean + user bias +
movie bias + noise, rounded to whole stars before 2003 and half stars after (as on MovieLens).
Movies take their genre lists from the bundled ml-latest-small catalogue. There is no taste
structure, so the NDCG printed is a sanity check, not a quality figure.

The timed phases are those of ``manage.py train base`` (``training.pipeline.train_base``):
``Snapshot.from_ratings``, ``temporal_split(holdout=0.2)``, EASE for the teacher and the
item-item term (``tune_ease``: its lambda search and fit, unless ``--no-ease``),
``train_recommender`` on the train part (with the item-item term's neighbour selection),
``evaluate_model`` on the held-out part, for ``--eval-users`` users drawn at random (scoring all
159 k held-out users took 4 minutes at full size; ``--eval-users 0`` does it). TensorFlow's import
is timed on its own. With fewer epochs than the config's, the full run is extrapolated, and printed
as such: the measured run plus the missing epochs at the mean time of the epochs after the first
(the first also builds the model and traces the graph; with ``--epochs 1`` it is used anyway).

Memory: peak RSS per phase is sampled from ``/proc/self/status`` (``VmRSS``) every 50 ms by a
background thread; when a phase raised the process's high-water mark (``VmHWM``) that exact value
is used instead. ``ru_maxrss`` is the whole process's peak. Not in ``make bench``: the default run
takes hours on 2 cores (``--epochs 2`` about 15 minutes); measured figures are in
``docs/benchmarks.md``.
"""

from __future__ import annotations

import os

# Before anything can import TensorFlow (training.ml.seeding sets the same defaults).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import argparse
import resource
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.ml.baselines import tune_ease  # noqa: E402
from training.ml.data import Snapshot, read_movielens, temporal_split  # noqa: E402
from training.ml.evaluation import evaluate_model  # noqa: E402
from training.ml.recommender import RecommenderConfig, train_recommender  # noqa: E402
from training.ml.seeding import import_tensorflow  # noqa: E402

ML25M_RATINGS = 25_000_095
ML25M_USERS = 162_541
ML25M_MOVIES = 62_423
MIN_RATINGS_PER_USER = 20  # MovieLens only releases users with at least 20 ratings

FIRST_RATING = int(datetime(1995, 1, 9, tzinfo=UTC).timestamp())  # ml-25m's ratings span 1995-01 ..
LAST_RATING = int(datetime(2019, 11, 21, tzinfo=UTC).timestamp())  # .. 2019-11
HALF_STARS_FROM = int(datetime(2003, 1, 1, tzinfo=UTC).timestamp())  # MovieLens had whole stars before


@dataclass
class SyntheticConfig:
    """Shape of the generated data; the defaults give ml-25m's counts and a long-tailed, ml-25m-like look."""

    scale: float = 1.0  # multiplies the numbers of ratings, users and movies of ml-25m
    seed: int = 0  # seeds the generator (the recommender has its own seed in its config)
    movie_popularity_sigma: float = 3.0  # log-sd of movie popularity weights (lognormal, long tail)
    max_movie_share_of_users: float = 0.9  # cap on a movie's expected draws over the number of users
    user_activity_sigma: float = 1.4  # log-sd of ratings beyond the 20 minimum (lognormal, heavy tail)
    max_user_share_of_catalogue: float = 0.5  # cap on one user's ratings, as a share of the catalogue
    span_median_days: float = 30.0  # median time between a user's first and last rating
    span_sigma: float = 2.0  # log-sd of that span
    global_mean: float = 3.6  # intercept; rounding and clipping bring the mean rating to about 3.5
    user_bias_sd: float = 0.4  # spread of per-user leniency
    movie_bias_sd: float = 0.4  # spread of per-movie quality
    popularity_bias: float = 0.15  # extra rating per standard deviation of log popularity
    noise_sd: float = 0.9  # per-rating noise


def _user_counts(
    n_users: int, n_ratings: int, cap: int, cfg: SyntheticConfig, rng: np.random.Generator
) -> np.ndarray:
    """Ratings per user: 20 + a lognormal share of the rest, capped, summing exactly to ``n_ratings``."""
    floor = min(MIN_RATINGS_PER_USER, cap)
    weights = rng.lognormal(0.0, cfg.user_activity_sigma, n_users)
    counts = np.full(n_users, floor, np.int64)
    open_users = np.arange(n_users)
    # Share what is left in proportion to the weights of users still under the cap (water filling).
    while (left := n_ratings - int(counts.sum())) > 0 and len(open_users):
        share = np.floor(left * weights[open_users] / weights[open_users].sum()).astype(np.int64)
        if not share.any():  # fewer ratings left than users: one more each for some of them
            counts[rng.choice(open_users, size=min(left, len(open_users)), replace=False)] += 1
            break
        counts[open_users] = np.minimum(counts[open_users] + share, cap)
        open_users = open_users[counts[open_users] < cap]
    return counts


def _movie_probabilities(
    n_movies: int, n_users: int, n_ratings: int, cfg: SyntheticConfig, rng: np.random.Generator
) -> np.ndarray:
    """Lognormal popularity (a long tail), clipped so that no movie is drawn for nearly every user."""
    weights = rng.lognormal(0.0, cfg.movie_popularity_sigma, n_movies)
    for _ in range(20):  # clipping lowers the sum, which raises the others' share: iterate to a fixed point
        p = weights / weights.sum()
        ceiling = cfg.max_movie_share_of_users * n_users / n_ratings
        if p.max() <= ceiling * 1.001:
            break
        weights = np.minimum(weights, ceiling * weights.sum())
    return weights / weights.sum()


def _distinct_movies(user_of_row: np.ndarray, p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A movie per row drawn from ``p``, redrawn until no user has the same movie twice.

    Only the rows of users who still have duplicates are re-checked, so later rounds are cheap.
    After a few rounds the heaviest users, who have used up most of the popular movies, draw
    uniformly from the catalogue (otherwise they would need many rounds to find the rest).
    """
    n_movies = len(p)
    cdf = np.cumsum(p)
    cdf[-1] = 1.0
    items = np.searchsorted(cdf, rng.random(len(user_of_row)), side="right").astype(np.int64)
    rows = np.arange(len(user_of_row))
    for round_number in range(1000):
        keys = user_of_row[rows] * n_movies + items[rows]
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        duplicates = rows[order[np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1]) + 1]]
        if not len(duplicates):
            return items
        if round_number < 8:
            items[duplicates] = np.searchsorted(cdf, rng.random(len(duplicates)), side="right")
        else:
            items[duplicates] = rng.integers(0, n_movies, len(duplicates))
        users = np.unique(user_of_row[duplicates])
        rows = rows[np.isin(user_of_row[rows], users)]
    raise RuntimeError("could not draw distinct movies per user")


def synthetic_movielens(cfg: SyntheticConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``ratings`` and ``movies`` frames with the columns and dtypes ``read_movielens`` returns."""
    rng = np.random.default_rng(cfg.seed)
    n_ratings = round(ML25M_RATINGS * cfg.scale)
    n_users = round(ML25M_USERS * cfg.scale)
    n_movies = round(ML25M_MOVIES * cfg.scale)
    if n_ratings < MIN_RATINGS_PER_USER * n_users:
        raise ValueError("scale too small")

    counts = _user_counts(n_users, n_ratings, int(cfg.max_user_share_of_catalogue * n_movies), cfg, rng)
    user_of_row = np.repeat(np.arange(n_users, dtype=np.int64), counts)
    p = _movie_probabilities(n_movies, n_users, n_ratings, cfg, rng)
    movie_of_row = _distinct_movies(user_of_row, p, rng)

    span = np.clip(
        86_400 * cfg.span_median_days * rng.lognormal(0.0, cfg.span_sigma, n_users),
        3_600,
        LAST_RATING - FIRST_RATING,
    )
    first = FIRST_RATING + rng.random(n_users) * (LAST_RATING - FIRST_RATING - span)
    timestamp = (first[user_of_row] + rng.random(n_ratings) * span[user_of_row]).astype(np.int64)
    del first, span

    log_p = np.log(p)
    movie_bias = rng.normal(0.0, cfg.movie_bias_sd, n_movies) + cfg.popularity_bias * (
        (log_p - log_p.mean()) / log_p.std()
    )
    movie_bias -= p @ movie_bias  # centred where the ratings are, so the mean rating stays near global_mean
    user_bias = rng.normal(0.0, cfg.user_bias_sd, n_users)
    stars = (cfg.global_mean + user_bias[user_of_row]).astype(np.float32)
    stars += movie_bias[movie_of_row].astype(np.float32)
    stars += rng.normal(0.0, cfg.noise_sd, n_ratings).astype(np.float32)
    half = timestamp >= HALF_STARS_FROM
    stars = np.where(half, np.round(stars * 2) / 2, np.round(stars)).astype(np.float32)
    stars = np.where(half, np.clip(stars, 0.5, 5.0), np.clip(stars, 1.0, 5.0)).astype(np.float32)
    del half

    # Sparse ids, like MovieLens's; genre lists are those of real movies of the bundled catalogue.
    movie_ids = np.sort(rng.choice(np.arange(1, 4 * n_movies), size=n_movies, replace=False))
    _, real_movies = read_movielens(ROOT / "data" / "ml-latest-small")
    genres = real_movies["genres"].to_numpy(dtype=object)[rng.integers(0, len(real_movies), n_movies)]
    movies = pd.DataFrame(
        {
            "item": movie_ids,
            "title": [f"Synthetic movie {m}" for m in movie_ids.tolist()],
            "year": pd.array(rng.integers(1920, 2020, n_movies), dtype="Int64"),
            "genres": list(genres),
        }
    )
    ratings = pd.DataFrame(
        {
            "user": user_of_row + 1,
            "item": movie_ids[movie_of_row],
            "rating": stars,
            "timestamp": timestamp,
        }
    )
    return ratings, movies


class MemoryMonitor:
    """Wall time and peak RSS per named phase, from a background sampler and the kernel's high-water mark."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.phases: list[tuple[str, float, float]] = []  # name, seconds, peak RSS MiB
        self._phase_peak_kib = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    @staticmethod
    def status_kib(field: str) -> int:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            rss = self.status_kib("VmRSS")
            with self._lock:
                self._phase_peak_kib = max(self._phase_peak_kib, rss)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        high_water_before = self.status_kib("VmHWM")
        with self._lock:
            self._phase_peak_kib = self.status_kib("VmRSS")
        started = time.perf_counter()
        try:
            yield
        finally:
            seconds = time.perf_counter() - started
            high_water_after = self.status_kib("VmHWM")
            with self._lock:
                peak = max(self._phase_peak_kib, self.status_kib("VmRSS"))
            if high_water_after > high_water_before:  # this phase set the process's record: exact value
                peak = max(peak, high_water_after)
            self.phases.append((name, seconds, peak / 1024))
            print(f"  {name}: {seconds:.1f} s, peak RSS {peak / 1024:,.0f} MiB", flush=True)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min) on {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale", type=float, default=1.0, help="share of ml-25m's ratings, users and movies"
    )
    parser.add_argument("--epochs", type=int, default=None, help="default: RecommenderConfig's")
    parser.add_argument("--eval-users", type=int, default=10_000, help="users scored in evaluation; 0 = all")
    parser.add_argument(
        "--no-ease",
        action="store_true",
        help="train without EASE: no teacher, no item-item term (teacher_weight and ease_weight 0)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seeds the data, the recommender and the eval sample"
    )
    cli = parser.parse_args()

    default_epochs = RecommenderConfig().epochs
    config = RecommenderConfig(seed=cli.seed, epochs=cli.epochs or default_epochs)
    if cli.no_ease:
        config = replace(config, teacher_weight=0.0, ease_weight=0.0)
    print(f"load average before: {load_average()}")
    print(f"recommender config: {config}")
    monitor = MemoryMonitor()

    print(f"== synthetic ml-25m-shaped data, scale {cli.scale:g}, seed {cli.seed} ==")
    with monitor.phase("generate"):
        ratings, movies = synthetic_movielens(SyntheticConfig(scale=cli.scale, seed=cli.seed))
    per_user = ratings.groupby("user").size()
    per_movie = ratings.groupby("item").size()
    print(
        f"  {len(ratings):,} ratings, {len(per_user):,} users, {len(movies):,} movies "
        f"({len(per_movie):,} rated); ratings per user min {per_user.min()} median {per_user.median():.0f} "
        f"mean {per_user.mean():.1f} max {per_user.max():,}; per rated movie median {per_movie.median():.0f} "
        f"max {per_movie.max():,}; mean rating {ratings['rating'].mean():.2f}, "
        f"half stars {(ratings['rating'] % 1 != 0).mean():.0%}; frame {ratings.memory_usage(deep=True).sum() / 2**20:,.0f} MiB"
    )
    del per_user, per_movie

    with monitor.phase("snapshot"):
        snapshot = Snapshot.from_ratings(ratings, movies)
    del ratings
    with monitor.phase("split"):
        split = temporal_split(snapshot, holdout=0.2)
    del snapshot
    print(f"  train {split.train.n_ratings:,} ratings, test {split.test.n_ratings:,}")

    teacher = None
    if config.teacher_weight > 0 or config.ease_weight > 0:
        with monitor.phase("EASE teacher"):  # lambda search + fit on the 20,000 most-rated movies
            teacher, lambdas = tune_ease(split.train)
        print(
            f"  EASE teacher: lambda {teacher.l2:g}, {len(teacher.item_subset):,} movies; by lambda {lambdas}"
        )

    with monitor.phase("import tensorflow"):
        import_tensorflow()

    epoch_ends: list[float] = []
    bar = tqdm(total=config.epochs, desc="epochs", unit="epoch")

    def on_epoch(epoch: int, epochs: int, logs: dict[str, float]) -> None:
        epoch_ends.append(time.perf_counter())
        bar.set_postfix(loss=f"{logs['loss']:.3f}")
        bar.update(1)

    with monitor.phase("train"):
        train_started = time.perf_counter()
        result = train_recommender(split.train, config, progress=on_epoch, teacher=teacher)
        train_seconds = time.perf_counter() - train_started
        bar.close()
    epoch_seconds = np.diff([train_started, *epoch_ends])
    # The first epoch also builds the model and traces the graph; with one epoch it is all there is.
    per_epoch = float(epoch_seconds[1:].mean() if len(epoch_seconds) > 1 else epoch_seconds[0])
    per_epoch_label = "mean of the epochs after the first" if len(epoch_seconds) > 1 else "the only epoch"
    steps = -(-int((np.diff(split.train.indptr) >= 2).sum()) // config.batch_size)  # as train_recommender
    print(
        "  seconds per epoch: "
        + ", ".join(f"{s:.1f}" for s in epoch_seconds)
        + f"; {per_epoch_label} {per_epoch:.1f} s = {per_epoch / steps * 1e3:.1f} ms per step of "
        + f"{config.batch_size} users, {steps:,} steps"
    )

    evaluated = split.sample_users(cli.eval_users, cli.seed)
    with monitor.phase("evaluate"):
        metrics = evaluate_model(result.scorer, evaluated, movies_genres=movies)
    monitor.stop()
    print(
        f"  {metrics['n_users']:.0f} users evaluated"
        + (" (a random sample)" if evaluated is not split else " (all)")
        + f"; ndcg@10 {metrics['ndcg@10']:.4f} (synthetic data without taste: a sanity check only)"
    )

    artifact_bytes = sum(np.asarray(a).nbytes for a in result.scorer.export_arrays().values())
    print("\n== summary ==")
    for name, seconds, peak in monitor.phases:
        print(f"{name:>18}: {seconds:8.1f} s   peak RSS {peak:8,.0f} MiB")
    snapshot_split = sum(s for name, s, _ in monitor.phases if name in ("snapshot", "split"))
    print(f"snapshot + split: {snapshot_split:.1f} s")
    print(
        f"training wall time: {train_seconds:.1f} s for {config.epochs} epoch(s) "
        f"(result.train_seconds {result.train_seconds:.1f} s); per epoch ({per_epoch_label}) {per_epoch:.1f} s"
    )
    if config.epochs < default_epochs:
        extrapolated = train_seconds + (default_epochs - config.epochs) * per_epoch
        print(
            f"EXTRAPOLATED, not measured: {default_epochs} epochs would take about {extrapolated:,.0f} s "
            f"({extrapolated / 60:,.1f} min) = measured {train_seconds:.0f} s + "
            f"{default_epochs - config.epochs} x {per_epoch:.1f} s"
        )
    print(f"artifact (exported arrays): {artifact_bytes / 2**20:.1f} MiB")
    print(
        f"peak RSS of the process (ru_maxrss): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB"
    )
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
