"""NeVA's ``inference`` block for the caption stage: media token placement and sampling knobs.

**Media token**: ``insert_media_token(question, "left" | "right", media_type)`` places NeVA's
``<video>`` / ``<image>`` placeholder the way NeVA does (left: token, newline, question; right:
question then token); ``media_first(where)`` says where chat-template runners put the media parts.

**Sampling knobs**: ``neva_generation(inference)`` maps NeVA's ``inference`` block onto our
``generation`` settings and says, per key, what was done with it (see its docstring).
``apply_neva_inference`` applies a block to the caption stage's settings.
"""
from __future__ import annotations

from vidcap.config import stage_settings
from vidcap.errors import ConfigError

MEDIA_TOKENS = {"video": "<video>", "image": "<image>"}


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
      by ``vidcap.io.prompt_files.read_prompt_file`` and this module's ``insert_media_token``.
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
            top_k = int(inf["top_k"] or 0)
            gen["top_k"] = top_k if top_k > 0 else None
            notes["top_k"] = f"top_k: {top_k}" if top_k > 0 else "0 (off): unset"
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
    checked = stage_settings("caption", {"generation": {**generation, **gen}})["generation"]
    return checked, where or neva_where, notes
