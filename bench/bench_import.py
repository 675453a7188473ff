"""Benchmark manage.py import_movielens: ratings/s into SQLite and PostgreSQL on a synthetic release.

    .venv/bin/python bench/bench_import.py [--rows 2000000] [--backends sqlite,postgresql]

Generates a CSV release shaped like ml-25m (62k movies, ~150 ratings per user, Zipf-like movie
popularity, sorted by user then movie) in a temporary folder, then imports it in a fresh process
per backend: SQLite into a temporary file, PostgreSQL into a scratch database (``bench_import``
on the server of DATABASE_URL, else postgresql://postgres@127.0.0.1:5432) that it creates and
drops. Targets: 50,000 ratings/s on SQLite, 100,000 on PostgreSQL (2-core machine).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"sqlite": 50_000, "postgresql": 100_000}
SCRATCH_DB = "bench_import"
GENRES = ["Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
          "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"]  # fmt: skip


def release_generate(*, folder: Path, rows: int, movies: int, seed: int = 0) -> None:
    """Write movies.csv, links.csv, ratings.csv and tags.csv with MovieLens' layout."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    movie_ids = np.sort(
        rng.choice(np.arange(1, movies * 4), size=movies, replace=False)
    )  # sparse, like ml-25m
    years = rng.integers(1920, 2020, movies)
    genre_lists = [
        "|".join(rng.choice(GENRES, size=rng.integers(1, 4), replace=False)) for _ in range(movies)
    ]
    pd.DataFrame(
        {
            "movieId": movie_ids,
            "title": [f"Movie {i}, The ({y})" for i, y in zip(movie_ids, years, strict=True)],
            "genres": genre_lists,
        }
    ).to_csv(folder / "movies.csv", index=False)
    pd.DataFrame(
        {"movieId": movie_ids, "imdbId": [f"{i:07d}" for i in movie_ids], "tmdbId": movie_ids * 3}
    ).to_csv(folder / "links.csv", index=False)

    users = max(1, rows // 150)
    popularity = 1.0 / np.arange(1, movies + 1) ** 0.9
    popularity /= popularity.sum()
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < rows:  # draw (user, movie) pairs until there are enough distinct ones
        need = int((rows - len(keys)) * 1.2) + 1000
        user = rng.integers(1, users + 1, need).astype(np.int64)
        movie = movie_ids[rng.choice(movies, size=need, p=popularity)]
        keys = np.unique(np.concatenate([keys, (user << 32) | movie]))
    keys = np.sort(rng.choice(keys, size=rows, replace=False))
    ratings = pd.DataFrame(
        {
            "userId": keys >> 32,
            "movieId": keys & 0xFFFFFFFF,
            "rating": rng.integers(1, 11, rows) / 2,
            "timestamp": rng.integers(946_684_800, 1_574_000_000, rows),
        }
    )
    ratings.to_csv(folder / "ratings.csv", index=False, float_format="%.1f")
    tagged = ratings.sample(n=max(1, rows // 25), random_state=seed).sort_index()
    pd.DataFrame(
        {
            "userId": tagged["userId"],
            "movieId": tagged["movieId"],
            "tag": rng.choice(
                ["funny", "dark", "twist ending", "based on a book", "visually appealing"], len(tagged)
            ),
            "timestamp": tagged["timestamp"],
        }
    ).to_csv(folder / "tags.csv", index=False)


def postgres_urls() -> tuple[str, str]:
    """(maintenance database URL, scratch database URL) on the configured server."""
    base = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path="/postgres")), urlunsplit(parts._replace(path=f"/{SCRATCH_DB}"))


def postgres_scratch(action: str) -> bool:
    import psycopg

    maintenance, _ = postgres_urls()
    try:
        with psycopg.connect(maintenance, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {SCRATCH_DB}")
            if action == "create":
                conn.execute(f"CREATE DATABASE {SCRATCH_DB}")
    except psycopg.OperationalError as exc:
        print(f"postgresql: not reachable ({str(exc).strip()}); skipped", file=sys.stderr)
        return False
    return True


def child_import(release: Path, batch_size: int) -> None:
    """Runs in a fresh process whose DATABASE_URL points at the scratch database."""
    import django

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsys_site.settings")
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from movies.importers.services import movielens_release_import
    from movies.stats import movie_stats_refresh

    call_command("migrate", verbosity=0)
    backend_pid = None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend_pid = cursor.fetchone()[0]
    cpu_before = process_cpu_seconds(), server_cpu_seconds(backend_pid)
    started = time.perf_counter()
    record = movielens_release_import(path=release, batch_size=batch_size, progress=sys.stderr.isatty())
    wall = time.perf_counter() - started
    cpu = process_cpu_seconds() - cpu_before[0] + server_cpu_seconds(backend_pid) - cpu_before[1]
    refresh_started = time.perf_counter()
    movie_stats_refresh()
    refresh = time.perf_counter() - refresh_started
    print(
        json.dumps(
            {
                "vendor": connection.vendor,
                "ratings": record.ratings,
                "seconds": wall,
                "cpu_seconds": cpu,
                "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "stats_refresh_seconds": refresh,
            }
        )
    )


def process_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def server_cpu_seconds(pid: int | None) -> float:
    """CPU time of the local PostgreSQL backend serving this process (0 when unknown)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_backend(backend: str, release: Path, workdir: Path, batch_size: int) -> dict | None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), LOG_LEVEL="INFO")
    if backend == "sqlite":
        env["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
    else:
        if not postgres_scratch("create"):
            return None
        env["DATABASE_URL"] = postgres_urls()[1]
    try:
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(release), "--batch-size", str(batch_size)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            check=True,
        )
    finally:
        if backend == "postgresql":
            postgres_scratch("drop")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=2_000_000, help="ratings in the synthetic release")
    parser.add_argument("--movies", type=int, default=62_000, help="movies in the synthetic release")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--batch-size", type=int, default=100_000)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_import(args.child, args.batch_size)
        return

    with tempfile.TemporaryDirectory(prefix="bench_import_") as temp:
        workdir = Path(temp)
        release = workdir / "ml-bench"
        started = time.perf_counter()
        release_generate(folder=release, rows=args.rows, movies=args.movies)
        print(
            f"generated {args.rows:,} ratings, {args.movies:,} movies in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        results = {}
        for backend in args.backends.split(","):
            result = run_backend(backend, release, workdir, args.batch_size)
            if result:
                results[backend] = result

    print(
        f"\nimport_movielens, {args.rows:,} ratings ({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}):"
    )
    for backend, result in results.items():
        rate = result["ratings"] / result["seconds"]
        cpu_rate = result["ratings"] / result["cpu_seconds"] if result["cpu_seconds"] else 0.0
        verdict = "ok" if rate >= TARGETS[backend] else "BELOW TARGET"
        print(
            f"  {backend:<10} wall {result['seconds']:6.1f} s = {rate:>8,.0f} ratings/s (target {TARGETS[backend]:,}: {verdict})"
            f" | CPU {result['cpu_seconds']:6.1f} s = {cpu_rate:>8,.0f} ratings per CPU-second"
            f" | peak RSS {result['max_rss_mb']:,.0f} MB | movie_stats_refresh alone {result['stats_refresh_seconds']:.1f} s"
        )
    print(
        "  CPU counts the importer process and, on PostgreSQL, its backend (not parallel index-build workers, not\n"
        "  I/O waits). On a busy machine wall time overstates the cost; CPU time hints at an idle machine's."
    )


if __name__ == "__main__":
    main()
