"""URL path converters: ``<id:pk>``, an id that fits the database's integer column, else no match (404)."""

from __future__ import annotations

# PostgreSQL's integer: a larger id cannot exist, and querying for one is a database error (a 500).
MAX_ID = 2**31 - 1


class IdConverter:
    regex = "[0-9]{1,10}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > MAX_ID:
            raise ValueError(f"{number} is larger than any id")  # Django then tries the next route
        return number

    def to_url(self, value: int) -> str:
        return str(value)
