"""A cache backend that fails like Redis during an outage: every call raises ConnectionError."""

from __future__ import annotations

from django.core.cache.backends.base import BaseCache

UNREACHABLE = {"default": {"BACKEND": "recsys_site.tests.unreachable_cache.UnreachableCache"}}


class UnreachableCache(BaseCache):
    def __init__(self, location, params):
        super().__init__(params)

    def _fail(self, *args, **kwargs):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    add = get = set = touch = delete = incr = clear = has_key = get_many = set_many = _fail
