"""Clean stage: caption hygiene per row — clean-up, flags and lengths (CPU, no model).

Input: the caption text — the caption stage's output column when captioning is on, else the manifest's
column (``text_column``, default ``text``) — and, with ``append_motion``, the motion stage's ``cmotion``.

Every rule is a switch (settings, defaults in ``config/schema.yaml``):

* ``collapse_whitespace``: control characters dropped, newlines/tabs to spaces, runs collapsed, ends
  trimmed (``vidcap.text.normalize_whitespace``).
* ``strip_openings``: one boilerplate opening removed ("The video shows", "In this video,", ...;
  ``vidcap.text.strip_opening``).
* ``append_motion``: the camera-motion sentence of ``cmotion`` appended ("The camera pans left.";
  nothing for ``unclassified`` or a failed motion row; ``vidcap.camera_text.append_motion_to_caption``).
* ``flag_empty``: ``flag_empty`` = the cleaned caption is empty (or missing).
* ``flag_url``: ``flag_url`` = the caption holds a URL or a web address (``URL``).
* ``flag_repeat``: ``flag_repeat`` = a degenerate repetition: a phrase of 1..``MAX_LOOP`` words repeated
  ``repeat_count`` times or more back to back ("the dog the dog the dog"), or a phrase of
  ``repeat_ngram`` words occurring ``repeat_count`` times or more anywhere in the caption.
* ``words``: ``caption_words`` = words (whitespace-separated runs holding a letter or digit).
* ``tokens``: ``caption_tokens`` = tokens of the tokenizer named by ``tokenizer`` (a hub id or folder;
  ``auto`` = the caption model's, resolved by the workflow, null when there is none). An explicitly
  named tokenizer that cannot be loaded stops the job; ``auto`` that cannot be loaded gives null.

A switch that is off leaves its column null. Output text goes to ``clean_text``, or with ``replace_text``
to the text column itself (the merged table's ``text`` is then the cleaned caption). Lengths and
flags are measured on the final text (motion sentence included). Exact duplicates across the dataset
are marked at merge time (``caption_duplicate``, ``vidcap.gather``), since that needs every shard.
A row whose caption stage failed gets ``clean_error``; a missing or empty text is not an error
(``flag_empty``).
"""
from __future__ import annotations

import logging
import re
from typing import Any

import pyarrow as pa

from vidcap.camera_text import append_motion_to_caption
from vidcap.config import stage_settings
from vidcap.errors import RunnerFatal, StageRowError
from vidcap.io.shards import MEDIA_PATH, ROW_ID
from vidcap.stages.base import Stage
from vidcap.text import normalize_whitespace, strip_opening

log = logging.getLogger("vidcap.clean.stage")

URL = re.compile(
    r"(?i)\b(?:https?://|ftp://|www\.)\S+"
    r"|\b[a-z0-9][a-z0-9-]{0,62}(?:\.[a-z0-9-]{1,63})*\.(?:com|org|net|io|ly|co|tv|me|info|biz|edu|gov|uk|de|"
    r"fr|ru|cn|jp|app|dev|xyz|gg)\b(?:/\S*)?")
_WORD = re.compile(r"\S*[^\W_]\S*")
MAX_LOOP = 8        # longest phrase (words) checked for back-to-back repetition
SWITCHES = ("collapse_whitespace", "strip_openings", "append_motion", "flag_empty", "flag_url", "flag_repeat",
            "words", "tokens", "replace_text")



def words(text: str) -> list[str]:
    """Lower-cased words of ``text`` (punctuation at the ends removed), for counting and repetition."""
    return [w.strip(".,;:!?\"'()[]{}").lower() for w in _WORD.findall(text or "")]


def has_url(text: str) -> bool:
    return bool(URL.search(text or ""))


def is_repetitive(text: str, ngram: int = 4, count: int = 3) -> bool:
    """A phrase repeated ``count`` times back to back, or an ``ngram``-word phrase ``count`` times anywhere."""
    w = [x for x in words(text) if x]
    count = max(2, int(count))
    for n in range(1, MAX_LOOP + 1):
        for i in range(0, len(w) - n * count + 1):
            phrase = w[i : i + n]
            if all(w[i + j * n : i + (j + 1) * n] == phrase for j in range(1, count)):
                return True
    n = max(1, int(ngram))
    seen: dict[tuple, int] = {}
    for i in range(len(w) - n + 1):
        key = tuple(w[i : i + n])
        seen[key] = seen.get(key, 0) + 1
        if seen[key] >= count:
            return True
    return False


class CleanStage(Stage):
    reads_media = False   # text only
    name = "clean"
    version = "1"
    batch_size = 256

    def __init__(self, params: dict | None = None):
        s = stage_settings(self.name, params, passthrough=("tokenizer_auto",))
        self.settings = s
        self.text_column = s.get("text_column") or "text"
        self.tokenizer_name = s.get("tokenizer") if s["tokens"] else None
        if self.tokenizer_name == "auto":
            self.tokenizer_name = None  # the workflow resolves auto; called directly there is none
        self.output_column = self.text_column if s["replace_text"] else "clean_text"
        self.columns = {
            self.output_column: pa.string(),
            "caption_words": pa.int64(),
            "caption_tokens": pa.int64(),
            "flag_empty": pa.bool_(),
            "flag_url": pa.bool_(),
            "flag_repeat": pa.bool_(),
        }
        self.input_columns = (ROW_ID, MEDIA_PATH, self.text_column, "caption_error",
                              *(("cmotion",) if s["append_motion"] else ()))
        params = {k: s[k] for k in SWITCHES}
        params.update(text_column=self.text_column, tokenizer=self.tokenizer_name,
                      repeat_ngram=int(s["repeat_ngram"]), repeat_count=int(s["repeat_count"]))
        super().__init__(params)
        self.tokenizer: Any = None  # a transformers tokenizer once loaded
        self._tried = False

    def setup(self) -> None:
        if self._tried or not self.tokenizer_name:
            return
        self._tried = True
        # heavy: transformers, only when a model or processor is built
        from transformers import AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.tokenizer_name)
        except (OSError, ValueError) as exc:
            if self.settings.get("tokenizer") != "auto" and not self.settings.get("tokenizer_auto"):
                raise RunnerFatal(f"clean: cannot load tokenizer {self.tokenizer_name!r}: {exc}") from None
            log.warning("clean: tokenizer %r unavailable (%s); caption_tokens left empty",
                        self.tokenizer_name, " ".join(str(exc).split())[:200])

    def process(self, rows: list[dict]) -> dict:
        return {row[ROW_ID]: self.process_row(row) for row in rows}

    def process_row(self, row: dict) -> dict | BaseException:
        s = self.settings
        if row.get("caption_error"):
            return StageRowError("no caption: the caption stage failed for this row")
        text = row.get(self.text_column) or ""
        text = normalize_whitespace(text) if s["collapse_whitespace"] else text
        if s["strip_openings"]:
            text = strip_opening(text)
        if s["append_motion"]:
            text = append_motion_to_caption(text, row.get("cmotion") or "")
        n_tokens = None
        if s["tokens"] and self.tokenizer is not None:
            n_tokens = len(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0
        return {
            self.output_column: text,
            "caption_words": len(words(text)) if s["words"] else None,
            "caption_tokens": n_tokens,
            "flag_empty": (not text.strip()) if s["flag_empty"] else None,
            "flag_url": has_url(text) if s["flag_url"] else None,
            "flag_repeat": is_repetitive(text, s["repeat_ngram"], s["repeat_count"]) if s["flag_repeat"] else None,
        }
