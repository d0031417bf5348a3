"""Damaged files of a run folder, found before Snakemake plans the run (``Plan.set_aside_damaged``).

Every file the workflow makes is checked cheaply (a few bytes, or a small JSON file parsed):

* Parquet (shard tables, stage outputs, the merged table and each part of ``<name>/table/``, the clip
  table): magic bytes and footer (a damaged part sets its whole part folder aside, so the merge runs again);
* JSON (``shards/manifest.json``, ``settings/<stage>.json``, ``stats/<stage>/<shard>.json``, the
  summary, ``config.json``): it parses;
* CSV (merged table, summary, judge table, clip tables) and JSON lines (answers): they end with a
  newline (the last line of ``.jsonl`` parses); the report ends with ``</html>``.

A cut that falls exactly on a line boundary of a CSV is not seen. A damaged file is renamed to
``<name>.damaged`` (named on stderr) with what must be made again with it, so the next jobs rebuild
it. Snakemake does not remake a missing file whose users are up to date, so a file goes with the
outputs that use it: a stats file or settings file with its stage's outputs (the jobs rebuild them
from their journals), a shard table or the shard info with the shards' stage outputs (the shard step
runs again, the stage jobs then read their journals), ``config.json`` with the report. No journaled
row is computed again.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from vidcap.io.tables import parquet_intact


def intact(path: Path) -> bool:
    """Whether ``path`` (which exists) looks whole for its kind (module docstring)."""
    name = path.name
    try:
        if name.endswith(".parquet"):
            return parquet_intact(path)
        if name.endswith(".json"):
            json.loads(path.read_text(encoding="utf-8"))
            return True
        tail = _tail(path, 4096)
        if name.endswith(".html"):
            return tail.rstrip().endswith(b"</html>")
        if name.endswith(".jsonl"):
            if not tail:
                return True
            last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
            if last.strip():
                json.loads(last)   # ValueError: a cut line
            return tail.endswith(b"\n")
        if name.endswith(".csv"):
            return tail.endswith(b"\n")
    except (OSError, ValueError):
        return False
    return True


def _tail(path: Path, n: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - n))
        return fh.read()


def damaged_files(plan) -> list[tuple[Path, list[Path]]]:
    """``(damaged file, files to set aside with it)`` for every damaged file of the plan's run."""
    run = plan.run
    checks: list[tuple[Path, list[Path]]] = []
    outputs = {shard: [run.output(stage, shard) for stage in plan.stages] for shard in plan.shards}
    every_output = [p for outs in outputs.values() for p in outs]
    checks.append((run.shard_info_path, [run.shard_info_path, *every_output]))
    for shard in plan.shards:
        checks.append((run.shard(shard), [run.shard(shard), run.shard_info_path, *outputs[shard]]))
        for stage in plan.stages:
            out = run.output(stage, shard)
            checks.append((out, [out]))
            checks.append((run.stats(stage, shard), [run.stats(stage, shard), out]))
    for stage in plan.stages:
        stage_outputs = [run.output(stage, shard) for shard in plan.shards]
        checks.append((run.settings(stage), [run.settings(stage), *stage_outputs]))
    checks.append((run.config_json, [run.config_json, run.report]))
    for path in map(Path, plan.final_outputs()):
        if path.is_dir():   # the merged table's part folder: a damaged part sets the folder aside
            checks += [(part, [part, path]) for part in sorted(path.glob("*.parquet"))]
        else:
            checks.append((path, [path]))
    seen, found = set(), []
    for path, along in checks:
        if path in seen:
            continue
        seen.add(path)
        if path.is_file() and not intact(path):
            found.append((path, along))
    return found


def set_aside(found: list[tuple[Path, list[Path]]], say) -> list[Path]:
    """Rename each damaged file and the files that go with it to ``<name>.damaged``; ``say(line)``
    names each damaged file. Returns the damaged files."""
    for path, along in found:
        for p in along:
            if p.exists():
                target = p.with_name(p.name + ".damaged")
                if p.is_dir() and target.exists():
                    shutil.rmtree(target)   # an older set-aside copy of the same folder
                os.replace(p, target)
        extra = [p.name for p in along if p != path]
        with_it = f" (with {', '.join(extra)}, made again with it)" if extra else ""
        say(f"vidcap: {path} is damaged (not a whole file): set aside as {path.name}.damaged{with_it}; "
            "the next jobs make it again without computing any journaled row")
    return [p for p, _ in found]
