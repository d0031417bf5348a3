"""NeMo (Video) NeVA files: JSONL prompt files in, JSONL answer files out, and NeVA's inference knobs.

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

**Answer files**: ``write_answers`` writes NeVA's / llava-bench's shape, one object a line:
``{"question_id", "prompt", "text", "answer_id", "model_id", "metadata"}``. ``read_answers`` reads
it and the other shape ``{"response_id", "response"}`` (lines may mix them).

**Media token**: ``insert_media_token(question, "left" | "right", media_type)`` places NeVA's
``<video>`` / ``<image>`` placeholder the way NeVA does (left: token, newline, question; right:
question then token); ``media_first(where)`` says where chat-template runners put the media parts.

**Sampling knobs**: ``neva_generation(inference)`` maps NeVA's ``inference`` block onto our
``generation`` settings and says, per key, what was done with it (see its docstring).
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from vidcap.errors import ConfigError, TableError
from vidcap.io.tables import atomic_path, read_table

log = logging.getLogger("vidcap.io.neva")

PROMPT_COLUMNS = ("path", "media_type", "prompt", "category", "question_id")
MEDIA_KEYS = ("video", "image")
QUESTION_KEYS = ("prompt", "text", "question")   # NeVA: 'prompt' if present, else 'text'
MEDIA_TOKENS = {"video": "<video>", "image": "<image>"}
ANSWER_COLUMNS = ("question_id", "text", "prompt", "model_id", "answer_id", "category", "metadata",
                  "error", "shape", "line")
_MAX_SHOWN = 200   # characters of a bad line kept in its report


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


# ------------------------------------------------------------------------------------- prompt file


def _cell(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _question_id(value) -> str:
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


def _iter_lines(path: Path) -> Iterator[tuple[int, str | None, str]]:
    """(line number, decoded line or None when it is not UTF-8, raw start) for each non-blank line."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                yield number, raw.decode("utf-8"), ""
            except UnicodeDecodeError as exc:
                yield number, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})"


def _parse_object(number: int, line: str | None, problem: str) -> dict | BadLine:
    if line is None:
        return BadLine(number, problem)
    shown = line.strip()[:_MAX_SHOWN]
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
        from vidcap.io.shards import resolve_media_path  # lazy: vidcap.io.tables reads prompt files through here

        media = resolve_media_path(media, base)
    row = {"path": media, "media_type": kind, "prompt": question,
           "category": category, "question_id": _question_id(obj["question_id"])}
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
    base = str(Path(media_base_path).expanduser().resolve()) if media_base_path else str(path.resolve().parent)
    if not resolve:
        base = None
    seen: dict[str, int] = {}
    for number, line, problem in _iter_lines(path):
        obj = _parse_object(number, line, problem)
        if isinstance(obj, BadLine):
            yield obj
            continue
        try:
            row = prompt_row(obj, base, media_type)
        except ValueError as exc:
            yield BadLine(number, str(exc), line.strip()[:_MAX_SHOWN])
            continue
        qid = row["question_id"]
        if qid in seen:
            yield BadLine(number, f"question_id {qid} already used on line {seen[qid]}", line.strip()[:_MAX_SHOWN])
            continue
        seen[qid] = number
        yield row


def _finish(path, rows: list[dict], bad: list[BadLine], columns: tuple[str, ...], on_bad_line: str,
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


def _check_mode(on_bad_line: str) -> None:
    if on_bad_line not in ("fail", "report"):
        raise ConfigError(f"on_bad_line must be fail or report; got {on_bad_line!r}")


def read_prompt_file(path: str | Path, media_base_path: str | None = None, media_type: str | None = None,
                     on_bad_line: str = "fail", resolve: bool = True) -> ReadResult:
    """The whole prompt file as manifest rows (``ReadResult.table``) and its bad lines.

    ``on_bad_line``: ``fail`` raises ``PromptFileError`` (after reading every line, so the message
    lists all of them); ``report`` keeps the good rows and lists the bad ones. Empty cells of pass-
    through columns (a key only some lines have) are ''. ``resolve=False`` keeps media paths as written.
    """
    _check_mode(on_bad_line)
    rows, bad = [], []
    for item in iter_prompt_file(path, media_base_path, media_type, resolve=resolve):
        (bad if isinstance(item, BadLine) else rows).append(item)
    result = _finish(path, rows, bad, PROMPT_COLUMNS, on_bad_line, "prompt file")
    result.table = result.table.fillna("")
    return result


def scan_prompt_file(path: str | Path, on_bad_line: str = "fail") -> tuple[int, list[BadLine]]:
    """(good rows, bad lines) of a prompt file, streamed without building a table (memory: the seen
    ``question_id`` values). ``fail`` raises ``PromptFileError`` listing every bad line."""
    _check_mode(on_bad_line)
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


def read_manifest(path: str | Path, media_base_path: str | None = None, on_bad_line: str = "fail",
                  required: tuple[str, ...] = ("path",)) -> pd.DataFrame:
    """A manifest from CSV/Parquet (``vidcap.io.tables.read_table``) or a NeVA prompt file (``.jsonl``).

    For a prompt file the bad lines are in ``df.attrs["bad_lines"]`` (a list of ``BadLine``) when
    ``on_bad_line="report"``. Its ``path`` column is already absolute (``media_base_path`` applied).
    """
    if not is_prompt_file(path):
        return read_table(path, required=required)
    result = read_prompt_file(path, media_base_path=media_base_path, on_bad_line=on_bad_line)
    table = result.table
    table.attrs["bad_lines"] = result.bad_lines
    return table


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
                   "category": str(row.get("category") or ""), "question_id": _json_id(row["question_id"])}
            if keep_columns:
                skip = {"path", "media_type", question_column, "category", "question_id"}
                for key, value in row.items():
                    if key in skip or _missing(value) or str(value) == "":
                        continue
                    key = key[len("neva_"):] if key in ("neva_path", "neva_media_type") else key
                    if key == "text":   # a 'text' key of its own: the question goes under 'prompt' (read first)
                        obj["prompt"] = obj["text"]
                    if key not in ("video", "image", "question_id", "category", "prompt"):
                        obj[key] = str(value)
            fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
    return Path(path)


def _json_id(value):
    text = str(value)
    return int(text) if re.fullmatch(r"-?(0|[1-9]\d*)", text) else text


# ---------------------------------------------------------------------------------- media token


def insert_media_token(question: str, where: str | None, media_type: str = "video") -> str:
    """The question with NeVA's media placeholder: ``left`` -> ``"<video>\\n" + q``, ``right`` ->
    ``q + "<video>"`` (as ``neva_evaluation.py``), ``None`` -> ``q`` unchanged."""
    if where is None:
        return question
    token = MEDIA_TOKENS.get(media_type)
    if token is None:
        raise ConfigError(f"media_type must be video or image; got {media_type!r}")
    if where == "left":
        return token + "\n" + question
    if where == "right":
        return question + token
    raise ConfigError(f"insert_media_token must be left or right; got {where!r}")


def media_first(where: str | None) -> bool:
    """For chat-template runners (media as message parts): True = media parts before the text
    (``left``, and the default when unset, which is what vidcap's runners do today), False = after."""
    if where in (None, "left"):
        return True
    if where == "right":
        return False
    raise ConfigError(f"insert_media_token must be left or right; got {where!r}")


# ------------------------------------------------------------------------------------ sampling knobs

_MEDIA_KEYS_HANDLED = {
    "media_type": "read_prompt_file(media_type=...)",
    "media_base_path": "read_prompt_file(media_base_path=...)",
    "insert_media_token": "insert_media_token() / media_first()",
}
_NOT_HONOURED = {
    "add_BOS": "not honoured: the model's chat template adds the BOS token the model was trained with",
    "all_probs": "not honoured: vidcap keeps no per-token probabilities",
    "compute_logprob": "not honoured: vidcap keeps no log-probabilities",
    "end_strings": "not honoured: generation stops at the model's end-of-turn token",
}


def neva_generation(inference: dict) -> tuple[dict, dict[str, str]]:
    """(our ``generation`` settings, {NeVA key: what was done}) for NeVA's ``inference`` block.

    * ``tokens_to_generate`` -> ``max_new_tokens``; ``min_tokens_to_generate`` -> ``min_new_tokens``
      (0 -> unset).
    * ``greedy: true`` -> ``temperature: 0`` (greedy; ``top_k``/``top_p`` then have no effect and are
      dropped). ``greedy: false`` -> sampling at ``temperature`` (NeVA's default 0.2 when absent); a
      temperature of 0 with greedy false is greedy in vidcap (noted).
    * ``top_k: 0`` (NeVA: off) -> unset; ``top_k > 0`` as is. ``top_p`` in (0, 1) as is; 0 or 1 (off)
      -> unset.
    * ``repetition_penalty`` as is (1.0 = none -> unset). The ``transformers`` runner applies it; the
      ``openai`` runner sends it only to self-hosted servers (vLLM/SGLang), see ``docs/api.md``.
    * ``add_BOS``, ``all_probs``, ``compute_logprob``, ``end_strings``: not honoured (said why).
    * ``media_type``, ``media_base_path``, ``insert_media_token``: not generation settings; handled
      by this module's readers and helpers.
    Unknown keys raise ConfigError naming them (a typo must not be ignored silently).
    """
    known = {"tokens_to_generate", "min_tokens_to_generate", "greedy", "temperature", "top_k", "top_p",
             "repetition_penalty", *_NOT_HONOURED, *_MEDIA_KEYS_HANDLED}
    unknown = sorted(set(inference) - known)
    if unknown:
        raise ConfigError(f"unknown NeVA inference key(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    gen: dict = {}
    notes: dict[str, str] = {}
    inf = dict(inference)
    if inf.get("tokens_to_generate") is not None:
        gen["max_new_tokens"] = int(inf["tokens_to_generate"])
        notes["tokens_to_generate"] = f"max_new_tokens: {gen['max_new_tokens']}"
    if "min_tokens_to_generate" in inf:
        m = int(inf["min_tokens_to_generate"] or 0)
        gen["min_new_tokens"] = m or None
        notes["min_tokens_to_generate"] = f"min_new_tokens: {m}" if m else "0: unset"
    greedy = bool(inf.get("greedy", False))
    if greedy:
        gen["temperature"] = 0.0
        notes["greedy"] = "true: temperature 0 (greedy decoding)"
        for k in ("temperature", "top_k", "top_p"):
            if k in inf:
                notes[k] = "ignored: greedy is true"
    else:
        temp = float(inf.get("temperature", 0.2))
        gen["temperature"] = temp
        notes["greedy"] = "false: sampling" if temp > 0 else "false, but temperature 0: greedy in vidcap"
        notes["temperature"] = f"temperature: {temp:g}" + ("" if "temperature" in inf else " (NeVA default)")
        if "top_k" in inf:
            k = int(inf["top_k"] or 0)
            gen["top_k"] = k if k > 0 else None
            notes["top_k"] = f"top_k: {k}" if k > 0 else "0 (off): unset"
        if "top_p" in inf:
            p = float(inf["top_p"] or 0)
            gen["top_p"] = p if 0 < p < 1 else None
            notes["top_p"] = f"top_p: {p:g}" if 0 < p < 1 else f"{p:g} (off): unset"
    if "repetition_penalty" in inf:
        r = float(inf["repetition_penalty"] or 1.0)
        gen["repetition_penalty"] = None if r == 1.0 else r
        notes["repetition_penalty"] = "1.0 (none): unset" if r == 1.0 else f"repetition_penalty: {r:g}"
    for k, why in _NOT_HONOURED.items():
        if k in inf:
            notes[k] = why
    for k, where in _MEDIA_KEYS_HANDLED.items():
        if k in inf:
            notes[k] = f"not a generation setting: {where}"
    return gen, notes


def apply_neva_inference(generation: dict, inference: dict | None, where: str | None = None,
                         key: str = "stages.caption") -> tuple[dict, str | None, dict[str, str]]:
    """(``generation`` updated by NeVA's ``inference`` block and checked against the caption schema,
    the effective ``insert_media_token``, the notes of ``neva_generation``). ``insert_media_token`` in
    the block is used unless it contradicts ``where``; ``media_base_path`` / ``media_type`` there are
    ConfigErrors saying where vidcap takes them from. ``key``: the config key named in messages."""
    block = dict(inference or {})
    if not block:
        return dict(generation), where, {}
    for name, instead in (("media_base_path", "the top-level media_root"),
                          ("media_type", "each prompt-file line's video or image key")):
        if name in block:
            raise ConfigError(f"config key '{key}.neva_inference.{name}': not a caption setting; "
                              f"vidcap takes it from {instead}")
    neva_where = block.pop("insert_media_token", None)
    if neva_where is not None and where is not None and neva_where != where:
        raise ConfigError(f"config key '{key}.neva_inference.insert_media_token': {neva_where!r} contradicts "
                          f"{key}.insert_media_token {where!r}")
    if neva_where not in (None, "left", "right"):
        raise ConfigError(f"config key '{key}.neva_inference.insert_media_token': must be left or right; "
                          f"got {neva_where!r}")
    gen, notes = neva_generation(block)
    from vidcap.config import stage_settings

    checked = stage_settings("caption", {"generation": {**generation, **gen}})["generation"]
    return checked, where or neva_where, notes


# ---------------------------------------------------------------------------------- answer files


def answer_id(question_id: str, model_id: str, text: str) -> str:
    """A stable id for one answer (llava-bench uses random shortuuids; ours is a hash, so reruns match)."""
    blob = f"{question_id}\x00{model_id}\x00{text}".encode()
    return hashlib.blake2b(blob, digest_size=11).hexdigest()


def _missing(value) -> bool:
    """True for None, NaN and pandas' NA (cells of tables read with Arrow dtypes)."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value)) if not isinstance(value, (list, dict, tuple)) else False
    except (TypeError, ValueError):
        return False


def answer_records(df: pd.DataFrame, model_id: str = "", text_column: str = "text", prompt_column: str | None = "prompt",
                   error_column: str | None = None, metadata_columns: Iterable[str] = ("category",),
                   model_column: str | None = None, prompt: str | None = None,
                   id_column: str = "question_id") -> Iterator[dict]:
    """NeVA answer objects from a table with ``question_id`` (or ``id_column``) and an answer column (e.g.
    the caption stage's output). A row whose ``error_column`` is set gets ``"text": ""`` and
    ``metadata.error`` (``read_answers`` turns it back into an error, never into an empty answer).
    ``model_column``: the row's model (e.g. ``caption_model``) where set, else ``model_id``.
    ``prompt``: the prompt text of rows without a ``prompt_column`` (None, or not in the table)."""
    for col in (id_column, text_column):
        if col not in df.columns:
            raise TableError(f"cannot write answers: no column {col!r}")
    for row in df.to_dict("records"):
        qid = str(row[id_column])
        err = row.get(error_column) if error_column else None
        err = "" if _missing(err) else str(err)
        text = row.get(text_column)
        text = "" if err or _missing(text) else str(text)
        meta = {c: row[c] for c in metadata_columns if c in row and not _missing(row[c])}
        if err:
            meta["error"] = err
        model = row.get(model_column) if model_column else None
        model = model_id if _missing(model) or not str(model) else str(model)
        asked = row.get(prompt_column) if prompt_column and prompt_column in row else prompt
        yield {"question_id": _json_id(qid), "prompt": "" if _missing(asked) else str(asked), "text": text,
               "answer_id": answer_id(qid, model, text), "model_id": model, "metadata": meta}


def write_answers(records: Iterable[dict] | pd.DataFrame, path: str | Path, model_id: str | None = None,
                  **kwargs) -> Path:
    """Write an answers JSONL atomically. ``records``: answer dicts (see ``answer_records``) or a
    DataFrame (then ``model_id`` is required and ``kwargs`` go to ``answer_records``)."""
    if isinstance(records, pd.DataFrame):
        if not model_id and not kwargs.get("model_column"):
            raise ValueError("write_answers: model_id (or model_column) is required for a table")
        records = answer_records(records, model_id or "", **kwargs)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False, default=str) + "\n")
    return Path(path)


def answer_row(obj: dict) -> dict:
    """One answer from either shape; ValueError saying what is wrong."""
    if "question_id" in obj and "text" in obj:
        shape, qid, text = "question_id", obj["question_id"], obj["text"]
    elif "response_id" in obj and "response" in obj:
        shape, qid, text = "response_id", obj["response_id"], obj["response"]
    else:
        raise ValueError("not an answer: needs question_id and text, or response_id and response")
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise ValueError(f"the answer must be a string; got {json.dumps(text)[:60]}")
    meta = obj.get("metadata") or {}
    if not isinstance(meta, dict):
        raise ValueError("metadata must be an object")
    err = str(meta.get("error") or "")
    return {"question_id": _question_id(qid), "text": text, "prompt": str(obj.get("prompt") or ""),
            "model_id": str(obj.get("model_id") or ""), "answer_id": str(obj.get("answer_id") or ""),
            "category": str(obj.get("category") or meta.get("category") or ""),
            "metadata": json.dumps(meta, ensure_ascii=False, sort_keys=True) if meta else "",
            "error": err, "shape": shape}


def read_answers(path: str | Path, on_bad_line: str = "fail") -> ReadResult:
    """An answers JSONL in either shape as a table with ``ANSWER_COLUMNS`` (``question_id`` as text,
    ``line`` = its line number, ``shape`` = ``question_id`` | ``response_id``, ``error`` from
    ``metadata.error``). Bad lines (not JSON, neither shape, a repeated id) as in ``read_prompt_file``.
    """
    _check_mode(on_bad_line)
    path = Path(path)
    if not path.is_file():
        raise TableError(f"answers file not found: {path}")
    rows, bad, seen = [], [], {}
    for number, line, problem in _iter_lines(path):
        obj = _parse_object(number, line, problem)
        if isinstance(obj, BadLine):
            bad.append(obj)
            continue
        try:
            row = answer_row(obj)
        except ValueError as exc:
            bad.append(BadLine(number, str(exc), line.strip()[:_MAX_SHOWN]))
            continue
        qid = row["question_id"]
        if qid in seen:
            bad.append(BadLine(number, f"id {qid} already answered on line {seen[qid]}", line.strip()[:_MAX_SHOWN]))
            continue
        seen[qid] = number
        row["line"] = number
        rows.append(row)
    result = _finish(path, rows, bad, ANSWER_COLUMNS, on_bad_line, "answers file")
    result.table["line"] = result.table["line"].astype("int64")
    return result
