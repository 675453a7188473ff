"""Small Celery tasks of the movies app."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="movies.ping")
def ping(value: str = "pong") -> str:
    """Echo a value: proves that a worker picks up tasks from the broker and stores results."""
    return value
