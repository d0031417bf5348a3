"""Workflow configuration: the schema shipped in the package, defaults and validation with readable messages.

The schema is ``vidcap/schema/config.yaml`` with one section per stage in
``vidcap/schema/stages/<stage>.yaml`` (assembled by ``load_schema``). Every message names the key
(dotted path) and what is allowed, e.g.
``config key 'shard_size': must be of type integer, got 'abc' (str)``.

``stage_settings(stage, params)`` is the one way a stage gets its settings: the stage's section of the
schema fills in every default and checks every value (errors name ``stages.<stage>.<key>``).

``WORKFLOW_KEYS`` is the one list of a stage section's keys that concern the workflow, not the stage's
results (a change reruns nothing); ``stage_params(config, stage)`` is a stage's section without them,
with a user-defined prompt's text alongside: what its jobs receive before plan hooks resolve
cross-stage defaults (``vidcap.workflow``), and what ``compare`` and ``estimate`` run the stage with.
"""
from __future__ import annotations

import copy
import functools
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator

from vidcap.errors import ConfigError
from vidcap.prompts import with_user_prompts

SCHEMA_DIR = Path(__file__).resolve().parent / "schema"

# keys of a stage section that concern the workflow, not the stage's results
WORKFLOW_KEYS = ("enabled", "resources", "append_to_text", "answers_file", "keep_failed")


@functools.lru_cache(maxsize=4)
def _load_schema(path: str | None) -> dict:
    main = Path(path) if path else SCHEMA_DIR / "config.yaml"
    with open(main, encoding="utf-8") as fh:
        schema = yaml.safe_load(fh)
    stages = schema["properties"]["stages"]["properties"]
    for part in sorted((main.parent / "stages").glob("*.yaml")):
        with open(part, encoding="utf-8") as fh:
            stages[part.stem] = yaml.safe_load(fh)
    return schema


def load_schema(path: str | Path | None = None) -> dict:
    """The whole workflow schema (a fresh copy): ``config.yaml`` with ``stages/*.yaml`` in place."""
    return copy.deepcopy(_load_schema(str(path) if path else None))


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
    elif v == "pattern" and isinstance(error.schema.get("type"), list):   # a number or one word (shard_size)
        kinds = " or ".join(t for t in error.schema["type"] if t != "string")
        msg = f"must be of type {kinds} or {error.validator_value.strip('^$')!r}, got {value!r} ({type(value).__name__})"
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


def stage_schema(stage: str) -> tuple[dict, dict]:
    """(the stage's schema section, the whole schema it resolves ``$ref``s against); ValueError if unknown.

    Both are the process's one parsed copy, shared by every call (no copy per call: ``clip_rows``
    called on its own checks its settings on every call): read them, never change them.
    """
    schema = _load_schema(None)
    sections = schema["properties"]["stages"]["properties"]
    if stage not in sections:
        raise ValueError(f"no schema section for stage {stage!r}; known: {', '.join(sorted(sections))}")
    return sections[stage], schema


def stage_settings(stage: str, params: dict | None, passthrough: tuple[str, ...] = ()) -> dict:
    """``params`` of ``stage`` with every schema default filled in and every value checked.

    ``enabled`` and ``resources`` (workflow concerns) are dropped; ``passthrough`` keys (values the
    workflow adds, such as a user prompt's text) are kept unchecked; every other key must be known
    to the stage's schema section. Raises ConfigError naming ``stages.<stage>.<key>`` and what is
    allowed.
    """
    section, root = stage_schema(stage)
    params = params or {}
    raw = {k: v for k, v in params.items() if k not in (*WORKFLOW_KEYS, *passthrough)}
    extra = {k: params[k] for k in passthrough if k in params}
    filled = fill_defaults(raw, section, root)
    check = {**section, "$defs": root.get("$defs", {})}
    errors = sorted(Draft202012Validator(check).iter_errors(filled), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [_describe(e, check).replace("config key '", f"config key 'stages.{stage}.", 1) for e in errors]
        raise ConfigError("invalid stage settings:\n  " + "\n  ".join(lines))
    filled = {k: v for k, v in filled.items() if k not in WORKFLOW_KEYS}
    return {**filled, **extra}


def stage_params(config: dict, stage: str) -> dict:
    """The settings of ``stage`` in a validated ``config`` that change its results (``WORKFLOW_KEYS``
    left out), with a user-defined prompt's text alongside (``vidcap.prompts.with_user_prompts``)."""

    params = {k: v for k, v in config["stages"][stage].items() if k not in WORKFLOW_KEYS}
    return with_user_prompts(params, config.get("prompts"))
