"""The judge's texts: system prompt, one rule per question category, the caption rubric, the answer format.

A **rule** tells the judge what matters for one category of questions (``RULES``: ``conv``,
``detail``, ``complex``, ``caption``, and ``default`` for any other category). Our own wording. Users
may supply a rules file (JSON or YAML) mapping category -> rule text; llava-bench's ``rule.json``
form ``{category: {"role": ..., "prompt": ...}}`` is accepted too (its ``prompt`` is the rule). A
user's rules replace ours for the categories they name; ours stay for the others.

``rule_for(rules, category)`` looks up the category as given, then ``llava_bench_<category>`` (the
key form of llava-bench rule files), then ``default``.

The answer format (``ANSWER_FORMAT``, ``STRICT_FORMAT``) is always ours and always appended after
the rule, so the parser (``vidcap.judge.parse``) does not depend on the rule's wording.
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from vidcap.errors import ConfigError

SYSTEM = ("You are an impartial reviewer of answers written by AI assistants. You compare two answers to "
          "the same question, judge them only on their merits, ignore the order in which they are shown "
          "and their length as such, and give each a score.")

RULES: dict[str, str] = {
    "default": (
        "Judge how well each assistant answers the question, given what the context says. Reward answers "
        "that are correct, relevant and as complete as the question needs; penalise statements the "
        "context does not support, missing parts of the question and padding."),
    "conv": (
        "The question is a short conversational one about the visual content. Judge whether each answer "
        "gets the fact asked for right and says it directly. A short correct answer beats a long one "
        "that wanders or adds claims the context does not support."),
    "detail": (
        "The question asks for a detailed description. Judge how much of what the context describes each "
        "answer covers (subjects, their attributes, actions, setting, relations), how accurate every "
        "claim is, and whether it invents things that are not there. Invented details weigh more than "
        "omitted ones."),
    "complex": (
        "The question needs reasoning beyond listing what is visible. Judge whether each answer's "
        "reasoning is sound, whether it rests on what the context actually shows, and whether it "
        "reaches a useful, correct conclusion. Confident reasoning from invented facts is a serious fault."),
    "caption": (
        "Both texts are captions of the same video clip, written for a dataset that trains video models. "
        "Judge them on four criteria: accuracy (every claim matches the clip and the context), detail "
        "(subjects, actions, setting, lighting and style are covered), hallucination (nothing is "
        "invented; an invented object, action or text is a serious fault) and camera and motion "
        "(camera movement such as pan, tilt, zoom or a static shot, and how subjects move, are described "
        "correctly). A shorter caption that is correct beats a longer one with invented content."),
}

CAPTION_CRITERIA = ("accuracy", "detail", "hallucination", "camera_motion")

ANSWER_FORMAT = (
    "Give each assistant an overall score from 1 (useless) to 10 (excellent). Answer with one JSON "
    "object and nothing else, in this form:\n"
    '{"assistant_1": <score 1-10>, "assistant_2": <score 1-10>, "reason": "<two or three sentences>"}')

CAPTION_FORMAT = (
    "Give each caption an overall score from 1 (useless) to 10 (excellent), and a score from 1 to 10 per "
    "criterion. Answer with one JSON object and nothing else, in this form:\n"
    '{"assistant_1": <score>, "assistant_2": <score>, "criteria": {"accuracy": [<score 1>, <score 2>], '
    '"detail": [<score 1>, <score 2>], "hallucination": [<score 1>, <score 2>], '
    '"camera_motion": [<score 1>, <score 2>]}, "reason": "<two or three sentences naming the criteria '
    'that decided>"}\n(For hallucination, 10 means nothing invented.)')

STRICT_FORMAT = (
    "IMPORTANT: your previous reply to this request could not be read. Reply with exactly one JSON "
    'object, for example {"assistant_1": 6, "assistant_2": 8, "reason": "..."}: both scores are whole '
    "numbers from 1 to 10, no text before or after the object, no code fence.")


def _rule_text(where, category: str, value) -> str:
    if isinstance(value, dict) and "prompt" in value:   # llava-bench rule.json form
        value = value["prompt"]
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"rules file {where}: the rule for category {category!r} must be a non-empty text")
    return value.strip()


def load_rules(path: str | Path | None = None, base: dict[str, str] | None = None) -> dict[str, str]:
    """Our ``RULES`` (or ``base``) updated with the rules file at ``path`` (JSON or YAML, by suffix;
    ``.json`` is read as JSON, anything else as YAML). ConfigError naming the file for anything wrong."""
    rules = dict(RULES if base is None else base)
    if path is None:
        return rules
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"rules file {path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"rules file {path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"rules file {path}: must map category -> rule text")
    for category, value in data.items():
        rules[str(category)] = _rule_text(path, str(category), value)
    return rules


def rule_for(rules: dict[str, str], category: str) -> tuple[str, str]:
    """(rule key used, rule text) for a category: exact, ``llava_bench_<category>``, ``default``."""
    for key in (category, f"llava_bench_{category}", "default"):
        if key and key in rules:
            return key, rules[key]
    raise ConfigError(f"no rule for category {category!r} and no 'default' rule")


def answer_format(rule_key: str) -> str:
    return CAPTION_FORMAT if rule_key == "caption" else ANSWER_FORMAT
