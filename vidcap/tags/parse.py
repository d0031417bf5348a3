"""Parsing an LLM's tag answer into clean lists (the tags stage; pure functions, no model).

``parse_list(text)`` reads one list out of an answer; ``parse_answer(text, keys)`` reads several keys
(a JSON object, or prose with one ``key: ...`` section per key). Both return ``None`` for a key when the
answer holds no list for it ("no answer": the stage stores an empty list and says so in ``tags_error``)
and ``[]`` when the answer says there is none ("none", "n/a", "no objects", ``[]``, ``null``).
Nothing is ever guessed from free prose: a sentence that is not a list gives ``None``.

Accepted list forms, with stray prose before or after them:

* bracketed lists, JSON or not: ``[dog, person]``, ``["dog", "person"]``, ``['dog', 'person']``
* a JSON object (also inside a Markdown code fence), values lists or comma-separated strings
* bullet or numbered lines: ``- dog`` ``* dog`` ``• dog`` ``1. dog`` ``2) dog``
* quoted items: ``"dog", "person"``
* a ``Label: a, b, c`` line, or a bare short comma/semicolon-separated line ``dog, person, ball``
* a bare answer of at most ``BARE_WORDS`` words (``dog`` or ``A red car.``)

``normalize(items)``: items flattened (nested lists, ``{"name": ...}`` objects), stripped of quotes,
Markdown emphasis, bullets, parenthetical remarks, trailing punctuation and a leading article
(a / an / the), lower-cased, whitespace collapsed; "none"-like items and items longer than
``MAX_WORDS`` words (sentences, not tags) dropped; duplicates removed, first occurrence order kept.
"""
from __future__ import annotations

import ast
import json
import re

MAX_WORDS = 6      # an item with more words is prose, not a tag: dropped
BARE_WORDS = 3     # a bare answer without any list structure is one tag only when this short
ITEM_WORDS = 4     # items of a bare comma-separated line may have at most this many words

_NONE_ITEMS = {"", "none", "n/a", "na", "nil", "null", "nothing", "no", "not applicable", "none found",
               "not specified", "not mentioned", "unknown", "-", "--", "—", "...", "…", "empty", "[]"}
_NONE_ANSWER = re.compile(
    r"^(?:(?:there\s+(?:are|is)\s+)?(?:none|n/?a|nil|null|nothing|no\s+[\w ]{1,30}?)"
    r"(?:\s+(?:found|mentioned|detected|present|given|identified|in\s+the\s+(?:caption|text|description)))?"
    r"|not\s+applicable|\[\s*\])[.!]?$", re.I)
_FENCE = re.compile(r"```[a-zA-Z]*\s*(.*?)```", re.S)
_BULLET = re.compile(r"^\s*(?:[-*•+·▪‣◦]|\d{1,3}[.)]|\(\d{1,3}\)|[a-z][.)](?=\s))\s+(.+?)\s*$")
_QUOTED = re.compile(r"\"([^\"\n]{1,80})\"|“([^”\n]{1,80})”|'([^'\n]{1,80})'")
_LABEL = re.compile(r"^\s*[*_#]*\s*([A-Za-z][\w \-]{0,30}?)\s*[*_]*\s*[:=]\s*(.*)$")
_PAREN = re.compile(r"\s*[(\[][^()\[\]]*[)\]]")
_ARTICLE = re.compile(r"^(?:a|an|the)\s+", re.I)
_EDGE = " \t\r\n\"'`*_•·-–—:;,.!?“”‘’"


def _clean_item(value) -> str:
    text = " ".join(str(value).split())
    text = _PAREN.sub("", text)
    m = _BULLET.match(text)
    if m:
        text = m.group(1)
    text = text.strip(_EDGE).lower()
    text = _ARTICLE.sub("", text).strip(_EDGE)
    return " ".join(text.split())


def _flatten(items) -> list:
    out = []
    for v in items:
        if v is None or isinstance(v, bool):
            continue
        if isinstance(v, (list, tuple)):
            out += _flatten(v)
        elif isinstance(v, dict):
            named = [v[k] for k in ("name", "tag", "label", "value", "object", "action") if k in v]
            out += _flatten(named or [x for x in v.values() if isinstance(x, str)][:1])
        else:
            out.append(v)
    return out


def normalize(items, max_words: int = MAX_WORDS) -> list[str]:
    """Lower-cased, trimmed, deduplicated tags in first-seen order (see the module docstring)."""
    seen: dict[str, None] = {}
    for raw in _flatten(list(items)):
        tag = _clean_item(raw)
        if not tag or tag in _NONE_ITEMS or _NONE_ANSWER.match(tag):
            continue
        if len(tag.split()) > max_words:
            continue
        seen.setdefault(tag, None)
    return list(seen)


# ------------------------------------------------------------------------------------------ scanning


def _strip_fences(text: str) -> str:
    fenced = _FENCE.findall(text)
    return "\n".join(fenced) if fenced else text


def _balanced(text: str, open_ch: str, close_ch: str):
    """Each balanced ``open_ch ... close_ch`` span (outermost), quotes respected; yields strings."""
    depth, start, quote = 0, None, None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = None
            continue
        if ch == '"' and depth:
            quote = ch
        elif ch == open_ch:
            if depth == 0:
                start = i
            depth += 1
        elif ch == close_ch and depth:
            depth -= 1
            if depth == 0:
                yield text[start : i + 1]


def _loads(span: str):
    """A JSON / Python literal from ``span`` (trailing commas and smart quotes tolerated), else None."""
    candidates = [span, re.sub(r",\s*([\]}])", r"\1", span)]
    candidates.append(candidates[-1].replace("“", '"').replace("”", '"').replace("’", "'"))
    for c in candidates:
        try:
            return json.loads(c)
        except (json.JSONDecodeError, ValueError):
            pass
        try:
            return ast.literal_eval(c)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
    return None


def _split(text: str) -> list[str]:
    return [p for p in re.split(r"\s*[,;|]\s*|\s+and\s+(?=\S)", text) if p.strip()]


def _bracket_list(text: str) -> list | None:
    for span in _balanced(text, "[", "]"):
        value = _loads(span)
        if isinstance(value, (list, tuple)):
            return list(value)
        inner = span[1:-1].strip()
        if not inner:
            return []
        if "\n" in inner.strip() and not re.search(r"[,;]", inner):
            lines = [ln for ln in inner.splitlines() if ln.strip()]
            return lines
        parts = _split(inner)
        if parts and any(len(_clean_item(p).split()) <= MAX_WORDS for p in parts):
            return parts
    return None


def _bullets(text: str) -> list | None:
    items = [m.group(1) for ln in text.splitlines() if (m := _BULLET.match(ln))]
    if not items:
        return None
    # "- dog: a brown dog" -> "dog"
    return [re.split(r"\s*(?::\s| - | – | — )", it, maxsplit=1)[0] for it in items]


def _quoted(text: str) -> list | None:
    found = [next(g for g in m.groups() if g is not None) for m in _QUOTED.finditer(text)]
    if len(found) >= 2 or (found and re.fullmatch(r"\s*[\"“'][^\n]*[\"”']\s*[.]?\s*", text)):
        return found
    return None


def _bare(text: str) -> list | None:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if len(lines) != 1:
        return None
    line = lines[0]
    m = _LABEL.match(line)
    if m and m.group(2).strip():
        line = m.group(2).strip()
    line = line.rstrip(" .!")
    parts = _split(line)
    if len(parts) > 1 and all(len(_clean_item(p).split()) <= ITEM_WORDS for p in parts) \
            and not re.search(r"[.!?]\s", line):
        return parts
    if len(parts) == 1 and len(_clean_item(line).split()) <= BARE_WORDS and not re.search(r"[.!?]\s", line):
        return parts
    return None


def _is_none_answer(text: str) -> bool:
    t = " ".join(text.split()).strip(" \"'`*")
    if _NONE_ANSWER.match(t):
        return True
    m = _LABEL.match(t)
    return bool(m and _NONE_ANSWER.match(m.group(2).strip(" \"'`*")))


def parse_list(text: str | None, max_words: int = MAX_WORDS) -> list[str] | None:
    """The tags of a one-list answer: a list (``[]`` = "none"), or None when it holds no list."""
    if text is None:
        return None
    if isinstance(text, (list, tuple)):
        return normalize(text, max_words)
    body = _strip_fences(str(text)).strip()
    if not body:
        return None
    if _is_none_answer(body):
        return []
    for span in _balanced(body, "{", "}"):
        obj = _loads(span)
        if isinstance(obj, dict):
            lists = [v for v in obj.values() if isinstance(v, (list, tuple))]
            if len(lists) == 1:
                return normalize(lists[0], max_words)
    for finder in (_bracket_list, _bullets, _quoted, _bare):
        items = finder(body)
        if items is not None:
            return normalize(items, max_words)
    return None


# ------------------------------------------------------------------------------------- several keys


def _key_norm(key: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(key).strip().strip("*_#`\"'").lower())


def _from_object(obj: dict, keys: list[str], max_words: int) -> dict[str, list[str] | None]:
    table = {_key_norm(k): v for k, v in obj.items()}
    if len(table) == 1 and isinstance(next(iter(table.values())), dict):  # {"tags": {...}}
        inner = next(iter(table.values()))
        if any(_key_norm(k) in {_key_norm(x) for x in keys} for k in inner):
            table = {_key_norm(k): v for k, v in inner.items()}
    out: dict[str, list[str] | None] = {}
    for key in keys:
        k = _key_norm(key)
        if k not in table:
            out[key] = None
            continue
        value = table[k]
        if value is None:
            out[key] = []
        elif isinstance(value, (list, tuple)):
            out[key] = normalize(value, max_words)
        elif isinstance(value, dict):
            out[key] = normalize([value], max_words)
        else:
            out[key] = parse_list(str(value), max_words)
    return out


def _sections(text: str, keys: list[str]) -> dict[str, str]:
    """``key: ...`` sections of a prose answer: the rest of the key's line plus following list lines."""
    wanted = {_key_norm(k): k for k in keys}
    lines = text.splitlines()
    found: dict[str, list[str]] = {}
    current = None
    for ln in lines:
        m = _LABEL.match(ln)
        head = _key_norm(m.group(1)) if m else _key_norm(ln.rstrip(":")) if ln.strip().endswith(":") else None
        if head is not None and head.rstrip("s") in {w.rstrip("s") for w in wanted}:
            current = next(wanted[w] for w in wanted if w.rstrip("s") == head.rstrip("s"))
            found[current] = [m.group(2)] if m and m.group(2).strip() else []
            continue
        if head is not None and m and current is not None and not _BULLET.match(ln):
            current = None  # another label ends the section
            continue
        if current is not None:
            if not ln.strip():
                if found[current]:
                    current = None
                continue
            found[current].append(ln)
    return {k: "\n".join(v) for k, v in found.items()}


def parse_answer(text: str | None, keys: list[str], max_words: int = MAX_WORDS) -> dict[str, list[str] | None]:
    """Tags per key from one answer covering all ``keys``: ``{key: list | None}`` (None = no list)."""
    keys = list(keys)
    if text is None or not str(text).strip():
        return {k: None for k in keys}
    body = _strip_fences(str(text)).strip()
    for span in _balanced(body, "{", "}"):
        obj = _loads(span)
        if isinstance(obj, dict):
            result = _from_object(obj, keys, max_words)
            if any(v is not None for v in result.values()):
                return result
    sections = _sections(body, keys)
    result = {k: parse_list(sections[k], max_words) if k in sections else None for k in keys}
    if len(keys) == 1 and result[keys[0]] is None:
        result[keys[0]] = parse_list(body, max_words)
    return result
