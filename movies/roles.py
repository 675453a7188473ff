"""The three roles: end user (any account), annotator (group member) and admin (staff)."""

from __future__ import annotations

ANNOTATORS_GROUP = "annotators"


def is_annotator(user) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_staff:
        return True
    return user.groups.filter(name=ANNOTATORS_GROUP).exists()
