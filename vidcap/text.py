"""Caption text clean-up shared by caption-producing stages.

``clean_caption(text, strip_openings)``: control characters are dropped, newlines/tabs become spaces, runs of whitespace collapse to
one space, ends are trimmed; with ``strip_openings`` a boilerplate opening ("The video shows",
"In this video,", "This clip depicts", ...) is removed and the first letter re-capitalised. A caption
that would be empty after stripping keeps its opening. Pure function, no model names.
"""
from __future__ import annotations

import re

_NOUN = r"(?:video|clip|footage|film|image|picture|photo|scene|sequence|frames?)"
_VERB = (r"(?:shows|showcases|depicts|features|captures|presents|displays|illustrates|portrays|"
         r"highlights|is showing|is about|begins with|starts with|opens with)")
OPENINGS = [
    # "In this video, ...", "Throughout the clip ..."
    re.compile(rf"^(?:in|throughout|within)\s+(?:this|the)\s+(?:short\s+)?{_NOUN}\s*[,:]?\s*", re.I),
    # "The video shows (that) ...", "This short clip depicts ..."
    re.compile(rf"^(?:the|this)\s+(?:short\s+|brief\s+)?{_NOUN}\s+{_VERB}\s*(?:that\s+)?[:,]?\s*", re.I),
    # "This is a video of ...", "Here is a clip showing ..."
    re.compile(rf"^(?:this\s+is|here\s+is|here's)\s+(?:a|an)\s+(?:short\s+)?{_NOUN}\s+(?:of|showing|that shows)\s+",
               re.I),
]
_WS = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def normalize_whitespace(text: str) -> str:
    """Control characters dropped, newlines and tabs to spaces, whitespace runs collapsed, ends trimmed."""
    return _WS.sub(" ", _CONTROL.sub("", text or "")).strip()


def strip_opening(text: str) -> str:
    """``text`` without one leading boilerplate opening, first letter capitalised; unchanged if none."""
    for pattern in OPENINGS:
        m = pattern.match(text)
        if m and m.end() < len(text):
            rest = text[m.end():].lstrip(" ,:;-")
            if rest:
                return rest[0].upper() + rest[1:]
    return text


def clean_caption(text: str | None, strip_openings: bool = True) -> str:
    """The caption as stored: whitespace normalised, optionally without a boilerplate opening."""
    out = normalize_whitespace(text or "")
    if strip_openings:
        out = strip_opening(out)
    return out
