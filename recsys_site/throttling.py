"""API rate limits counted per fixed window, one cache increment per request.

DRF's own throttles keep the time of every request in the window as a list in the cache, and read,
filter and write back the whole list on each request: O(rate) work. At the default user limit
(120,000 a minute) a busy client's list reaches tens of thousands of entries, about 0.5 ms of
pickling per request with the local-memory cache, and the whole list crosses the network twice per
request with Redis. A counter per window costs the same at any rate. The price is burstiness at a
window's edge (up to twice the limit across two adjacent windows), acceptable for abuse limits.

When the cache is unreachable the throttles fail open (and log it): a Redis outage lifts the rate
limits for its duration instead of turning every API request into a 500. The sign-in lockout
(django-axes) keeps its counts in the database, so it holds during an outage.
"""

from __future__ import annotations

from rest_framework import throttling

from .cache import cache_failure_log


class FixedWindowMixin:
    """Replaces ``SimpleRateThrottle``'s request history with one counter per window."""

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        window = int(self.timer() // self.duration)
        self.window_end = (window + 1) * self.duration
        key = f"{self.key}:{window}"
        try:
            count = self._count(key)
        except Exception as error:  # the cache is down (Redis outage): serve rather than refuse all
            cache_failure_log("rate limiting", error)
            return True
        return count <= self.num_requests

    def _count(self, key: str) -> int:
        self.cache.add(key, 0, self.duration)
        try:
            return self.cache.incr(key)
        except ValueError:  # the window expired between add and incr
            self.cache.set(key, 1, self.duration)
            return 1

    def wait(self) -> float:
        """Seconds until the window ends (DRF sends it as Retry-After)."""
        return max(0.0, self.window_end - self.timer())


class AnonRateThrottle(FixedWindowMixin, throttling.AnonRateThrottle):
    """Anonymous requests, per client IP (scope ``anon``)."""


class UserRateThrottle(FixedWindowMixin, throttling.UserRateThrottle):
    """Authenticated requests, per account (scope ``user``)."""


class LoginAddressThrottle(FixedWindowMixin, throttling.SimpleRateThrottle):
    """Sign-in attempts per client address, signed in or not (scope ``login_address``)."""

    scope = "login_address"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginAccountThrottle(FixedWindowMixin, throttling.SimpleRateThrottle):
    """Sign-in attempts per account name, from any address (scope ``login_account``)."""

    scope = "login_account"

    def get_cache_key(self, request, view) -> str | None:
        username = request.data.get("username") if hasattr(request.data, "get") else None
        if not isinstance(username, str) or not username:
            return None  # nothing to count against; the serializer refuses the request
        return self.cache_format % {"scope": self.scope, "ident": username.strip().lower()[:150]}
