"""A cache outage (Redis down) costs speed-ups and rate limits, never a request."""

from __future__ import annotations

import logging

import pytest
from rest_framework.test import APIClient

from recsys_site.tests.unreachable_cache import UNREACHABLE

pytestmark = pytest.mark.django_db

READS = [
    "/api/movies/",
    "/api/movies/1/",
    "/api/genres/",
    "/api/ratings/",
    "/api/recommendations/",
    "/api/movies/1/similar/",
]


def test_every_read_still_serves_when_the_cache_raises_connection_error(settings, catalogue, alice, caplog):
    settings.CACHES = UNREACHABLE
    anonymous, signed_in = APIClient(), APIClient()
    signed_in.force_authenticate(alice)
    with caplog.at_level(logging.WARNING, logger="recsys_site.cache"):
        for url in READS:
            assert signed_in.get(url).status_code == 200, url
        assert anonymous.get("/api/movies/").status_code == 200
    assert "Cache unreachable, rate limiting goes on without it" in caplog.text


def test_a_rating_is_still_saved_when_the_cache_raises_connection_error(settings, catalogue, alice):
    settings.CACHES = UNREACHABLE
    api = APIClient()
    api.force_authenticate(alice)
    assert api.post("/api/ratings/", {"movie": 1, "rating": 4.5}, format="json").status_code == 201


def test_reads_serve_with_a_real_redis_client_and_nothing_listening(settings, catalogue, alice):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # port 1: connection refused at once
        }
    }
    api = APIClient()
    api.force_authenticate(alice)
    assert api.get("/api/movies/").status_code == 200
    assert api.get("/api/ratings/").status_code == 200
