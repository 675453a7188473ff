"""Cost of the API rate limit per request, as the number of requests in the current window grows.

    .venv/bin/python bench/bench_throttle.py [--requests 20000]

Compares DRF's ``UserRateThrottle`` (a list of every request time in the window, read and written
back whole on each request) with ``recsys_site.throttling.UserRateThrottle`` (one counter per
window), both at the project's default user limit of 120,000 a minute, on a private local-memory
cache. Prints the mean time of one ``allow_request`` (100 calls) after 1,000, 10,000 and
``--requests`` requests in the window. With Redis the list also crosses the network twice.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsys_site.settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests", type=int, default=20_000, help="Requests in the window at the last mark."
    )
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.cache.backends.locmem import LocMemCache
    from rest_framework import throttling
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from recsys_site.throttling import UserRateThrottle

    request = Request(APIRequestFactory().get("/api/"))
    request.user = get_user_model()(pk=1, username="bench")  # unsaved: the throttle only reads its pk
    marks = sorted({1_000, 10_000, args.requests})
    print(f"mean ms per allow_request at N requests in the window (limit 120000/minute), N = {marks}")
    for name, base in [("DRF UserRateThrottle (history list)", throttling.UserRateThrottle),
                       ("recsys_site UserRateThrottle (fixed window)", UserRateThrottle)]:  # fmt: skip
        throttle_class = type(
            "Throttle", (base,), {"rate": "120000/minute", "cache": LocMemCache(str(uuid.uuid4()), {})}
        )
        costs = []
        for count in range(1, marks[-1] + 1):
            if count in marks:
                started = time.perf_counter()
                for _ in range(100):
                    throttle_class().allow_request(request, None)
                costs.append((time.perf_counter() - started) / 100 * 1e3)
            throttle_class().allow_request(request, None)
        print(
            f"  {name:<46}"
            + "  ".join(f"{n:>6}: {cost:.3f} ms" for n, cost in zip(marks, costs, strict=True))
        )


if __name__ == "__main__":
    main()
