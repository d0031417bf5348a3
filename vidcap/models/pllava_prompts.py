"""PLLaVA caption prompts: a ``general`` and a ``person`` template, each long (256 tokens) or short (128).

The length of a row's caption is chosen from its row id alone (SHA-256 of the id -> a number in
[0, 1); short when below ``short_caption_ratio``), so a rerun or a resumed shard gives every row the
same choice, on any machine, in any order. ``PllavaPrompt.provenance`` says what was chosen.
The wording is vidcap's own (Open-Sora's texts are not copied).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

SYSTEM = "You write captions for a video dataset used to train video generation models."
_ONE_SHOT = ("Describe it as one continuous shot; do not narrate frame by frame and do not mention frames, "
             "images or a 'first frame'.")
TEMPLATES: dict[str, dict[str, str]] = {
    "general": {
        "long": ("Describe this video in detail in at most six sentences: the main subjects and what they do, "
                 "the setting, colours and lighting, and how the camera moves. " + _ONE_SHOT),
        "short": "Describe this video in one or two sentences: the main subject, what happens and where. " + _ONE_SHOT,
    },
    "person": {
        "long": ("Describe the people in this video in at most six sentences: their apparent age, clothing and "
                 "hair, what each of them does and how they move, their expressions, the setting, and how the "
                 "camera moves. Do not guess names or identities. " + _ONE_SHOT),
        "short": ("Describe the people in this video in one or two sentences: what they wear, what they do and "
                  "where. Do not guess names or identities. " + _ONE_SHOT),
    },
}
MAX_NEW_TOKENS = {"long": 256, "short": 128}


@dataclass(frozen=True)
class PllavaPrompt:
    template: str        # "general" | "person"
    length: str          # "long" | "short"
    system: str
    user: str
    max_new_tokens: int  # 256 long, 128 short (unless set otherwise)

    @property
    def key(self) -> str:
        """``pllava:<template>:<length>``, e.g. ``pllava:general:short`` (the caption stage's ``caption_prompt``)."""
        return f"pllava:{self.template}:{self.length}"

    @property
    def provenance(self) -> dict:
        """What this row was asked: key, template, length, token budget and a hash of the exact wording."""
        blob = f"{self.system}\x00{self.user}"
        return {"prompt": self.key, "prompt_template": self.template, "caption_length": self.length,
                "max_new_tokens": self.max_new_tokens,
                "prompt_hash": hashlib.sha256(blob.encode()).hexdigest()[:12]}


def row_fraction(row_id) -> float:
    """A number in [0, 1) fixed by ``row_id`` alone (first 8 bytes of SHA-256 of its text)."""
    digest = hashlib.sha256(f"pllava-length\x00{row_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


def caption_length(row_id, short_caption_ratio: float) -> str:
    """``short`` for about ``short_caption_ratio`` of rows (chosen by id), else ``long``.

    ValueError when the ratio is outside [0, 1].
    """
    ratio = float(short_caption_ratio)
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"short_caption_ratio must be within [0, 1], got {short_caption_ratio!r}")
    return "short" if row_fraction(row_id) < ratio else "long"


def prompt_for(template: str, length: str, max_new_tokens: dict | None = None) -> PllavaPrompt:
    """``template`` ("general" | "person") at ``length`` ("long" | "short"); ValueError for an unknown one.

    ``max_new_tokens``: token limits per length overriding ``MAX_NEW_TOKENS`` (256 long, 128 short).
    """
    if template not in TEMPLATES:
        raise ValueError(f"unknown PLLaVA prompt template {template!r}; known: {', '.join(TEMPLATES)}")
    if length not in MAX_NEW_TOKENS:
        raise ValueError(f"unknown PLLaVA caption length {length!r}; known: {', '.join(MAX_NEW_TOKENS)}")
    limit = int({**MAX_NEW_TOKENS, **(max_new_tokens or {})}[length])
    if limit < 1:
        raise ValueError(f"max_new_tokens of {length} captions must be >= 1, got {limit}")
    return PllavaPrompt(template, length, SYSTEM, TEMPLATES[template][length], limit)


def lengths_in_use(short_caption_ratio: float) -> list[str]:
    """The lengths rows can get at this ratio: ``long`` unless the ratio is 1, ``short`` unless it is 0."""
    ratio = float(short_caption_ratio)
    return [n for n, used in (("long", ratio < 1.0), ("short", ratio > 0.0)) if used]


def pllava_prompt(row_id, template: str = "general", short_caption_ratio: float = 0.0,
                  max_new_tokens: dict | None = None) -> PllavaPrompt:
    """The prompt for one row: ``template`` at the length its id picks (``max_new_tokens``: as ``prompt_for``).

    ValueError for an unknown template or a ratio outside [0, 1].
    """
    if template not in TEMPLATES:
        raise ValueError(f"unknown PLLaVA prompt template {template!r}; known: {', '.join(TEMPLATES)}")
    return prompt_for(template, caption_length(row_id, short_caption_ratio), max_new_tokens)
