"""Template context shared by every page."""

from __future__ import annotations

from django.http import HttpRequest

from .roles import is_annotator


def roles(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    authenticated = bool(user and user.is_authenticated)
    return {
        "is_annotator": authenticated and is_annotator(user),
        "is_staff": authenticated and user.is_staff,
    }


def rating_stars(request: HttpRequest) -> dict:
    """The half-star values every star widget renders."""
    from .views import STAR_VALUES

    return {"stars": STAR_VALUES}
