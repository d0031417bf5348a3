"""The report's provenance: models and revisions per stage, prompts with their wording and hash, software
versions, and the config used (secrets scrubbed)."""
from __future__ import annotations

import json
import platform
from importlib import metadata

import pandas as pd

from vidcap.redact import public_config
from vidcap.stages.report import ReportPart


def _versions() -> list[tuple[str, str]]:
    out = [("python", platform.python_version())]
    for pkg in ("vidcap", "snakemake", "torch", "transformers", "av", "openai", "pandas", "pyarrow", "matplotlib"):
        try:
            out.append((pkg, metadata.version(pkg)))
        except metadata.PackageNotFoundError:
            pass
    return out


def provenance(df: pd.DataFrame, config: dict | None, parts: list[ReportPart]) -> dict:
    """Models and prompts the stages recorded (their ``ReportPart.provenance``), models configured for
    stages that record none, software versions and the config."""
    given = [part.provenance(df, config) for part in parts]
    models = [m for g in given for m in g.get("models", [])]
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
    prompts = [p for g in given for p in g.get("prompts", [])]
    return {"models": models, "configured": configured, "prompts": prompts, "versions": _versions(),
            "config": json.dumps(public_config(config), indent=1, sort_keys=True) if config else ""}
