"""NeVA answer files: JSONL, one answer a line.

**Answer files**: ``write_answers`` writes NeVA's / llava-bench's shape, one object a line:
``{"question_id", "prompt", "text", "answer_id", "model_id", "metadata"}``. ``read_answers`` reads
it and the other shape ``{"response_id", "response"}`` (lines may mix them).
Bad lines as in ``vidcap.io.prompt_files`` (``on_bad_line`` ``fail`` | ``report``).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd

from vidcap.errors import TableError
from vidcap.io.atomic import atomic_path
from vidcap.io.prompt_files import (
    MAX_SHOWN,
    BadLine,
    ReadResult,
    check_bad_line_mode,
    finish_read,
    is_missing,
    iter_lines,
    json_id,
    parse_object,
    question_id_text,
)

ANSWER_COLUMNS = ("question_id", "text", "prompt", "model_id", "answer_id", "category", "metadata",
                  "error", "shape", "line")


def answer_id(question_id: str, model_id: str, text: str) -> str:
    """A stable id for one answer (llava-bench uses random shortuuids; ours is a hash, so reruns match)."""
    blob = f"{question_id}\x00{model_id}\x00{text}".encode()
    return hashlib.blake2b(blob, digest_size=11).hexdigest()


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
        err = "" if is_missing(err) else str(err)
        text = row.get(text_column)
        text = "" if err or is_missing(text) else str(text)
        meta = {c: row[c] for c in metadata_columns if c in row and not is_missing(row[c])}
        if err:
            meta["error"] = err
        model = row.get(model_column) if model_column else None
        model = model_id if is_missing(model) or not str(model) else str(model)
        asked = row.get(prompt_column) if prompt_column and prompt_column in row else prompt
        yield {"question_id": json_id(qid), "prompt": "" if is_missing(asked) else str(asked), "text": text,
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
    return {"question_id": question_id_text(qid), "text": text, "prompt": str(obj.get("prompt") or ""),
            "model_id": str(obj.get("model_id") or ""), "answer_id": str(obj.get("answer_id") or ""),
            "category": str(obj.get("category") or meta.get("category") or ""),
            "metadata": json.dumps(meta, ensure_ascii=False, sort_keys=True) if meta else "",
            "error": err, "shape": shape}


def read_answers(path: str | Path, on_bad_line: str = "fail") -> ReadResult:
    """An answers JSONL in either shape as a table with ``ANSWER_COLUMNS`` (``question_id`` as text,
    ``line`` = its line number, ``shape`` = ``question_id`` | ``response_id``, ``error`` from
    ``metadata.error``). Bad lines (not JSON, neither shape, a repeated id) as in ``read_prompt_file``.
    """
    check_bad_line_mode(on_bad_line)
    path = Path(path)
    if not path.is_file():
        raise TableError(f"answers file not found: {path}")
    rows: list[dict] = []
    bad: list[BadLine] = []
    seen: dict[str, int] = {}
    for number, line, problem in iter_lines(path):
        obj = parse_object(number, line, problem)
        if isinstance(obj, BadLine):
            bad.append(obj)
            continue
        assert line is not None  # parse_object returns a BadLine for an undecodable line
        try:
            row = answer_row(obj)
        except ValueError as exc:
            bad.append(BadLine(number, str(exc), line.strip()[:MAX_SHOWN]))
            continue
        qid = row["question_id"]
        if qid in seen:
            bad.append(BadLine(number, f"id {qid} already answered on line {seen[qid]}", line.strip()[:MAX_SHOWN]))
            continue
        seen[qid] = number
        row["line"] = number
        rows.append(row)
    result = finish_read(path, rows, bad, ANSWER_COLUMNS, on_bad_line, "answers file")
    result.table["line"] = result.table["line"].astype("int64")
    return result
