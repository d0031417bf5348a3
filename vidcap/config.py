"""Workflow configuration: defaults from ``config/schema.yaml`` and validation with readable messages.

Every message names the key (dotted path) and what is allowed, e.g.
``config key 'shard_size': must be of type integer, got 'abc' (str)``.
"""
from __future__ import annotations

import copy
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "config" / "schema.yaml"


class ConfigError(ValueError):
    """One or more invalid configuration values; the message lists each."""


def load_schema(path: str | Path | None = None) -> dict:
    with open(path or SCHEMA_PATH, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _resolve(schema: dict, root: dict) -> dict:
    ref = schema.get("$ref")
    if ref and ref.startswith("#/"):
        node = root
        for part in ref[2:].split("/"):
            node = node[part]
        return {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def fill_defaults(config: dict, schema: dict, root: dict | None = None) -> dict:
    """A copy of ``config`` with every missing key that has a schema ``default`` filled in."""
    root = root or schema
    schema = _resolve(schema, root)
    out = copy.deepcopy(config)
    for key, sub in schema.get("properties", {}).items():
        sub = _resolve(sub, root)
        if key not in out and "default" in sub:
            out[key] = copy.deepcopy(sub["default"])
        if isinstance(out.get(key), dict) and sub.get("type") == "object":
            out[key] = fill_defaults(out[key], sub, root)
    return out


def _describe(error, root: dict) -> str:
    key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    value = error.instance
    v = error.validator
    if v == "type":
        want = error.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        msg = f"must be of type {want}, got {value!r} ({type(value).__name__})"
    elif v == "enum":
        msg = f"must be one of {', '.join(map(repr, error.validator_value))}; got {value!r}"
    elif v == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        key = f"{key}.{missing}" if error.absolute_path else missing
        msg = "is required but missing"
    elif v == "additionalProperties":
        allowed = sorted(_resolve(error.schema, root).get("properties", {}))
        extra = sorted(set(value) - set(allowed))
        key = ".".join([*map(str, error.absolute_path), extra[0]]) if extra else key
        msg = f"is not a known key; allowed here: {', '.join(allowed)}"
    elif v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        op = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[v]
        msg = f"must be {op} {error.validator_value}; got {value!r}"
    elif v == "pattern":
        msg = f"must match {error.validator_value}; got {value!r}"
    elif v == "minLength":
        msg = f"must not be empty; got {value!r}"
    else:
        msg = error.message
    return f"config key '{key}': {msg}"


def validate_config(config: dict, schema_path: str | Path | None = None) -> dict:
    """Defaults filled in and every value checked; raises ConfigError listing all problems."""
    schema = load_schema(schema_path)
    config = fill_defaults(config or {}, schema)
    errors = sorted(Draft202012Validator(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(_describe(e, schema) for e in errors))
    return config
