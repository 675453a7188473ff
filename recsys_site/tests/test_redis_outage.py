"""A real Redis (a private redis-server) killed under load: reads stay 200, writes are kept, it recovers.

The cache and the Celery broker both point at a redis-server started for this test on a free port.
Threads drive reads and writes through the test client while the server is killed with SIGKILL,
left dead for a few seconds, and started again on the same port.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from movies.models import Rating
from movies.services import account_create
from recsys_site.celery import app
from training.models import TrainingRun

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]

API_READS = ["/api/movies/", "/api/movies/1/", "/api/ratings/", "/api/recommendations/"]
PAGE_READS = ["/movies/", "/movies/1/"]
STAFF_PAGE_READS = ["/staff/leaderboard/", "/staff/plots/ratings.png"]
READ_THREADS = 3
OUTAGE_SECONDS = 3.0
LOAD_BEFORE_AND_AFTER_SECONDS = 1.5


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateRedis:
    """A redis-server on its own port, without persistence, that can be killed and started again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as ping:
                    ping.sendall(b"PING\r\n")
                    if ping.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.kill()


@pytest.fixture
def private_redis(settings) -> Iterator[PrivateRedis]:
    """The cache and the broker on a private redis-server; the Celery app's pools are rebuilt around it."""
    redis = PrivateRedis()
    redis.start()
    # The Celery app reads its configuration once, on first use: save it before the settings change,
    # then point the app (and fresh connection pools) at this server.
    saved = app.conf.broker_url, app.conf.broker_transport_options
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis.url}
    }
    settings.CELERY_BROKER_URL = redis.url
    app.conf.broker_url, app.conf.broker_transport_options = redis.url, {}
    app._pool, app.amqp._producer_pool = None, None
    try:
        yield redis
    finally:
        redis.stop()
        if app._pool is not None:
            app._pool.force_close_all()
        app.conf.broker_url, app.conf.broker_transport_options = saved
        app._pool, app.amqp._producer_pool = None, None


@dataclass
class Outcome:
    phase: str
    method: str
    url: str
    status: int


@dataclass
class Load:
    """Requests made by the load threads, each tagged with the phase it started in."""

    phase: str = "before"
    stop: threading.Event = field(default_factory=threading.Event)
    outcomes: list[Outcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # The test database on SQLite is in memory with a shared cache, whose table locks refuse a
    # second writer at once ("database table is locked"): there the requests take turns. A file
    # database in WAL mode (what the site runs) has no such limit; PostgreSQL runs them concurrently.
    serial: contextlib.AbstractContextManager = field(
        default_factory=lambda: (
            threading.Lock() if connection.vendor == "sqlite" else contextlib.nullcontext()
        )
    )

    def record(self, phase: str, method: str, url: str, status: int) -> None:
        with self.lock:
            self.outcomes.append(Outcome(phase, method, url, status))

    def run(self, body) -> threading.Thread:
        def target() -> None:
            try:
                while not self.stop.is_set():
                    body()
            except Exception as error:  # a test client re-raises a view's exception: that is a 500
                with self.lock:
                    self.errors.append(f"{type(error).__name__}: {error}")
            finally:
                connection.close()  # each thread has its own database connection

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        return thread


def test_reads_stay_200_and_no_rating_is_lost_while_redis_is_killed_and_restarted(
    private_redis, catalogue, sam
):
    writers = [account_create(username=f"writer{n}", password="writer-pass-123") for n in range(40)]
    load = Load()

    def reads_as(user):
        api, pages = APIClient(), Client()
        api.force_authenticate(user)
        pages.force_login(user)
        page_urls = PAGE_READS + (STAFF_PAGE_READS if user.is_staff else [])
        urls = itertools.cycle([(api, url) for url in API_READS] + [(pages, url) for url in page_urls])

        def body() -> None:
            client, url = next(urls)
            phase = load.phase
            with load.serial:
                status = client.get(url).status_code
            load.record(phase, "GET", url, status)

        return body

    # Every rating is a new (account, movie) pair, so each 201 must leave its own row.
    pairs = iter([(user, movie_id) for user in writers for movie_id in range(1, 12)])
    written: list[tuple[int, int, str]] = []
    rating_clients = {user.pk: APIClient() for user in writers}
    for user in writers:
        rating_clients[user.pk].force_authenticate(user)

    def write_a_rating() -> None:
        try:
            user, movie_id = next(pairs)
        except StopIteration:
            time.sleep(0.05)
            return
        phase = load.phase
        with load.serial:
            response = rating_clients[user.pk].post(
                "/api/ratings/", {"movie": movie_id, "rating": 3.5}, format="json"
            )
        load.record(phase, "POST", "/api/ratings/", response.status_code)
        if response.status_code == 201:
            with load.lock:
                written.append((user.pk, movie_id, phase))

    threads = [load.run(reads_as(sam if n == 0 else writers[n])) for n in range(READ_THREADS)]
    threads.append(load.run(write_a_rating))

    staff = APIClient()
    staff.force_authenticate(sam)
    time.sleep(LOAD_BEFORE_AND_AFTER_SECONDS)

    load.phase = "outage"
    private_redis.kill()
    time.sleep(OUTAGE_SECONDS / 2)
    with load.serial:
        retrain = staff.post("/api/training/runs/", {"kind": "base"}, format="json")
    time.sleep(OUTAGE_SECONDS / 2)

    private_redis.start()
    load.phase = "after"
    time.sleep(LOAD_BEFORE_AND_AFTER_SECONDS)
    with load.serial:
        retrain_after = staff.post("/api/training/runs/", {"kind": "base"}, format="json")
    load.stop.set()
    for thread in threads:
        thread.join(timeout=30)

    assert not load.errors, load.errors[:5]
    by_phase = {
        phase: [o for o in load.outcomes if o.phase == phase] for phase in ("before", "outage", "after")
    }
    for phase, outcomes in by_phase.items():
        reads = [o for o in outcomes if o.method == "GET"]
        assert reads, f"no reads {phase} the outage"
        assert {o.url for o in reads} >= set(API_READS + PAGE_READS + STAFF_PAGE_READS) or phase != "outage"
        assert [o for o in reads if o.status != 200] == [], phase
        writes = [o for o in outcomes if o.method == "POST"]
        assert writes and all(o.status == 201 for o in writes), (phase, [o.status for o in writes][:10])

    # Nothing lost: every accepted rating is a row, those made while Redis was dead included.
    assert any(phase == "outage" for _, _, phase in written)
    stored = set(Rating.objects.filter(rater__user__in=writers).values_list("rater__user_id", "movie_id"))
    assert {(user_id, movie_id) for user_id, movie_id, _ in written} == stored

    # The retrain asked for during the outage is refused with Retry-After and holds no slot.
    assert retrain.status_code == 503 and retrain["Retry-After"] == "30", retrain.content
    refused, queued = TrainingRun.objects.order_by("pk")
    assert refused.status == TrainingRun.Status.FAILED and not refused.in_flight
    # With Redis back the broker takes the next one: the connections recovered.
    assert retrain_after.status_code == 202, retrain_after.content
    assert queued.pk == retrain_after.data["id"] and queued.celery_task_id
