"""The three roles: end user (any account), annotator (group member) and admin (staff)."""

from __future__ import annotations

from django.conf import settings

from .selectors import user_rating_count

ANNOTATORS_GROUP = "annotators"


def is_annotator(user) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_staff:
        return True
    return user.groups.filter(name=ANNOTATORS_GROUP).exists()


def landing_url_name(user) -> str:
    """Where a role works, as a URL name: where logging in (and the home page for staff) leads.

    Staff go to the staff dashboard, annotators to the comparison queue, end users who have not
    rated enough to be recommended to onboarding, everybody else to their recommendations.
    """
    if user.is_staff:
        return "staff-dashboard"
    if is_annotator(user):
        return "compare"
    if user_rating_count(user=user) < settings.ONBOARDING_MIN_RATINGS:
        return "onboarding"
    return "recommendations"
