"""The sentence a camera-motion label (``cmotion``: ``static``, ``pan_left``, ``pan_right+zoom_in``, ...)
gives in a caption: written by the motion stage's labels, appended by the clean stage
(``append_motion``). Pure functions; ``unclassified`` and unknown labels give no sentence."""
from __future__ import annotations

_VERB = {"pan_left": ("pans left", "panning left"), "pan_right": ("pans right", "panning right"),
         "tilt_up": ("tilts up", "tilting up"), "tilt_down": ("tilts down", "tilting down"),
         "zoom_in": ("zooms in", "zooming in"), "zoom_out": ("zooms out", "zooming out")}
_ORDER = {name: i for i, name in enumerate(("pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out"))}


def camera_motion_phrase(cmotion: str) -> str:
    """English sentence for a ``cmotion`` label, or ``''`` for ``unclassified``/empty/unknown parts.

    ``static`` -> "The camera is static."; one direction -> "The camera pans left."; combinations (any
    order, ``+``-joined) -> "The camera pans left while tilting up and zooming in." (pan, tilt, zoom order).
    """
    label = (cmotion or "").strip()
    if label == "static":
        return "The camera is static."
    parts = [p.strip() for p in label.split("+") if p.strip()]
    if not parts or any(p not in _VERB for p in parts):
        return ""
    parts = sorted(set(parts), key=_ORDER.__getitem__)
    first = _VERB[parts[0]][0]
    rest = [_VERB[p][1] for p in parts[1:]]
    if not rest:
        return f"The camera {first}."
    tail = rest[0] if len(rest) == 1 else ", ".join(rest[:-1]) + " and " + rest[-1]
    return f"The camera {first} while {tail}."


def append_motion_to_caption(text: str, cmotion: str) -> str:
    """``text`` followed by the camera-motion sentence (one space between); ``text`` unchanged when the
    label gives no sentence (``unclassified``, empty, unknown)."""
    phrase = camera_motion_phrase(cmotion)
    text = text or ""
    if not phrase:
        return text
    stripped = text.rstrip()
    return f"{stripped} {phrase}" if stripped else phrase
