"""Checked changes to a config dataclass's settings: one rule for the CLI's FIELD=VALUE and for runs.

``settings_check(config_class, overrides, label)`` refuses an unknown setting, ``seed`` (set by
its own option or by the run), a value of another kind than the default's (lists stand for
tuples; ``None`` only where the annotation allows it) and a negative number where the default is
not negative. ``settings_apply`` then replaces them into a config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fits(default: Any, value: Any) -> bool:
    """Whether ``value`` (from JSON or a Python literal) can replace a setting whose default is ``default``."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return _is_number(value)
    if isinstance(default, int):
        return isinstance(value, int)
    if isinstance(default, tuple):
        return isinstance(value, list | tuple)
    return isinstance(value, type(default))


def settable(config_class: type) -> dict[str, Any]:
    """Every setting of ``config_class`` but ``seed``, with its default."""
    defaults = config_class()
    return {f.name: getattr(defaults, f.name) for f in fields(config_class) if f.name != "seed"}


def settings_check(config_class: type, overrides: Mapping[str, Any], label: str) -> None:
    """Raise ValueError, naming ``label`` and the setting, for the first change that cannot apply."""
    defaults = settable(config_class)
    optional = {f.name for f in fields(config_class) if "None" in str(f.type)}
    for name, value in overrides.items():
        if name not in defaults:
            raise ValueError(
                f"There is no setting {name!r} in {label}; its settings: {', '.join(sorted(defaults))}"
            )
        if value is None and name in optional:
            continue
        if not _fits(defaults[name], value):
            raise ValueError(
                f"The setting {label}.{name} = {value!r}: expected a value like {defaults[name]!r}"
            )
        if _is_number(value) and _is_number(defaults[name]) and value < 0 <= defaults[name]:
            raise ValueError(f"The setting {label}.{name} = {value!r}: must not be negative")


def settings_apply(config: Any, overrides: Mapping[str, Any] | None) -> Any:
    """``config`` with checked ``overrides`` replaced in (lists become tuples)."""
    if not overrides:
        return config
    return replace(config, **{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})
