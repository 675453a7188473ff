"""Template filters that name models the way people read them."""

from __future__ import annotations

from django import template

from training.models import algorithm_name as _algorithm_name

register = template.Library()


@register.filter
def algorithm_name(algorithm: str) -> str:
    """ "ppo" reads "PPO", "qlearning" "Q-learning"."""
    return _algorithm_name(algorithm or "")
