"""Numbers read from ``VIDCAP_*`` environment variables: one place that checks them and, for a value
that is not one, names the variable and what it takes (``ConfigError``), instead of a bare
``ValueError`` from ``int()`` deep in an import."""
from __future__ import annotations

import os

from vidcap.errors import ConfigError


def env_int(name: str, default: int, least: int = 0) -> int:
    """``$name`` as an integer >= ``least`` (``default`` when unset or empty)."""
    raw = os.environ.get(name, "").strip()
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = least - 1
    if value < least:
        raise ConfigError(f"{name}={raw!r}: expected a whole number >= {least} (default {default})")
    return value


def env_float(name: str, default: float, positive: bool = True) -> float:
    """``$name`` as a number (> 0 when ``positive``, else >= 0; ``default`` when unset or empty)."""
    raw = os.environ.get(name, "").strip()
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (value > 0 if positive else value >= 0):
        bound = "> 0" if positive else ">= 0"
        raise ConfigError(f"{name}={raw!r}: expected a number {bound} (default {default:g})")
    return value
