"""Frozen pairs for the judge bench: a scene description (the context), a question, a reference answer
(A) and a model answer (B) whose quality relative to A is known by construction.

Frozen before any measurement: ``make_pairs(n, split)`` with ``split`` ``dev`` (seed 0) or ``test``
(seed 1); the bench reports ``test`` only. Nothing in vidcap's judge (rules, parser) was tuned on
either split.

Each pair's ``truth`` is ``A``, ``B`` or ``tie``:

* ``same``     - B restates A in other words                         -> tie
* ``wrong``    - B swaps the subject or the setting for a wrong one   -> A
* ``invented`` - B is A plus an object the scene does not contain     -> A
* ``short``    - B leaves out most of what A says                     -> A
* ``better``   - A is the short one, B the complete one               -> B
"""
from __future__ import annotations

import random

from vidcap.judge.core import JudgeItem

SUBJECTS = ["a brown dog", "a woman in a red coat", "a white car", "two children", "a grey cat", "a cyclist",
            "an old man with a cane", "a black horse"]
ACTIONS = ["moves slowly along", "runs across", "waits at the edge of", "turns around in", "crosses"]
SETTINGS = ["a beach at sunset", "a busy city street", "a snowy park", "a narrow forest path",
            "an empty parking lot at night", "a market square"]
OBJECTS = ["a red umbrella", "a blue bench", "a lamp post", "a wooden fence", "a yellow kite", "a parked bus"]
INVENTED = ["a flying drone", "a marching band", "a burning car", "a giraffe", "a hot-air balloon"]
CAMERA = ["the camera pans left", "the camera stays still", "the camera zooms in slowly", "the camera tilts up",
          "the camera pans right to follow the motion"]
KINDS = ["same", "wrong", "invented", "short", "better"]
CATEGORIES = ["conv", "detail", "complex"]
SPLIT_SEEDS = {"dev": 0, "test": 1}


def _scene(rng: random.Random) -> dict:
    return {"subject": rng.choice(SUBJECTS), "action": rng.choice(ACTIONS), "setting": rng.choice(SETTINGS),
            "object": rng.choice(OBJECTS), "camera": rng.choice(CAMERA)}


def _context(s: dict) -> str:
    return (f"{s['subject'].capitalize()} {s['action']} {s['setting']}. {s['object'].capitalize()} is visible "
            f"nearby. In this clip {s['camera']}.")


def _full(cat: str, s: dict, paraphrase: bool = False) -> str:
    if cat == "conv":
        return (f"It is {s['subject']}, which {s['action']} {s['setting']}." if paraphrase
                else f"The main subject is {s['subject']}; it {s['action']} {s['setting']}.")
    if cat == "detail":
        if paraphrase:
            return (f"In {s['setting']}, {s['subject']} {s['action']} the place while {s['object']} stands close by. "
                    f"As for the shot, {s['camera']}.")
        return (f"The video shows {s['subject']} that {s['action']} {s['setting']}. Nearby there is "
                f"{s['object']}. Regarding the camera, {s['camera']}.")
    if paraphrase:
        return (f"Since {s['subject']} {s['action']} {s['setting']} with {s['object']} close by, the next moment "
                f"likely continues that motion; {s['camera']}, which keeps the subject in view.")
    return (f"Because {s['subject']} {s['action']} {s['setting']}, it will probably keep going in the same "
            f"direction past {s['object']}; {s['camera']}, so the subject stays in the frame.")


def _short(cat: str, s: dict) -> str:
    return f"It is {s['subject']}." if cat != "complex" else "It will keep moving."


QUESTIONS = {"conv": "What is the main subject, and what is it doing?",
             "detail": "Describe the clip in detail, including the camera.",
             "complex": "What is likely to happen next in this clip, and why?"}


def make_pairs(n: int, split: str = "test") -> list[tuple[JudgeItem, str, str]]:
    """``n`` (item, kind, truth) triples for ``split``; deterministic."""
    rng = random.Random(SPLIT_SEEDS[split])
    out = []
    for i in range(n):
        s = _scene(rng)
        cat = CATEGORIES[i % 3]
        kind = KINDS[rng.randrange(len(KINDS))]
        a = _full(cat, s)
        if kind == "same":
            b, truth = _full(cat, s, paraphrase=True), "tie"
        elif kind == "wrong":
            wrong = dict(s)
            key = rng.choice(["subject", "setting"])
            wrong[key] = rng.choice([x for x in (SUBJECTS if key == "subject" else SETTINGS) if x != s[key]])
            b, truth = _full(cat, wrong), "A"
        elif kind == "invented":
            b, truth = a + f" There is also {rng.choice(INVENTED)} in the scene.", "A"
        elif kind == "short":
            b, truth = _short(cat, s), "A"
        else:
            a, b, truth = _short(cat, s), a, "B"
        item = JudgeItem(key=f"{split}-{i:04d}", question=QUESTIONS[cat], answer_a=a, answer_b=b, category=cat,
                         context=_context(s))
        out.append((item, kind, truth))
    return out
