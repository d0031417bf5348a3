"""Numbers read from ``VIDCAP_*`` environment variables: one place that checks them and, for a value
that is not one, names the variable and what it takes (``ConfigError``), instead of a bare
``ValueError`` from ``int()`` deep in an import."""
from __future__ import annotations

import os

from vidcap.errors import ConfigError


def env_int(name: str, default: int, least: int = 0) -> int:
    """``$name`` as an integer >= ``least`` (``default`` when unset or empty)."""
    return _read(name, default, int, lambda v: v >= least, f"a whole number >= {least} (default {default})")


def env_float(name: str, default: float, positive: bool = True) -> float:
    """``$name`` as a number (> 0 when ``positive``, else >= 0; ``default`` when unset or empty)."""
    return _read(name, default, float, (lambda v: v > 0) if positive else (lambda v: v >= 0),
                 f"a number {'> 0' if positive else '>= 0'} (default {default:g})")


def _read(name: str, default, parse, ok, expected: str):
    raw = os.environ.get(name, "").strip()
    if raw == "":
        return default
    try:
        value = parse(raw)
    except ValueError:
        value = None
    if value is None or not ok(value):
        raise ConfigError(f"{name}={raw!r}: expected {expected}")
    return value
