"""Tags stage: lists of tags per row (``objects``, ``actions`` and user keys) from an LLM reading the caption.

Input: the caption text — the caption stage's output column when captioning is on (``--upstream
caption=...``), else the manifest's column (``text_column``, default ``text``). A row whose caption
stage failed, or whose text is empty, gets ``tags_error`` without a request.

Keys: ``objects`` and ``actions`` are built in (``BUILTIN_KEYS``, instructions written here); ``keys`` in
the settings adds keys (``{name: instruction}``) or replaces a built-in instruction; ``{objects: null}``
drops a built-in key. Each key becomes a column of that name holding a list of strings.

Requests (``json_mode``):

* ``true`` (default): one request per row answers every key as a JSON object; the ``openai`` runner sends
  ``response_format: {"type": "json_object"}`` (``openai.response_format``), the local model is asked for
  JSON in the prompt; answers are parsed leniently (``vidcap.tags.parse.parse_answer``).
* ``false``: one request per key and row, answered as a bracketed list (Open-Sora's form, ``[dog, person]``),
  parsed by ``vidcap.tags.parse.parse_list``.

Runners: ``transformers`` → ``text_transformers`` (local chat model, batched, greedy, left padding,
``vidcap.runners.hf_text``) or ``openai`` (``vidcap.runners.openai_api`` with text-only requests).

Results per row: one column per key, ``tags_model``, ``tags_prompt_hash`` and ``tags_error``. A key the
answer gives no list for is an empty list and is named in ``tags_error`` (never a guessed tag); "none" in
the answer is an empty list without error. A request that fails leaves the key columns null (contract).

``params`` (the journal fingerprint): runner, the runner's model settings, keys with their instructions,
json_mode, text column, generation and the prompt hash; not batch size, concurrency, limits or retries.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re

import pyarrow as pa

from vidcap.config import stage_settings
from vidcap.errors import StageRowError
from vidcap.io.shards import MEDIA_PATH, ROW_ID
from vidcap.runners import get_runner, result_settings, runner_for
from vidcap.runners.base import Request, Runner
from vidcap.stages.base import Stage
from vidcap.tags.parse import parse_answer, parse_list
from vidcap.text import normalize_whitespace

log = logging.getLogger("vidcap.tags.stage")

BUILTIN_KEYS = {
    "objects": "the people, animals, vehicles and things that are visible, as short nouns in the singular "
               "(for example: dog, person, car, coffee cup)",
    "actions": "what the people, animals or things do, as short verbs in the base form "
               "(for example: run, laugh, pour coffee)",
}
SYSTEM = ("You read a caption of a video and list tags taken from it. Use only what the caption says; "
          "never guess. Tags are short lower-case phrases of one to three words.")
JOINT_TEMPLATE = ("Caption:\n\"\"\"{text}\"\"\"\n\n"
                  "Answer with a JSON object with exactly these keys, each a list of tags from the caption "
                  "(an empty list when the caption mentions none):\n{keys}\n"
                  "Answer with the JSON object only, for example {example}.")
KEY_TEMPLATE = ("Caption:\n\"\"\"{text}\"\"\"\n\n"
                "List {instruction}.\nAnswer with a bracketed list only, for example [dog, person]; "
                "answer [] when the caption mentions none.")
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
RESERVED = {ROW_ID, MEDIA_PATH, "path", "text", "tags_model", "tags_prompt_hash", "tags_error"}
_SEP = "\x1f"   # request id = row id + _SEP + key (json_mode false)



def effective_keys(user_keys: dict | None) -> dict[str, str]:
    """Built-in keys updated by the user's (``None`` drops a key); ValueError for a bad name."""
    keys = dict(BUILTIN_KEYS)
    for name, instruction in (user_keys or {}).items():
        if not KEY_PATTERN.match(str(name)) or name in RESERVED:
            raise ValueError(f"tags key {name!r}: must match {KEY_PATTERN.pattern} and not be one of "
                             f"{', '.join(sorted(RESERVED))}")
        if instruction is None:
            keys.pop(name, None)
        else:
            keys[name] = " ".join(str(instruction).split())
    if not keys:
        raise ValueError("tags: no keys left (every built-in key dropped and none added)")
    return keys


class TagsStage(Stage):
    reads_media = False   # text only
    name = "tags"
    version = "1"

    def __init__(self, params: dict | None = None):
        s = stage_settings(self.name, params)
        self.settings = s
        self.keys = effective_keys(s.get("keys"))
        self.json_mode = bool(s["json_mode"])
        self.text_column = s.get("text_column") or "text"
        self.runner_name = s["runner"]
        self.batch_size = int(s["batch_size"])
        self.columns = {k: pa.list_(pa.string()) for k in self.keys}
        self.columns.update({"tags_model": pa.string(), "tags_prompt_hash": pa.string()})
        self.input_columns = (ROW_ID, MEDIA_PATH, self.text_column, "caption_error")
        self.prompt_hash = hashlib.sha256(json.dumps(
            [SYSTEM, JOINT_TEMPLATE if self.json_mode else KEY_TEMPLATE, self.keys, self.json_mode],
            sort_keys=True).encode()).hexdigest()[:12]
        block = result_settings(self.runner_name, s.get(self.runner_name, {}))
        if self.runner_name == "openai" and not self.json_mode:
            block.pop("response_format", None)
        super().__init__({"runner": self.runner_name, self.runner_name: block, "keys": self.keys,
                          "json_mode": self.json_mode, "text_column": self.text_column,
                          "generation": dict(s["generation"]), "prompt_hash": self.prompt_hash})
        self.runner: Runner | None = None
        self.provenance: dict = {}

    # ---------------------------------------------------------------------------------- prompts

    def joint_prompt(self, text: str) -> str:
        keys = "\n".join(f'- "{k}": {v}' for k, v in self.keys.items())
        example = json.dumps({k: ["..."] for k in self.keys})
        return JOINT_TEMPLATE.format(text=text, keys=keys, example=example)

    def key_prompt(self, text: str, key: str) -> str:
        return KEY_TEMPLATE.format(text=text, instruction=self.keys[key])

    def requests(self, text: str, row_id: str) -> list[Request]:
        if self.json_mode:
            return [Request(row_id, user=self.joint_prompt(text), system=SYSTEM)]
        return [Request(f"{row_id}{_SEP}{k}", user=self.key_prompt(text, k), system=SYSTEM) for k in self.keys]

    # ----------------------------------------------------------------------------------- runner

    def runner_settings(self) -> dict:
        s = self.settings
        block = dict(s.get(self.runner_name, {}))
        if self.runner_name == "openai" and not self.json_mode:
            block.pop("response_format", None)
        return {**block, "generation": dict(s["generation"]), "batch_size": self.batch_size}

    def setup(self) -> None:
        """Nothing up front: the model loads in ``process_stream`` only when a row has text to tag."""

    def _load(self) -> None:
        if self.runner is None:  # a runner set beforehand (tests) is used as given
            self.runner = get_runner(runner_for(self.runner_name, media=False), self.runner_settings())
        self.runner.load()
        self.provenance = self.runner.provenance()
        log.info("tags: runner %s, model %s, keys %s, json_mode %s, prompt %s", self.runner_name,
                 self.provenance.get("model"), ", ".join(self.keys), self.json_mode, self.prompt_hash)

    # ------------------------------------------------------------------------------------ stream

    def _text(self, row: dict) -> str | BaseException:
        if row.get("caption_error"):
            return StageRowError("no caption: the caption stage failed for this row")
        if self.text_column not in row:
            return StageRowError(f"no caption text: no column {self.text_column!r} (caption stage off and "
                              "none in the manifest)")
        text = normalize_whitespace(row.get(self.text_column) or "")
        if not text:
            return StageRowError("no caption text (empty)")
        return text

    def process_stream(self, rows: list[dict]):
        try:
            yield from self._stream(rows)
        finally:
            if self.runner is not None:
                self.stats.update(getattr(self.runner, "stats", {}) or {})

    def _stream(self, rows: list[dict]):
        todo = []
        for row in rows:
            text = self._text(row)
            if isinstance(text, BaseException):
                yield row[ROW_ID], text
            else:
                todo.append((row[ROW_ID], text))
        if not todo:
            return
        if self.runner is None or not self.provenance:
            self._load()
        assert self.runner is not None  # set by _load
        requests = (req for row_id, text in todo for req in self.requests(text, row_id))
        if self.json_mode:
            for req_id, gen in self.runner.run(requests):
                yield req_id, self._joint_result(gen)
            return
        answers: dict[str, dict] = {}
        for req_id, gen in self.runner.run(requests):
            row_id, _, key = req_id.partition(_SEP)
            got = answers.setdefault(row_id, {})
            got[key] = gen
            if len(got) == len(self.keys):
                yield row_id, self._per_key_result(answers.pop(row_id))
        for row_id, got in answers.items():  # a runner that dropped a request: fail what is missing
            missing = {k: RuntimeError("runner returned no answer") for k in self.keys if k not in got}
            yield row_id, self._per_key_result({**got, **missing})

    def _base(self) -> dict:
        return {"tags_model": self.provenance.get("model") or "", "tags_prompt_hash": self.prompt_hash}

    def _joint_result(self, gen):
        if isinstance(gen, BaseException):
            return gen
        if gen is None:
            return RuntimeError("runner returned no result for this row")
        parsed = parse_answer(gen.text, list(self.keys))
        out = self._base()
        missing = [k for k, v in parsed.items() if v is None]
        for k, v in parsed.items():
            out[k] = v if v is not None else []
        if missing:
            out["tags_error"] = _no_list(missing, gen)
        return out

    def _per_key_result(self, got: dict):
        out = self._base()
        problems, failed = [], []
        for key in self.keys:
            gen = got.get(key)
            if isinstance(gen, BaseException) or gen is None:
                failed.append(key)
                problems.append(f"{key}: {gen or 'no answer'}")
                out[key] = []
                continue
            items = parse_list(gen.text)
            if items is None:
                problems.append(_no_list([key], gen))
                items = []
            out[key] = items
        if len(failed) == len(self.keys):
            return RuntimeError("; ".join(problems))
        if problems:
            out["tags_error"] = "; ".join(problems)
        return out

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()


def _no_list(keys: list[str], gen) -> str:
    if not (gen.text or "").strip():
        return "empty answer"
    where = "answer cut at max_new_tokens; " if gen.finish_reason == "length" else ""
    return f"{where}no list in the answer for: {', '.join(keys)}"
