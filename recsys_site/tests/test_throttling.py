"""The fixed-window API throttles: limits, Retry-After, per-account keys, constant-size state."""

from __future__ import annotations

import uuid

import pytest
from django.core.cache.backends.locmem import LocMemCache
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from recsys_site.throttling import AnonRateThrottle, UserRateThrottle

NOW = [0.0]  # the fake clock the throttles read; set by the clock fixture


def make_view(throttle_base, rate: str):
    cache = LocMemCache(f"throttle-tests-{uuid.uuid4()}", {})  # locmem caches of one name share storage

    class Throttle(throttle_base):
        pass

    Throttle.rate = rate
    Throttle.cache = cache
    Throttle.timer = staticmethod(lambda: NOW[0])

    class View(APIView):
        permission_classes = []
        throttle_classes = [Throttle]

        def get(self, request):
            return Response({"ok": True})

    return View.as_view(), cache


@pytest.fixture
def clock():
    NOW[0] = 1_000_020.0  # 1,000,020 = 16,667 x 60: the start of a minute
    yield NOW


def test_an_account_gets_its_limit_then_429_with_retry_after_until_the_window_ends(clock, alice, bob):
    view, _ = make_view(UserRateThrottle, "3/minute")
    factory = APIRequestFactory()

    def call(user):
        request = factory.get("/x/")
        force_authenticate(request, user)
        return view(request)

    assert [call(alice).status_code for _ in range(3)] == [200, 200, 200]
    clock[0] += 15
    refused = call(alice)
    assert refused.status_code == 429 and refused["Retry-After"] == "45"
    assert call(bob).status_code == 200  # another account has its own counter
    clock[0] += 45  # the next minute
    assert call(alice).status_code == 200


def test_anonymous_clients_are_counted_per_address(clock):
    view, _ = make_view(AnonRateThrottle, "2/second")
    factory = APIRequestFactory()
    first = [view(factory.get("/x/", REMOTE_ADDR="10.0.0.1")).status_code for _ in range(3)]
    assert first == [200, 200, 429]
    assert view(factory.get("/x/", REMOTE_ADDR="10.0.0.2")).status_code == 200


def test_the_state_is_one_counter_whatever_the_rate(clock, alice):
    view, cache = make_view(UserRateThrottle, "100000/minute")
    factory = APIRequestFactory()
    for _ in range(500):
        request = factory.get("/x/")
        force_authenticate(request, alice)
        assert view(request).status_code == 200
    window = int(clock[0] // 60)
    assert cache.get(f"throttle_user_{alice.pk}:{window}") == 500
