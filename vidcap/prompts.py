"""Prompt registry: the prompts vidcap ships, plus any the user adds in config.

A prompt has a ``system`` text (may be empty), a ``user`` template and a ``kind``:
``video`` / ``image`` (sent with frames) or ``text`` (text-only: rewrite, tags). ``{text}`` in a
template is replaced by the row's existing ``text`` column (the "hint" prompts); a prompt that uses
``{text}`` fails its row when the row has no text. Per-row questions (``stages.caption.prompt_column``,
a NeVA prompt file): the row's question fills ``{question}`` in the user template, or, in a template
without ``{question}``, replaces the user text (the system text stays); a template with
``{question}`` used without a question, or a row whose question is empty, is an error.
``prompt_hash`` identifies the exact wording for provenance columns (the template, not the question).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

_NO_FRAMES_TALK = ("Describe it as one continuous video; do not narrate frame by frame and do not "
                   "mention frames, images or 'the first frame'.")


@dataclass(frozen=True)
class Prompt:
    key: str
    user: str
    system: str = ""
    kind: str = "video"  # video | image | text

    @property
    def uses_text(self) -> bool:
        return "{text}" in self.user or "{text}" in self.system

    @property
    def uses_question(self) -> bool:
        return "{question}" in self.user

    def render(self, text: str | None = None, question: str | None = None) -> tuple[str, str]:
        """(system, user) with ``{text}`` and ``{question}`` filled in (module docstring); ValueError
        when a hint or a question is needed and missing."""
        if self.uses_text and not (text or "").strip():
            raise ValueError(f"prompt {self.key!r} needs the row's text column, which is empty")
        if question is None and self.uses_question:
            raise ValueError(f"prompt {self.key!r} needs a question per row (stages.caption.prompt_column)")
        if question is not None and not question.strip():
            raise ValueError("the row's question is empty")
        fill = (text or "").strip()
        system, user = self.system.replace("{text}", fill), self.user.replace("{text}", fill)
        if question is not None:
            user = user.replace("{question}", question.strip()) if self.uses_question else question.strip()
        return system, user

    @property
    def hash(self) -> str:
        return prompt_hash(self)


def prompt_hash(prompt: Prompt) -> str:
    blob = f"{prompt.kind}\x00{prompt.system}\x00{prompt.user}"
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


BUILTIN: dict[str, Prompt] = {
    p.key: p
    for p in [
        Prompt("image_short", kind="image",
               user="Describe this image in one short sentence: the main subject and the setting."),
        Prompt("video_detailed",
               system="You write captions for a video dataset used to train video generation models.",
               user=("Describe this video in detail in at most six sentences: the main subjects and what "
                     "they do, the setting, the visual style, lighting and camera work. " + _NO_FRAMES_TALK)),
        Prompt("video_short",
               user="Describe this video in one sentence: who or what is in it and what happens."),
        Prompt("video_detailed_fewshot",
               system="You write captions for a video dataset used to train video generation models.",
               user=("Describe this video in at most six sentences. " + _NO_FRAMES_TALK + "\n"
                     "Example 1: A golden retriever runs along a wet beach at sunset, kicking up spray. "
                     "The camera tracks it from the side at a low angle. Warm orange light reflects off "
                     "the sand and the waves roll in behind the dog.\n"
                     "Example 2: A chef slices green onions on a wooden board in a busy restaurant "
                     "kitchen. Steam rises from pots in the background. The shot is a close-up under "
                     "bright overhead light, with a shallow depth of field.\n"
                     "Now describe the video.")),
        Prompt("video_hint",
               system="You write captions for a video dataset used to train video generation models.",
               user=("A short description of this video is: \"{text}\". Using it as a hint, describe the "
                     "video in detail in at most six sentences. " + _NO_FRAMES_TALK)),
        Prompt("video_structured",
               system="You write structured captions for a video dataset.",
               user=("Describe this video in six labelled parts, one sentence each:\n"
                     "Subject: ...\nSubject movement: ...\nScene: ...\nAtmosphere: ...\n"
                     "Light and shadow: ...\nCamera technique: ...\n" + _NO_FRAMES_TALK)),
        Prompt("question", user="{question}"),   # the row's own question as is (NeVA prompt files)
        Prompt("rewrite_structured", kind="text",
               system="You rewrite video captions into a fixed structure without adding facts.",
               user=("Rewrite this video caption into six labelled parts, one sentence each (Subject, "
                     "Subject movement, Scene, Atmosphere, Light and shadow, Camera technique). Use only "
                     "what the caption says; write 'not stated' where it says nothing.\n"
                     "Caption: {text}")),
        # windowed captions (stages.caption.windows.summary): {text} = the clip's length and one
        # "[start-end s] caption" line per window (vidcap.caption.windows.summary_input)
        Prompt("window_summary", kind="text",
               system="You write captions for a video dataset used to train video generation models.",
               user=("Below are captions of consecutive parts of one video, each after its time span in "
                     "seconds.\n{text}\n\n"
                     "Write one caption for the whole video in at most six sentences: the main subjects and "
                     "what they do, in the order it happens, the setting, the visual style and the camera "
                     "work. Use only what the part captions say; do not mention parts, time spans or "
                     "captions.")),
    ]
}


def get_prompt(key: str, custom: dict | None = None) -> Prompt:
    """The prompt for ``key``: user-defined ones (config ``prompts``) first, then the built-ins.

    ``custom``: ``{key: {"user": ..., "system": ..., "kind": ...}}``. KeyError lists known keys.
    """
    custom = custom or {}
    if key in custom:
        spec = custom[key]
        return Prompt(key, user=spec["user"], system=spec.get("system", ""), kind=spec.get("kind", "video"))
    if key in BUILTIN:
        return BUILTIN[key]
    known = sorted(set(BUILTIN) | set(custom))
    raise KeyError(f"unknown prompt {key!r}; known: {', '.join(known)}")


def with_user_prompts(settings: dict, prompts: dict | None) -> dict:
    """A stage's settings with the wording of the user-defined prompts it names (the config's top-level
    ``prompts:``) attached, so they travel to the job and a changed wording changes the fingerprint:
    ``prompt`` -> ``prompt_spec``, ``windows.summary.prompt`` -> ``summary_prompt_spec``."""
    prompts = prompts or {}
    out = dict(settings)
    if out.get("prompt") in prompts:
        out["prompt_spec"] = prompts[out["prompt"]]
    summary = ((out.get("windows") or {}).get("summary") or {}).get("prompt")
    if summary in prompts:
        out["summary_prompt_spec"] = prompts[summary]
    return out
