"""The cache as an optimisation only: when it is unreachable (Redis down), reads miss and writes are skipped.

Every use of the cache in the project is a speed-up or an abuse limit, never the only copy of
anything, so an outage must cost time, not requests. Errors are logged, at most once a minute per
kind of use, so an outage does not flood the log with one line per request.
"""

from __future__ import annotations

import logging
import time

from django.core.cache import cache

logger = logging.getLogger(__name__)

LOG_EVERY_SECONDS = 60.0
_last_logged: dict[str, float] = {}


def cache_failure_log(use: str, error: BaseException) -> None:
    """Logs that the cache failed for ``use`` (a short name), once a minute per use."""
    now = time.monotonic()
    if now - _last_logged.get(use, -LOG_EVERY_SECONDS) >= LOG_EVERY_SECONDS:
        _last_logged[use] = now
        logger.warning("Cache unreachable, %s goes on without it: %s: %s", use, type(error).__name__, error)


def cache_get(key: str, *, use: str, default=None):
    try:
        return cache.get(key, default)
    except Exception as error:  # any backend's connection error; the value is only a shortcut
        cache_failure_log(use, error)
        return default


def cache_set(key: str, value, *, use: str, timeout: float | None = None) -> None:
    try:
        cache.set(key, value, timeout=timeout)
    except Exception as error:
        cache_failure_log(use, error)
