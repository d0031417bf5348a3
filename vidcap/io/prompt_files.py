"""NeMo (Video) NeVA prompt files: JSONL in (one row per question), and written back.

**Prompt file** (one JSON object a line, as ``neva_evaluation.py`` reads it)::

    {"video": "clip.mp4", "text": "Can you describe the scene?", "category": "conv", "question_id": 0}

``read_prompt_file`` streams it line by line into manifest rows, one row per question (several
questions on one clip are several rows), with the columns ``PROMPT_COLUMNS``: ``path`` (the media
path resolved against ``media_base_path``, else the prompt file's folder), ``media_type``
(``video`` | ``image``, from the key that held the path), ``prompt`` (the question: key ``prompt``,
else ``text``, else ``question``, as NeVA reads them; the keys not used pass through), ``category``
('' when absent) and
``question_id`` (as text; JSON numbers written as they were). Every other key of the object passes
through as a column (strings verbatim, other JSON values as JSON text; a key named ``path`` or
``media_type`` becomes ``neva_path`` / ``neva_media_type``). All cells are strings, like
a CSV manifest read by ``vidcap.io.tables.read_table``, so the table goes wherever a manifest goes.

A line that is not a JSON object, names no media or both kinds, has no question, no
``question_id`` or a ``question_id`` seen on an earlier line is a **bad line**: it is reported with
its 1-based line number and reason (``BadLine``) and nothing else is lost (blank lines are skipped
silently). ``on_bad_line="fail"`` (default) reads the whole file, then raises ``PromptFileError``
listing every bad line; ``"report"`` returns the good rows with the bad lines listed (and logged).

``write_prompt_file`` writes manifest rows back as a prompt file. The bad-line machinery here
(``BadLine``, ``ReadResult``, ``PromptFileError``, ``iter_lines``, ``parse_object``, ``finish_read``)
is shared with the answers files (``vidcap.io.answers``). Bad lines are logged on ``log``
(``vidcap.io.prompt_files``). This module imports no other table module: ``vidcap.io.tables`` reads and
writes ``.jsonl`` tables through it.
"""
from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from vidcap.errors import ConfigError, TableError
from vidcap.io.atomic import atomic_path
from vidcap.io.media_paths import resolve_media_path

log = logging.getLogger("vidcap.io.prompt_files")

PROMPT_COLUMNS = ("path", "media_type", "prompt", "category", "question_id")
MEDIA_KEYS = ("video", "image")
QUESTION_KEYS = ("prompt", "text", "question")   # NeVA: 'prompt' if present, else 'text'
MAX_SHOWN = 200   # characters of a bad line kept in its report


class PromptFileError(TableError):
    """A prompt or answer file with bad lines (``on_bad_line="fail"``); ``bad_lines`` lists them all."""

    def __init__(self, path, bad_lines: list[BadLine]):
        self.bad_lines = list(bad_lines)
        shown = "; ".join(f"line {b.line}: {b.reason}" for b in self.bad_lines[:10])
        more = f" (and {len(self.bad_lines) - 10} more)" if len(self.bad_lines) > 10 else ""
        super().__init__(f"{path}: {len(self.bad_lines)} bad line(s): {shown}{more}")


@dataclass(frozen=True)
class BadLine:
    line: int          # 1-based line number in the file
    reason: str
    text: str = ""     # the line's start (at most 200 characters)


@dataclass
class ReadResult:
    """A file read with ``on_bad_line="report"``: the good rows and every bad line."""

    table: pd.DataFrame
    bad_lines: list[BadLine] = field(default_factory=list)


def _cell(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def question_id_text(value) -> str:
    """question_id as text; ValueError for what cannot be an id (null, bool, list, NaN, '')."""
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        raise ValueError(f"question_id must be a number or a string; got {json.dumps(value)}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("question_id must be finite")
        return str(int(value)) if value.is_integer() else repr(value)
    text = str(value)
    if not text.strip():
        raise ValueError("question_id is empty")
    return text


def iter_lines(path: Path) -> Iterator[tuple[int, str | None, str]]:
    """(line number, decoded line or None when it is not UTF-8, raw start) for each non-blank line."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                yield number, raw.decode("utf-8"), ""
            except UnicodeDecodeError as exc:
                yield number, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})"


def parse_object(number: int, line: str | None, problem: str) -> dict | BadLine:
    if line is None:
        return BadLine(number, problem)
    shown = line.strip()[:MAX_SHOWN]
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        return BadLine(number, f"not JSON: {exc.msg} (column {exc.colno})", shown)
    if not isinstance(obj, dict):
        return BadLine(number, f"not a JSON object (a {type(obj).__name__})", shown)
    return obj


def prompt_row(obj: dict, base: str | None, media_type: str | None = None) -> dict:
    """One manifest row from one prompt object; ValueError saying what is wrong with it. ``base``: the
    folder relative media paths resolve against; None keeps the path as written (a manifest read by
    ``vidcap.io.tables.read_table``, resolved later by the shard step against ``media_root``)."""
    kinds = [k for k in MEDIA_KEYS if k in obj]
    if media_type is not None:
        if media_type not in obj:
            other = f" (it has {kinds[0]!r})" if kinds else ""
            raise ValueError(f"no {media_type!r} key (media_type is {media_type}){other}")
        kinds = [media_type]
    if not kinds:
        raise ValueError("no media: needs a 'video' or 'image' key")
    if len(kinds) > 1:
        raise ValueError("both 'video' and 'image' keys: one media per line")
    kind = kinds[0]
    media = obj[kind]
    if not isinstance(media, str) or not media.strip():
        raise ValueError(f"{kind!r} must be a non-empty path string; got {json.dumps(media)}")
    qkey = next((k for k in QUESTION_KEYS if k in obj), None)
    question = obj[qkey] if qkey else None
    if not isinstance(question, str) or not question.strip():
        raise ValueError("no question: needs a non-empty 'text' (or 'prompt'/'question') string")
    if "question_id" not in obj:
        raise ValueError("no question_id")
    category = obj.get("category", "")
    if category is None:
        category = ""
    if not isinstance(category, str):
        raise ValueError(f"category must be a string; got {json.dumps(category)}")
    if base is not None:
        media = resolve_media_path(media, base)
    row = {"path": media, "media_type": kind, "prompt": question,
           "category": category, "question_id": question_id_text(obj["question_id"])}
    for key, value in obj.items():
        if key in (kind, qkey, "category", "question_id"):
            continue
        row[f"neva_{key}" if key in row else key] = _cell(value)   # a 'path' key must not replace ours
    return row


def iter_prompt_file(path: str | Path, media_base_path: str | None = None,
                     media_type: str | None = None, resolve: bool = True) -> Iterator[dict | BadLine]:
    """Stream a prompt file: a row dict (see module docstring) or a ``BadLine`` per non-blank line.

    ``media_base_path``: folder relative media paths resolve against (default: the file's folder).
    ``resolve=False``: media paths stay as written (``media_base_path`` is then not used).
    ``media_type``: ``video`` | ``image`` to require that key on every line (NeVA's
    ``inference.media_type``); None accepts either per line. Raises TableError only when the file
    itself cannot be opened.
    """
    path = Path(path)
    if media_type not in (None, *MEDIA_KEYS):
        raise ConfigError(f"media_type must be video or image; got {media_type!r}")
    if not path.is_file():
        raise TableError(f"prompt file not found: {path}")
    base: str | None = str(Path(media_base_path).expanduser().resolve()) if media_base_path else str(path.resolve().parent)
    if not resolve:
        base = None
    seen: dict[str, int] = {}
    for number, line, problem in iter_lines(path):
        obj = parse_object(number, line, problem)
        if isinstance(obj, BadLine):
            yield obj
            continue
        assert line is not None  # parse_object returns a BadLine for an undecodable line
        try:
            row = prompt_row(obj, base, media_type)
        except ValueError as exc:
            yield BadLine(number, str(exc), line.strip()[:MAX_SHOWN])
            continue
        qid = row["question_id"]
        if qid in seen:
            yield BadLine(number, f"question_id {qid} already used on line {seen[qid]}", line.strip()[:MAX_SHOWN])
            continue
        seen[qid] = number
        yield row


def finish_read(path, rows: list[dict], bad: list[BadLine], columns: tuple[str, ...], on_bad_line: str,
            what: str) -> ReadResult:
    if bad and on_bad_line == "fail":
        raise PromptFileError(path, bad)
    for b in bad:
        log.warning("%s %s line %d skipped: %s", what, path, b.line, b.reason)
    table = pd.DataFrame(rows)
    for col in columns:
        if col not in table.columns:
            table[col] = pd.Series([], dtype=object) if not len(table) else ""
    extra = [c for c in table.columns if c not in columns]
    table = table[list(columns) + extra]
    return ReadResult(table.reset_index(drop=True), bad)


def check_bad_line_mode(on_bad_line: str) -> None:
    if on_bad_line not in ("fail", "report"):
        raise ConfigError(f"on_bad_line must be fail or report; got {on_bad_line!r}")


def read_prompt_file(path: str | Path, media_base_path: str | None = None, media_type: str | None = None,
                     on_bad_line: str = "fail", resolve: bool = True) -> ReadResult:
    """The whole prompt file as manifest rows (``ReadResult.table``) and its bad lines.

    ``on_bad_line``: ``fail`` raises ``PromptFileError`` (after reading every line, so the message
    lists all of them); ``report`` keeps the good rows and lists the bad ones. Empty cells of pass-
    through columns (a key only some lines have) are ''. ``resolve=False`` keeps media paths as written.
    """
    check_bad_line_mode(on_bad_line)
    rows: list[dict] = []
    bad: list[BadLine] = []
    for item in iter_prompt_file(path, media_base_path, media_type, resolve=resolve):
        if isinstance(item, BadLine):
            bad.append(item)
        else:
            rows.append(item)
    result = finish_read(path, rows, bad, PROMPT_COLUMNS, on_bad_line, "prompt file")
    result.table = result.table.fillna("")
    return result


def scan_prompt_file(path: str | Path, on_bad_line: str = "fail") -> tuple[int, list[BadLine]]:
    """(good rows, bad lines) of a prompt file, streamed without building a table (memory: the seen
    ``question_id`` values). ``fail`` raises ``PromptFileError`` listing every bad line."""
    check_bad_line_mode(on_bad_line)
    good, bad = 0, []
    for item in iter_prompt_file(path, resolve=False):
        if isinstance(item, BadLine):
            bad.append(item)
        else:
            good += 1
    if bad and on_bad_line == "fail":
        raise PromptFileError(path, bad)
    return good, bad


def is_prompt_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in (".jsonl", ".ndjson")


def write_prompt_file(df: pd.DataFrame, path: str | Path, question_column: str = "prompt",
                      keep_columns: bool = False) -> Path:
    """Write manifest rows (``path``, ``media_type``, question, ``category``, ``question_id``) as a NeVA
    prompt file, atomically. Other columns are left out, or with ``keep_columns`` written as string
    keys (empty cells left out), so a prompt file read by ``read_table`` comes back with its keys.
    ``question_id`` that reads as an integer is written as a JSON number (llava-bench's form),
    otherwise as a string."""
    missing = [c for c in ("path", question_column, "question_id") if c not in df.columns]
    if missing:
        raise TableError(f"cannot write a prompt file: missing column(s) {', '.join(missing)}")
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for row in df.to_dict("records"):
            kind = row.get("media_type") or "video"
            obj = {kind: str(row["path"]), "text": str(row[question_column]),
                   "category": str(row.get("category") or ""), "question_id": json_id(row["question_id"])}
            if keep_columns:
                skip = {"path", "media_type", question_column, "category", "question_id"}
                for key, value in row.items():
                    if key in skip or is_missing(value) or str(value) == "":
                        continue
                    key = key[len("neva_"):] if key in ("neva_path", "neva_media_type") else key
                    if key == "text":   # a 'text' key of its own: the question goes under 'prompt' (read first)
                        obj["prompt"] = obj["text"]
                    if key not in ("video", "image", "question_id", "category", "prompt"):
                        obj[key] = str(value)
            fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
    return Path(path)


def json_id(value):
    text = str(value)
    return int(text) if re.fullmatch(r"-?(0|[1-9]\d*)", text) else text


def is_missing(value) -> bool:
    """True for None, NaN and pandas' NA (cells of tables read with Arrow dtypes)."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value)) if not isinstance(value, (list, dict, tuple)) else False
    except (TypeError, ValueError):
        return False
