"""Matching detected boundaries to the ground truth of ``vidcap.dev.cuts`` (tolerance in frames)."""
from __future__ import annotations

from collections import Counter

TOLERANCE = 2  # frames


def match(truth: dict, detected: list[int], tol: int = TOLERANCE) -> dict:
    """Greedy one-to-one matching of detected cut frames to true ``cut`` frames within ``tol``.

    Returns counts: ``tp[kind]``, ``fn[kind]``, ``fp[kind]`` (an unmatched detection counts against the
    kind of the nearest true transition), ``fp_where`` (``transition`` = within 12 frames of a true
    transition's span, ``event:<kind>`` = within 6 frames of a hard-negative event, else ``shot``) and
    ``errors[kind]`` (signed frame offsets of the matches).
    """
    trans = truth["transitions"]
    pairs = sorted((abs(d - t["cut"]), i, j) for i, t in enumerate(trans) for j, d in enumerate(detected)
                   if abs(d - t["cut"]) <= tol)
    used_t, used_d = set(), set()
    tp, fn, fp, where = Counter(), Counter(), Counter(), Counter()
    errors: dict[str, list[int]] = {}
    for _, i, j in pairs:
        if i in used_t or j in used_d:
            continue
        used_t.add(i)
        used_d.add(j)
        tp[trans[i]["kind"]] += 1
        errors.setdefault(trans[i]["kind"], []).append(detected[j] - trans[i]["cut"])
    for i, t in enumerate(trans):
        if i not in used_t:
            fn[t["kind"]] += 1
    for j, d in enumerate(detected):
        if j in used_d:
            continue

        def dist(t, d=d):
            return 0 if t["start"] <= d < t["end"] else min(abs(d - t["start"]), abs(d - (t["end"] - 1)))

        near = min(trans, key=dist) if trans else None
        if near is not None:
            fp[near["kind"]] += 1
        if near is not None and dist(near) <= 12:
            where["transition"] += 1
        else:
            ev = [e for e in truth["events"] if e["start"] - 6 <= d < e["end"] + 6]
            where[f"event:{ev[0]['kind']}" if ev else "shot"] += 1
    return {"tp": tp, "fn": fn, "fp": fp, "fp_where": where, "errors": errors}


def add(total: dict, part: dict) -> dict:
    for key in ("tp", "fn", "fp", "fp_where"):
        total.setdefault(key, Counter()).update(part[key])
    for kind, errs in part["errors"].items():
        total.setdefault("errors", {}).setdefault(kind, []).extend(errs)
    return total


def prf(total: dict, kind: str | None = None) -> tuple[float, float, int, int, int]:
    """(precision, recall, tp, fp, fn) for one kind or (None) all kinds."""
    if kind is None:
        tp, fp, fn = (sum(total.get(k, Counter()).values()) for k in ("tp", "fp", "fn"))
    else:
        tp, fp, fn = (total.get(k, Counter())[kind] for k in ("tp", "fp", "fn"))
    p = tp / (tp + fp) if tp + fp else float("nan")
    r = tp / (tp + fn) if tp + fn else float("nan")
    return p, r, tp, fp, fn
