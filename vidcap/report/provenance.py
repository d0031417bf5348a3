"""The report's provenance: models and revisions per stage, prompts with their wording and hash, software
versions, and the config used (secrets scrubbed)."""
from __future__ import annotations

import json
import platform
from importlib import metadata

import pandas as pd

from vidcap.prompts import get_prompt
from vidcap.redact import public_config


def _versions() -> list[tuple[str, str]]:
    out = [("python", platform.python_version())]
    for pkg in ("vidcap", "snakemake", "torch", "transformers", "av", "openai", "pandas", "pyarrow", "matplotlib"):
        try:
            out.append((pkg, metadata.version(pkg)))
        except metadata.PackageNotFoundError:
            pass
    return out


def _pair_counts(df: pd.DataFrame, key: str, detail: str) -> list[tuple[str, str, int]]:
    """(key, detail, rows) for each distinct non-empty ``key`` value with its ``detail`` ('' when the
    detail column is absent), commonest first; [] when ``key`` is not a column."""
    if key not in df.columns:
        return []
    cols = [c for c in (key, detail) if c in df.columns]
    sub = df[cols].astype("string").fillna("")
    sub = sub[sub[key] != ""]
    out = []
    for values, n in sub.value_counts().items():
        values = values if isinstance(values, tuple) else (values,)
        out.append((values[0], values[1] if len(values) > 1 else "", int(n)))
    return out


def provenance(df: pd.DataFrame, config: dict | None) -> dict:
    models = [{"stage": "caption", "model": model, "revision": revision, "rows": n}
              for model, revision, n in _pair_counts(df, "caption_model", "caption_revision")]
    configured = []
    with_column = {m["stage"] for m in models}
    for stage, sc in ((config or {}).get("stages") or {}).items():
        if not isinstance(sc, dict) or not sc.get("enabled") or stage in with_column:
            continue
        runner = sc.get("runner")
        block = sc.get(runner, {}) if runner else {}
        if isinstance(block, dict) and block.get("model"):
            configured.append({"stage": stage, "runner": runner, "model": block.get("model"),
                               "revision": block.get("revision") or "", "base_url": block.get("base_url") or ""})
    prompts = []
    for name, recorded, n in _pair_counts(df, "caption_prompt", "caption_prompt_hash"):
        entry = {"stage": "caption", "key": name, "hash": recorded, "rows": n, "system": "", "user": "",
                 "kind": "", "note": ""}
        try:
            p = get_prompt(name, (config or {}).get("prompts"))
            entry.update(system=p.system, user=p.user, kind=p.kind)
            if recorded and p.hash != recorded:
                entry["note"] = (f"the wording below (hash {p.hash}) is today's; the rows were made with "
                                 f"another wording (hash {recorded})")
        except KeyError:
            entry["note"] = "wording unknown (not a built-in prompt and not in the config)"
        prompts.append(entry)
    return {"models": models, "configured": configured, "prompts": prompts, "versions": _versions(),
            "config": json.dumps(public_config(config), indent=1, sort_keys=True) if config else ""}
