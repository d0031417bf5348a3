"""The report's gallery: which rows to show (problems first, then a random sample) and their thumbnails.

Thumbnails are the frames the caption model saw (``caption_frame_indices``, evenly thinned to
``thumbnails``), else uniform frames; each is a small base64 JPEG (``vidcap.media.images.jpeg_data_url``).
A file that cannot be decoded shows its error instead of thumbnails; it never stops the report.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from vidcap.io.media_paths import resolve_media_path
from vidcap.io.tables import cell_list, cell_text
from vidcap.media.thumbs import thumbnails


def pick_rows(df: pd.DataFrame, sample: int, worst: int, seed: int = 0) -> list[tuple[int, list[str]]]:
    """(row position, kinds) for the gallery: up to ``worst`` problem rows, then ``sample`` random ones.

    Kinds of problems: ``error`` (any ``*_error``), ``cut`` (a caption cut at ``max_new_tokens``: ``finish_reason == length``),
    ``unclassified`` (``cmotion``). Problem rows are taken round-robin over the kinds (each drawn at
    random) so every kind shows; random rows exclude them. Cost: a few vectorised masks, any size.
    """
    rng = np.random.default_rng(seed)
    n = len(df)
    masks: dict[str, np.ndarray] = {}
    err = np.zeros(n, dtype=bool)
    for col in [c for c in df.columns if c.endswith("_error")]:
        e = df[col].astype("string").fillna("")
        err |= (e != "").to_numpy(dtype=bool)
    masks["error"] = err
    if "finish_reason" in df.columns:
        masks["cut"] = (df["finish_reason"].astype("string").fillna("") == "length").to_numpy(dtype=bool)
    if "cmotion" in df.columns:
        masks["unclassified"] = (df["cmotion"].astype("string").fillna("") == "unclassified").to_numpy(dtype=bool)
    pools = []
    for mask in masks.values():
        idx = np.flatnonzero(mask)
        if len(idx) > worst:
            idx = rng.choice(idx, size=worst, replace=False)
        else:
            idx = rng.permutation(idx)
        pools.append(list(idx))
    chosen: list[int] = []
    seen: set[int] = set()
    while len(chosen) < worst and any(pools):
        for pool in pools:
            while pool:
                i = int(pool.pop(0))
                if i not in seen:
                    seen.add(i)
                    chosen.append(i)
                    break
            if len(chosen) >= worst:
                break
    rand: list[int] = []
    if sample and n:
        take = rng.choice(n, size=min(n, sample + len(seen)), replace=False)
        rand = [int(i) for i in take if int(i) not in seen][:sample]
    out = []
    for i in chosen:
        out.append((i, [k for k, m in masks.items() if m[i]]))
    for i in sorted(rand):
        out.append((i, ["random"] + [k for k, m in masks.items() if m[i]]))
    return out


def gallery(df: pd.DataFrame, picks, media_base: str, opts: dict, caption_column: str,
            tag_cols: dict[str, str], decoder: str | None = None, threads: int = 2) -> list[dict]:
    has_caption = "caption_model" in df.columns or "caption_error" in df.columns
    err_cols = [c for c in df.columns if c.endswith("_error")]
    items = []
    for pos, kinds in picks:
        row = df.iloc[pos]
        path = cell_text(row.get("path"))
        tags = [(k, [cell_text(v).replace("\n", " ") for v in cell_list(row.get(c))]) for k, c in tag_cols.items()]
        w, h = cell_text(row.get("width")), cell_text(row.get("height"))
        meta = [f"row {pos}"]
        if cell_text(row.get("duration")):
            meta.append(f"{float(row['duration']):.2f} s")
        if w and h:
            meta.append(f"{w}×{h}")
        for col in ("codec", "media_type"):
            if cell_text(row.get(col)):
                meta.append(cell_text(row.get(col)))
        items.append({
            "pos": pos, "kinds": kinds, "path": path, "row_id": cell_text(row.get("row_id")),
            "media": resolve_media_path(path, media_base) if path else "",
            "text": cell_text(row.get(caption_column)) if (has_caption or caption_column in df.columns) else "",
            "text_label": caption_column if has_caption else f"{caption_column} (manifest)",
            "text_kept": has_caption and bool(cell_text(row.get("caption_error"))),
            "finish_reason": cell_text(row.get("finish_reason")), "output_tokens": cell_text(row.get("output_tokens")),
            "cmotion": cell_text(row.get("cmotion")), "motion_reason": cell_text(row.get("motion_reason")),
            "lists": tags, "tag_values": sorted({v for _, vs in tags for v in vs}),
            "errors": [(c[: -len("_error")], cell_text(row.get(c))) for c in err_cols if cell_text(row.get(c))],
            "meta": " · ".join(meta),
            "indices": [int(i) for i in cell_list(row.get("caption_frame_indices"))],
        })

    def thumbs(item):
        if not item["media"]:
            return [], "", "no path"
        return thumbnails(item["media"], item["indices"], int(opts["thumbnails"]), int(opts["thumb_size"]),
                          decoder)

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for item, (th, note, err) in zip(items, pool.map(thumbs, items)):
            item.update(thumbs=th, thumb_note=note, thumb_error=err)
    return items
