"""What a person locked out of signing in sees: one message for the login page and the token API."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def lockout_minutes() -> int:
    return settings.LOGIN_COOLOFF_MINUTES


def lockout_message() -> str:
    minutes = lockout_minutes()
    return (
        f"Too many failed sign-ins for this account or from this address: signing in is paused for "
        f"{minutes} minute{'s' if minutes != 1 else ''} after the last failed attempt. Try again later."
    )


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """django-axes' AXES_LOCKOUT_CALLABLE: the styled lockout page, 429 with Retry-After."""
    response = render(
        request,
        "registration/locked_out.html",
        {"message": lockout_message()},
        status=429,
    )
    response["Retry-After"] = str(lockout_minutes() * 60)
    return response
