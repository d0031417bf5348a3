"""``vidcap judge`` without ``--shard``: an LLM judge compares two answer sets (docs/judge.md).

The registry names this module as the judge stage's ``command`` (``vidcap.stages.StageSpec``): the cli
gives the stage's subparser the job's flags (``--shard``, ``--out``, ``--journal``, ...; optional here),
then ``add_arguments`` adds this command's; with ``--shard`` the cli runs the stage job, else ``RUN``
(``vidcap.judge.command_run.run``).
``judge_settings`` also serves ``vidcap compare``'s judge flags.
"""
from __future__ import annotations

import argparse
import json

import yaml

RUN = "vidcap.judge.command_run:run"   # the command itself, imported when it runs (pandas, the judge)


def judge_settings(configfile: str | None, params: str | None, rules: str | None, rule: str | None,
                   one_order: bool) -> dict:
    """A ``stages.judge`` block: the config file's (its ``stages.judge``, or the file itself when it is
    only that block), then ``--params`` (JSON, merged one level deep), then the flags."""
    settings: dict = {}
    if configfile:
        with open(configfile, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
        settings = dict(((data.get("stages") or {}).get("judge")) or (data if "stages" not in data else {}))
    for key, value in (json.loads(params) if params else {}).items():
        settings[key] = {**settings[key], **value} if isinstance(value, dict) and isinstance(settings.get(key), dict) \
            else value
    if rules:
        settings["rules_file"] = rules
    if rule:
        settings["rule"] = rule
    if one_order:
        settings["both_orders"] = False
    return settings


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The answers-comparing command's flags, added to the stage's subparser."""
    p.description = ("Without --shard: an LLM judge compares two answer sets; per-pair scores and a per-category "
                     "relative score with a bootstrap interval (docs/judge.md).")
    p.add_argument("-o", "--output", default=None, help="folder for pairs, journal, judge.csv, categories.csv")
    src = p.add_argument_group("answers to compare (one kind)")
    src.add_argument("--answers-a", default=None, help="answers JSONL A, the reference (question_id/text or response_id/response)")
    src.add_argument("--answers-b", default=None, help="answers JSONL B, judged against A")
    src.add_argument("--questions", default=None, help="the NeVA prompt file the answers answer (else A's prompt fields)")
    src.add_argument("--table", default=None, help="a table with both answers in two columns")
    src.add_argument("--column-a", default=None)
    src.add_argument("--column-b", default=None)
    src.add_argument("--key-column", default=None, help="--table: the id column (default: row position)")
    src.add_argument("--run-a", default=None, help="a finished run folder (results/<name>), answers A")
    src.add_argument("--run-b", default=None, help="a finished run folder, answers B")
    src.add_argument("--run", default=None, help="a finished run folder, answers B against --reference")
    src.add_argument("--reference", default=None, help="reference answers JSONL (A) for --run")
    src.add_argument("--column", default="text", help="--run/--run-a/--run-b: the answer column (default text)")
    src.add_argument("--question-column", default=None, help="column holding the question (default prompt)")
    src.add_argument("--media-base-path", default=None, help="folder relative media paths resolve against")
    src.add_argument("--bad-lines", choices=("fail", "report"), default="fail", help="bad lines of JSONL inputs")
    p.add_argument("--configfile", default=None, help="YAML with the judge's settings: a workflow config (its "
                                                      "stages.judge) or that block alone (runner, model, prices)")
    p.add_argument("--rules", default=None, help="your rules file (JSON/YAML category -> rule text)")
    p.add_argument("--rule", default=None, help="judge every pair with this rule (e.g. caption)")
    p.add_argument("--one-order", action="store_true", help="judge in order (A, B) only (half the requests)")
    p.add_argument("--estimate", type=int, default=0, metavar="N",
                   help="judge N sampled pairs for real, print the projected cost and time, and stop")
    p.add_argument("--seed", type=int, default=0)
