"""Reading a judge's reply: two scores (1-10), a reason, optional per-criterion scores.

``parse_verdict(text) -> Verdict`` or ``JudgeParseError`` (``kind``: ``empty``, ``refused``,
``out_of_range``, ``unparseable``). Forms read, first match wins:

1. ``json`` - a JSON object anywhere in the reply (code fences allowed) with score keys
   (``assistant_1``/``assistant_2``, ``score_1``/``score_2``, ``score1``/``score2``, ``a``/``b``, or a
   ``scores`` list of two); values may be numbers, ``"7"``, ``"7/10"`` or ``{"score": 7}``; reason from
   ``reason`` / ``explanation`` / ``rationale`` / ``justification``. An object that has score keys is
   final: a bad value there is an error, the rest of the text is not searched for other numbers.
2. ``labels`` - ``Assistant 1 ... 7`` and ``Assistant 2 ... 8`` (also Answer/Response/Caption N), the
   number within 30 characters of the label with no other label between; every mention of a label
   must give the same number.
3. ``out_of_10`` - exactly two ``N/10`` (or ``N out of 10``): ``Score: 7/10 ... 8/10``.
4. ``pair_line`` - a first line that is only two numbers: ``7 8``, ``7, 8``, ``7 and 8``, ``Scores: 7 8``
   (llava-bench's form; the rest of the reply is the reason).
5. ``score_labels`` - exactly two ``Score: N``.
6. ``one_line`` - a one-line reply without assistant labels holding exactly two numbers
   (``I would give 7 and 8.``).

Anything else is ``unparseable`` (or ``refused`` when it reads as a refusal). Scores must lie in
[1, 10] (decimals allowed); otherwise ``out_of_range``: a parse that would need a guess is an error,
never a guess. Ties are allowed.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

from vidcap.judge.rules import CAPTION_CRITERIA

MIN_SCORE, MAX_SCORE = 1.0, 10.0
_NUM = r"(\d+(?:\.\d+)?)"
_LABEL = r"(?:assistant|answer|response|caption)"
_FENCE = re.compile(r"```(?:json)?", re.IGNORECASE)
_REFUSAL = re.compile(
    r"\b(i'?m sorry|i am sorry|i apologi[sz]e|i can(?:no|')t|i am unable|i'm unable|unable to "
    r"(?:evaluate|assess|judge|compare|provide|help)|as an ai\b|i won'?t|i will not|not able to (?:evaluate|"
    r"assess|judge|compare))", re.IGNORECASE)
_KEYS_1 = ("assistant_1", "assistant1", "score_1", "score1", "answer_1", "answer1", "a", "1", "caption_1")
_KEYS_2 = ("assistant_2", "assistant2", "score_2", "score2", "answer_2", "answer2", "b", "2", "caption_2")
_REASON_KEYS = ("reason", "explanation", "rationale", "justification", "reasoning", "comment")
_MAX_REASON = 2000


class JudgeParseError(ValueError):
    """A reply that yields no usable scores; ``kind``: empty | refused | out_of_range | unparseable."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass
class Verdict:
    score_1: float            # the answer shown first ("Assistant 1")
    score_2: float
    reason: str
    form: str                 # which form was read (module docstring)
    criteria: dict[str, list[float]] = field(default_factory=dict)   # name -> [score 1, score 2]


def _norm_key(key: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(key).strip().lower())


def _number(value) -> float | None:
    """A score from a JSON value; None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*(?:/\s*10|out of 10)?\s*", value)
        return float(m.group(1)) if m else None
    if isinstance(value, dict):
        for k in ("score", "overall", "value"):
            if k in value:
                return _number(value[k])
    return None


def _json_objects(text: str):
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{", text):
        try:
            obj, _ = decoder.raw_decode(text, m.start())
        except ValueError:
            continue
        if isinstance(obj, dict):
            yield obj


def _check_range(s1: float, s2: float, form: str) -> None:
    bad = [s for s in (s1, s2) if not MIN_SCORE <= s <= MAX_SCORE]
    if bad:
        raise JudgeParseError("out_of_range", f"score out of range 1-10: {bad[0]:g} (read as {form}: "
                                              f"{s1:g}, {s2:g})")


def _from_json(obj: dict) -> Verdict | None:
    norm = {_norm_key(k): v for k, v in obj.items()}
    raw1 = next((norm[k] for k in _KEYS_1 if k in norm), None)
    raw2 = next((norm[k] for k in _KEYS_2 if k in norm), None)
    if raw1 is None and raw2 is None and isinstance(norm.get("scores"), (list, tuple)):
        if len(norm["scores"]) != 2:
            raise JudgeParseError("unparseable", f"'scores' holds {len(norm['scores'])} values, not 2")
        raw1, raw2 = norm["scores"]
    if raw1 is None and raw2 is None:
        return None
    if raw1 is None or raw2 is None:
        raise JudgeParseError("unparseable", "JSON answer gives a score for only one assistant")
    s1, s2 = _number(raw1), _number(raw2)
    if s1 is None or s2 is None:
        shown = json.dumps(raw1 if s1 is None else raw2)[:40]
        raise JudgeParseError("unparseable", f"JSON score is not a number: {shown}")
    _check_range(s1, s2, "json")
    reason = next((str(norm[k]) for k in _REASON_KEYS if k in norm and norm[k] is not None), "")
    return Verdict(s1, s2, reason[:_MAX_REASON], "json", _criteria(norm.get("criteria")))


def _criteria(value) -> dict[str, list[float]]:
    """Per-criterion [score 1, score 2] pairs; entries that are not two scores in range are left out."""
    out: dict[str, list[float]] = {}
    if not isinstance(value, dict):
        return out
    for name, pair in value.items():
        key = _norm_key(name)
        if key not in CAPTION_CRITERIA or not isinstance(pair, (list, tuple)) or len(pair) != 2:
            continue
        nums = [_number(v) for v in pair]
        scores = [n for n in nums if n is not None and MIN_SCORE <= n <= MAX_SCORE]
        if len(scores) == len(nums):
            out[key] = scores
    return out


def _labelled(text: str, n: int) -> float | None:
    """The number after ``Assistant n`` (every mention must agree); None if absent or ambiguous."""
    pattern = re.compile(rf"\b{_LABEL}\s*[#_-]?\s*{n}\b(?:(?!{_LABEL})[^\d\n]){{0,30}}?{_NUM}", re.IGNORECASE)
    found = {float(m.group(1)) for m in pattern.finditer(text)}
    return found.pop() if len(found) == 1 else None


def _pair_line(line: str) -> tuple[float, float] | None:
    m = re.fullmatch(rf"[^\w\-]*(?:scores?\s*[:=\-]?\s*)?{_NUM}\s*(?:,|;|&|and|vs\.?|\s)\s*{_NUM}[\W_]*",
                     line.strip(), re.IGNORECASE)
    return (float(m.group(1)), float(m.group(2))) if m else None


def parse_verdict(text: str | None) -> Verdict:
    """Scores and reason from a judge's reply; JudgeParseError saying why not (module docstring)."""
    raw = (text or "").strip()
    if not raw:
        raise JudgeParseError("empty", "empty reply")
    body = _FENCE.sub("", raw).strip()
    for obj in _json_objects(body):
        verdict = _from_json(obj)
        if verdict is not None:
            return verdict
    candidates: list[tuple[str, tuple[float, float], str]] = []
    s1, s2 = _labelled(body, 1), _labelled(body, 2)
    if s1 is not None and s2 is not None:
        candidates.append(("labels", (s1, s2), body))
    if not candidates:
        tens = re.findall(rf"{_NUM}\s*(?:/|out of)\s*10\b", body, re.IGNORECASE)
        if len(tens) == 2:
            candidates.append(("out_of_10", (float(tens[0]), float(tens[1])), body))
    lines = [ln for ln in body.splitlines() if ln.strip()]
    if not candidates and lines:
        pair = _pair_line(lines[0])
        if pair:
            candidates.append(("pair_line", pair, "\n".join(lines[1:]).strip()))
    if not candidates:
        labelled = re.findall(rf"\bscores?\s*[:=]\s*{_NUM}", body, re.IGNORECASE)
        if len(labelled) == 2:
            candidates.append(("score_labels", (float(labelled[0]), float(labelled[1])), body))
    if not candidates and len(lines) == 1 and not re.search(rf"\b{_LABEL}\b", body, re.IGNORECASE):
        nums = re.findall(r"(?<![\w.])-?\d+(?:\.\d+)?(?!\w)", body)
        if len(nums) == 2:
            candidates.append(("one_line", (float(nums[0]), float(nums[1])), body))
    if candidates:
        form, (a, b), reason = candidates[0]
        _check_range(a, b, form)
        return Verdict(a, b, reason[:_MAX_REASON], form)
    shown = " ".join(raw.split())[:120]
    if _REFUSAL.search(raw):
        raise JudgeParseError("refused", f"the judge refused: {shown}")
    raise JudgeParseError("unparseable", f"no two scores found in: {shown}")
