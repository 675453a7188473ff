"""Benchmark the served API over HTTP: GET /api/recommendations/ against a trivial DRF endpoint, under gunicorn.

    .venv/bin/python bench/bench_http.py [--seconds 20] [--concurrency 16] [--workers 2]
        [--database-url postgresql://postgres@127.0.0.1:5432/test]

In a scratch folder used as VAR_DIR (SQLite, or with ``--database-url`` a scratch database created
on that PostgreSQL server and dropped at the end; local-memory cache; artifacts inside it) it migrates,
imports data/ml-latest-small, trains the base recommender, and creates an account with 50 ratings
of the most-rated movies and an API token. It then starts ``gunicorn recsys_site.wsgi`` on a free
loopback port, warms every worker up, and loads two endpoints in turn with the same concurrency:

- ``GET /api/recommendations/?k=20``: the trained recommender scoring the account's 50 ratings;
- ``GET /api/ratings/?page_size=1``: authenticated, one small query, the cost of the stack itself.

The load generator is ``wrk`` when installed (``apt-get install -y wrk``), else threads with
persistent ``http.client`` connections. Either way it runs on the same cores as the server (2 on
the reference machine), so absolute figures are a lower bound; the ratio of the two endpoints'
throughputs is the comparable figure. Errors are non-2xx/3xx responses plus socket errors.
Targets: p99 < 50 ms and zero errors on each endpoint, recommendations/trivial throughput >= 0.7
(issue 16: at concurrency 64, 2 workers, PostgreSQL).
Everything is removed at the end, gunicorn included, even on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT / "data" / "ml-latest-small"
HOST = "127.0.0.1"
ENDPOINTS = {
    "recommendations": "/api/recommendations/?k=20",
    "trivial (ratings)": "/api/ratings/?page_size=1",
}
TARGET_P99_MS = 50.0
TARGET_RATIO = 0.7
WARM_UP_SECONDS = 3  # per endpoint, at full concurrency, so that every worker loads the model
N_RATINGS = 50

ACCOUNT_SCRIPT = f"""
import secrets
from django.db.models import F
from rest_framework.authtoken.models import Token
from movies.models import Movie
from movies.services import account_create, rating_set

user = account_create(username="bench_http", password=secrets.token_urlsafe(24))
popular = Movie.objects.order_by(F("num_ratings").desc(), "id").values_list("id", flat=True)[:{N_RATINGS}]
for position, movie_id in enumerate(popular):
    # 7 is coprime with 10: every ten ratings cover 0.5 to 5.0 once, in a scrambled order.
    rating_set(user=user, movie_id=movie_id, value=0.5 * (1 + (7 * position) % 10))
token, _ = Token.objects.get_or_create(user=user)
print("TOKEN", token.key)
"""


@dataclass
class LoadResult:
    p50_ms: float
    p99_ms: float
    requests: int
    requests_per_s: float
    non_2xx: int
    socket_errors: int

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors


def server_env(var_dir: Path, database_url: str | None = None) -> dict[str, str]:
    """The environment of every Django process: the scratch folder, SQLite (or the scratch
    PostgreSQL database) and local memory."""
    env = {
        key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL", "DEBUG")
    }
    if database_url:
        env["DATABASE_URL"] = database_url
    env.update(
        VAR_DIR=str(var_dir),
        ARTIFACTS_DIR=str(var_dir / "artifacts"),
        DJANGO_SETTINGS_MODULE="recsys_site.settings",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
    )
    return env


def manage(env: dict[str, str], *args: str) -> str:
    """Run one manage.py command, print how long it took, and return its standard output."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    label = " ".join(args[:2]) if args[0] != "shell" else "create account (shell -c)"
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"manage.py {label} failed with exit code {done.returncode}")
    print(f"  {label}: {time.perf_counter() - started:.1f} s")
    return done.stdout


def scratch_database(url: str) -> tuple[str, str]:
    """Create an empty database on the server ``url`` names; returns its name and its URL."""
    import psycopg

    name = f"bench_http_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    return name, url.rsplit("/", 1)[0] + "/" + name


def drop_database(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def get(port: int, path: str, token: str, timeout: float = 10.0) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Authorization": f"Token {token}"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_until_serving(
    server: subprocess.Popen, port: int, token: str, log: Path, timeout: float = 90.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with code {server.returncode}:\n{log.read_text()[-4000:]}")
        try:
            status, _ = get(port, ENDPOINTS["trivial (ratings)"], token, timeout=2.0)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"gunicorn did not answer within {timeout:.0f} s:\n{log.read_text()[-4000:]}")


def check_responses(port: int, token: str) -> None:
    """A few sequential requests per endpoint: all 200, and recommendations come from the trained model."""
    for name, path in ENDPOINTS.items():
        for _ in range(5):
            status, body = get(port, path, token)
            if status != 200:
                raise SystemExit(f"{name}: HTTP {status}: {body[:500]!r}")
    payload = json.loads(get(port, ENDPOINTS["recommendations"], token)[1])
    if payload["policy"] != "base" or len(payload["results"]) != 20:
        raise SystemExit(f"recommendations are not the trained model's top 20: policy {payload['policy']!r}")
    print(
        f"  responses checked: HTTP 200, recommendations from policy 'base' v{payload['version']}, 20 items"
    )


_WRK_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def parse_wrk(output: str) -> LoadResult:
    def latency(percent: str) -> float:
        found = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.MULTILINE)
        if found is None:
            raise ValueError(f"no {percent}% latency in wrk output:\n{output}")
        return float(found[1]) * _WRK_UNITS_MS[found[2]]

    requests = re.search(r"(\d+) requests in", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if requests is None or rate is None:
        raise ValueError(f"unexpected wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)  # printed only when non-zero
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return LoadResult(
        p50_ms=latency("50"),
        p99_ms=latency("99"),
        requests=int(requests[1]),
        requests_per_s=float(rate[1]),
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=sum(int(count) for count in sockets.groups()) if sockets else 0,
    )


def load_wrk(port: int, path: str, token: str, *, seconds: int, concurrency: int) -> LoadResult:
    threads = min(concurrency, os.cpu_count() or 1)
    command = [
        "wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "5s", "--latency",
        "-H", f"Authorization: Token {token}", f"http://{HOST}:{port}{path}",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30, check=True)
    return parse_wrk(done.stdout)


def load_python(port: int, path: str, token: str, *, seconds: int, concurrency: int) -> LoadResult:
    """Closed-loop load: each thread sends its next request when the previous one has answered."""
    headers = {"Authorization": f"Token {token}"}
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    non_2xx = [0] * concurrency
    socket_errors = [0] * concurrency
    start = threading.Barrier(concurrency + 1)
    deadline = 0.0

    def worker(slot: int) -> None:
        connection = http.client.HTTPConnection(HOST, port, timeout=5.0)
        start.wait()
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            try:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                socket_errors[slot] += 1
                connection.close()  # http.client reconnects on the next request
                continue
            latencies[slot].append(time.perf_counter() - sent)
            if not 200 <= response.status < 400:
                non_2xx[slot] += 1
        connection.close()

    threads = [threading.Thread(target=worker, args=(slot,), daemon=True) for slot in range(concurrency)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline = began + seconds
    start.wait()
    for thread in threads:
        thread.join(timeout=seconds + 30)
    elapsed = time.perf_counter() - began
    timings = sorted(latency for per_thread in latencies for latency in per_thread)
    if not timings:
        raise SystemExit(f"{path}: no request completed ({sum(socket_errors)} socket errors)")

    def percentile(fraction: float) -> float:
        return timings[min(len(timings) - 1, int(fraction * len(timings)))] * 1e3

    return LoadResult(
        p50_ms=percentile(0.50),
        p99_ms=percentile(0.99),
        requests=len(timings),
        requests_per_s=len(timings) / elapsed,
        non_2xx=sum(non_2xx),
        socket_errors=sum(socket_errors),
    )


def report(results: dict[str, LoadResult]) -> None:
    print(f"\n{'endpoint':<20}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'requests':>10}{'errors':>8}   targets")
    for name, result in results.items():
        p99_mark = "met" if result.p99_ms < TARGET_P99_MS else "MISSED"
        errors_mark = "met" if result.errors == 0 else "MISSED"
        print(
            f"{name:<20}{result.p50_ms:>9.2f}{result.p99_ms:>9.2f}{result.requests_per_s:>9.1f}"
            f"{result.requests:>10}{result.errors:>8}   p99 < {TARGET_P99_MS:.0f} ms: {p99_mark}; "
            f"zero errors: {errors_mark} (non-2xx {result.non_2xx}, socket {result.socket_errors})"
        )
    recommendations, trivial = results.values()
    ratio = recommendations.requests_per_s / trivial.requests_per_s
    print(
        f"throughput ratio recommendations/trivial: {ratio:.2f}   "
        f"target >= {TARGET_RATIO}: {'met' if ratio >= TARGET_RATIO else 'MISSED'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20, help="Load duration per endpoint.")
    parser.add_argument("--concurrency", type=int, default=16, help="Open connections (requests in flight).")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers.")
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class (sync, gthread).")
    parser.add_argument("--threads", type=int, default=1, help="Threads per gthread worker.")
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto",
                        help="Load generator; auto uses wrk when it is installed.")  # fmt: skip
    parser.add_argument("--database-url", default=None,
                        help="A PostgreSQL server to create a scratch database on (dropped at the end); SQLite without.")  # fmt: skip
    args = parser.parse_args()
    use_wrk = args.generator == "wrk" or (args.generator == "auto" and shutil.which("wrk") is not None)
    load = load_wrk if use_wrk else load_python

    scratch = Path(tempfile.mkdtemp(prefix="bench_http_"))
    server: subprocess.Popen | None = None
    database = scratch_database(args.database_url) if args.database_url else None
    try:
        env = server_env(scratch, database[1] if database else None)
        print(f"database: {'PostgreSQL, scratch database ' + database[0] if database else 'SQLite'}")
        print(f"== set-up in {scratch} ==")
        manage(env, "migrate", "--no-input", "-v", "0")
        manage(env, "import_movielens", str(DATASET), "--no-progress")
        manage(env, "train", "base", "--no-progress")
        token = re.search(r"^TOKEN (\w+)$", manage(env, "shell", "-c", ACCOUNT_SCRIPT), re.MULTILINE)[1]

        port = free_port()
        log = scratch / "gunicorn.log"
        gunicorn = Path(sys.executable).with_name("gunicorn")
        command = [
            str(gunicorn),
            "recsys_site.wsgi",
            "--bind",
            f"{HOST}:{port}",
            "--workers",
            str(args.workers),
            "--worker-class",
            args.worker_class,
            "--threads",
            str(args.threads),
        ]
        print(f"\n== {' '.join(command[1:])} ==")
        with log.open("wb") as log_file:
            server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        wait_until_serving(server, port, token, log)
        check_responses(port, token)
        for path in ENDPOINTS.values():
            load(port, path, token, seconds=WARM_UP_SECONDS, concurrency=args.concurrency)
        print(f"  warm-up: {WARM_UP_SECONDS} s per endpoint at concurrency {args.concurrency}")

        generator = "wrk" if use_wrk else "Python threads (sharing the GIL and the cores with the server)"
        print(
            f"\n== load: {args.seconds} s per endpoint, concurrency {args.concurrency}, "
            f"{args.workers} {args.worker_class} workers, generator {generator} =="
        )
        print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        results = {}
        for name, path in ENDPOINTS.items():
            results[name] = load(port, path, token, seconds=args.seconds, concurrency=args.concurrency)
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        report(results)
        if server.poll() is not None:
            raise SystemExit(f"gunicorn died during the load:\n{log.read_text()[-4000:]}")
    finally:
        if server is not None and server.poll() is None:
            server.terminate()  # SIGTERM: gunicorn stops its workers gracefully
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(scratch, ignore_errors=True)
        if database is not None:
            drop_database(args.database_url, database[0])


if __name__ == "__main__":
    main()
