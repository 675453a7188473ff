"""Benchmark: comparison submissions per second over HTTP, and SQL queries per submission.

Run: ``.venv/bin/python bench/bench_comparisons.py [seconds] [clients]``

A scratch SQLite database in a temporary VAR_DIR gets a synthetic catalogue (2,000 movies,
300 dataset users with 40 ratings each), a tiny random recommender registered as the active
"base" version, and one annotator account per client. The app runs under gunicorn (2 sync
workers on 127.0.0.1); each client thread loops GET /api/comparisons/next/ then POST
/api/comparisons/ with token auth for the given time (default 15 s, 4 clients). Queries per
``comparison_submit`` are counted in-process with CaptureQueriesContext. Every number printed is
measured by this script on this machine.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCRATCH = Path(tempfile.mkdtemp(prefix="bench-comparisons-"))
os.environ["VAR_DIR"] = str(SCRATCH)
os.environ["ARTIFACTS_DIR"] = str(SCRATCH / "artifacts")
os.environ.pop("DATABASE_URL", None)  # the scratch SQLite database in VAR_DIR
os.environ.pop("REDIS_URL", None)
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ["DJANGO_SETTINGS_MODULE"] = "recsys_site.settings"

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

N_MOVIES = 2000
N_PERSONAS = 300
RATINGS_PER_PERSONA = 40
GENRES = ["Action", "Adventure", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "Thriller", "Documentary"]
REASONS = [
    "",
    "",
    "Loved the comedies but way too many horror films",
    "more sci-fi please, the right one is too old",
    "both lists are boring",
]


def build_world() -> None:
    from movies.models import Genre, Movie, Rater, Rating
    from movies.stats import movie_stats_refresh
    from training.ml.artifacts import save_scorer
    from training.ml.scoring import NumpyRecommender
    from training.registry import model_version_activate, model_version_register

    rng = np.random.default_rng(0)
    call_command("migrate", verbosity=0)
    genres = Genre.objects.bulk_create(Genre(name=name) for name in GENRES)
    movies = Movie.objects.bulk_create(
        Movie(id=i, title=f"Benchmark Movie {i}", year=1950 + i % 70) for i in range(1, N_MOVIES + 1)
    )
    Movie.genres.through.objects.bulk_create(
        Movie.genres.through(movie_id=movie.pk, genre_id=genres[g].pk)
        for movie in movies
        for g in {movie.pk % len(genres), (movie.pk * 7) % len(genres)}
    )
    raters = Rater.objects.bulk_create(Rater(movielens_id=i) for i in range(1, N_PERSONAS + 1))
    popularity = 1.0 / np.arange(1, N_MOVIES + 1) ** 0.8
    popularity /= popularity.sum()
    when = datetime(2020, 1, 1, tzinfo=UTC)
    Rating.objects.bulk_create(
        (
            Rating(
                rater=rater,
                movie_id=int(m),
                rating=float(rng.integers(1, 11)) / 2,
                rated_at=when + timedelta(hours=j),
            )
            for rater in raters
            for j, m in enumerate(
                rng.choice(np.arange(1, N_MOVIES + 1), size=RATINGS_PER_PERSONA, replace=False, p=popularity)
            )
        ),
        batch_size=2000,
    )
    movie_stats_refresh()
    dim = 32
    scorer = NumpyRecommender(
        input_embeddings=rng.normal(size=(N_MOVIES, dim)).astype(np.float32),
        encoder_bias=np.zeros(dim, np.float32),
        item_embeddings=rng.normal(size=(N_MOVIES, dim)).astype(np.float32),
        item_bias=rng.normal(size=N_MOVIES).astype(np.float32),
        rating_weights=np.linspace(-1.0, 1.0, 10).astype(np.float32),
        recency_half_life=50.0,
    )
    save_scorer(settings.ARTIFACTS_DIR, "base-bench", scorer, np.arange(1, N_MOVIES + 1))
    version = model_version_register(
        algorithm="base", version=1, artifact="base-bench", metrics={}, config={}, seed=0, data_snapshot={}
    )
    model_version_activate(version=version)


def annotator_tokens(count: int) -> list[str]:
    from movies.services import account_create

    tokens = []
    for i in range(count):
        user = account_create(username=f"bench-annotator-{i}", password="bench-pass-123", annotator=True)
        tokens.append(Token.objects.create(user=user).key)
    return tokens


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gunicorn(port: int) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "gunicorn", "recsys_site.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", "2", "--log-level", "warning",
    ]  # fmt: skip
    server = subprocess.Popen(command, cwd=ROOT, env=os.environ.copy())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            probe.request("GET", "/api/genres/")
            if probe.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.3)
    server.terminate()
    raise RuntimeError("gunicorn did not answer within 60 s")


class Client(threading.Thread):
    def __init__(self, port: int, token: str, seconds: float, seed: int) -> None:
        super().__init__(daemon=True)
        self.port, self.token, self.seconds = port, token, seconds
        self.rng = np.random.default_rng(seed)
        self.submitted = 0
        self.errors: list[str] = []
        self.iteration_ms: list[float] = []

    def call(self, connection_: http.client.HTTPConnection, method: str, path: str, body: dict | None = None):
        headers = {"Authorization": f"Token {self.token}", "Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body)
            headers["Content-Type"] = "application/json"
        connection_.request(method, path, body=payload, headers=headers)
        response = connection_.getresponse()
        return response.status, response.read()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        stop = time.monotonic() + self.seconds
        while time.monotonic() < stop:
            started = time.perf_counter()
            status, raw = self.call(conn, "GET", "/api/comparisons/next/")
            if status != 200:
                self.errors.append(f"next {status} {raw[:200]!r}")
                continue
            task = json.loads(raw)["id"]
            body = {
                "task": task,
                "choice": str(self.rng.choice(["left", "right", "tie", "both_bad"])),
                "reason": str(self.rng.choice(REASONS)),
                "decision_ms": int(self.rng.integers(1500, 20000)),
            }
            status, raw = self.call(conn, "POST", "/api/comparisons/", body)
            if status == 201:
                self.submitted += 1
                self.iteration_ms.append((time.perf_counter() - started) * 1000)
            else:
                self.errors.append(f"submit {status} {raw[:200]!r}")


def queries_per_submission(samples: int = 20) -> tuple[float, float, int, float, float]:
    """Mean queries of comparison_submit with and without a reason, median of comparison_task_next (new
    task), and the mean in-process milliseconds of each."""
    from feedback import services
    from movies.services import account_create

    annotator = account_create(username="bench-in-process", password="bench-pass-123", annotator=True)
    first = services.comparison_task_next(annotator=annotator)  # warm the model and analyzer caches
    services.comparison_submit(
        annotator=annotator, task_id=first.pk, choice="tie", reason="warm up the analyzer"
    )
    counts = {True: [], False: []}
    next_queries = []
    next_ms, submit_ms = [], []
    rng = np.random.default_rng(1)
    for i in range(samples):
        # counted with an execute wrapper: CaptureQueriesContext formats each query for the log,
        # which the raw "strftime('%s', ...)" of training.profiles.profile_for cannot survive on SQLite
        executed: list[str] = []

        def count(execute, sql, params, many, context, executed=executed):
            executed.append(sql)
            return execute(sql, params, many, context)

        started = time.perf_counter()
        with connection.execute_wrapper(count):
            task = services.comparison_task_next(annotator=annotator, rng=rng)
        next_ms.append((time.perf_counter() - started) * 1000)
        next_queries.append(len(executed))
        with_reason = i % 2 == 0
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as captured:
            services.comparison_submit(
                annotator=annotator,
                task_id=task.pk,
                choice="left",
                reason="too many horror films" if with_reason else "",
            )
        submit_ms.append((time.perf_counter() - started) * 1000)
        counts[with_reason].append(len(captured))
    return (
        statistics.mean(counts[True]),
        statistics.mean(counts[False]),
        int(statistics.median(next_queries)),
        statistics.mean(next_ms),
        statistics.mean(submit_ms),
    )


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 15.0
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    server = None
    try:
        started = time.perf_counter()
        build_world()
        tokens = annotator_tokens(clients)
        print(
            f"scratch {SCRATCH}: {N_MOVIES} movies, {N_PERSONAS} personas, setup {time.perf_counter() - started:.1f} s"
        )
        port = free_port()
        server = start_gunicorn(port)
        # one warm-up round per client so that model loading and analyzer building are not timed
        for token in tokens:
            warm = Client(port, token, 0.01, seed=99)
            warm.run()
        threads = [Client(port, token, seconds, seed=i) for i, token in enumerate(tokens)]
        began = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - began
        submitted = sum(thread.submitted for thread in threads)
        errors = [error for thread in threads for error in thread.errors]
        iterations = sorted(ms for thread in threads for ms in thread.iteration_ms)
        print(f"gunicorn 2 workers, SQLite, {clients} client threads, {elapsed:.1f} s")
        print(f"submissions: {submitted}  ({submitted / elapsed:.1f} per second), errors: {len(errors)}")
        if iterations:
            p50, p95 = np.percentile(iterations, [50, 95])
            print(f"GET next + POST judgment per client iteration: p50 {p50:.0f} ms, p95 {p95:.0f} ms")
        for error in errors[:5]:
            print("  error:", error)
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
            server = None
        with_reason, without_reason, next_queries, next_ms, submit_ms = queries_per_submission()
        print(
            f"SQL queries per comparison_submit: {with_reason:.1f} with a reason, {without_reason:.1f} without"
        )
        print(f"SQL queries per comparison_task_next (new task, two model lists): {next_queries}")
        print(f"in-process mean: comparison_task_next {next_ms:.1f} ms, comparison_submit {submit_ms:.1f} ms")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(SCRATCH, ignore_errors=True)


if __name__ == "__main__":
    main()
