"""The model scores of the scores stage, each optional: ``ModelScores(params).score(frames, text)``.

* ``aesthetic``: LAION's aesthetic predictor (the improved predictor's MLP, or the older single linear
  layer) on the L2-normalised CLIP image embedding of each frame, averaged over the frames (Open-Sora:
  ViT-L/14, first/middle/last frames; its filter keeps >= 4.5-5). The head is read from a ``.pth`` state
  dict; its linear layers (``layers.N.weight`` in order, or ``weight``) are applied in sequence, which is
  the predictor at inference (dropout off, no activations between its layers).
* ``clip_match``: cosine of the CLIP text embedding of the row's text and each frame's image embedding,
  averaged (-1..1; Open-Sora's matching score is 100 x this). Empty text: null.
* ``clip_embedding`` (``near_duplicates``): the mean of the frames' unit CLIP image embeddings, made unit
  length again: what the merge compares to find near-duplicate clips.
* ``text_area``: share of the frame covered by text boxes of RapidOCR's detector (DBNet, ONNX, bundled
  with ``rapidocr_onnxruntime``; detection only), averaged over the frames (EasyAnimate drops > 0.02).

CLIP is a transformers ``CLIPModel`` + ``CLIPProcessor`` loaded from ``clip.model`` (a folder or hub id);
a head whose input width differs from the CLIP projection width is a clear error at load time.
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np

from vidcap.errors import RunnerFatal


def load_head(path: str):
    """The LAION head as a list of (weight, bias) torch tensors, applied in order."""
    import torch  # heavy/optional library: loaded only when this runs

    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state)
    if "weight" in state:
        return [(state["weight"].float(), state["bias"].float())]
    keys = sorted({int(m.group(1)) for k in state if (m := re.fullmatch(r"layers\.(\d+)\.weight", k))})
    if not keys:
        raise RunnerFatal(f"{path}: not a LAION aesthetic head (no layers.N.weight or weight tensors)")
    return [(state[f"layers.{k}.weight"].float(), state[f"layers.{k}.bias"].float()) for k in keys]


class ModelScores:
    def __init__(self, params: dict):
        import torch  # heavy/optional library: loaded only when this runs

        self.torch = torch
        self.aesthetic = bool(params["aesthetic"]["enabled"])
        self.match = bool(params["caption_match"]["enabled"])
        self.embed = bool(params["near_duplicates"]["enabled"])
        self.ocr: Any = None
        device = params["clip"]["device"]
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        if self.aesthetic or self.match or self.embed:
            from transformers import CLIPModel, CLIPProcessor  # heavy/optional library: loaded only when this runs

            name = params["clip"]["model"]
            try:
                self.model = CLIPModel.from_pretrained(name).to(self.device).eval()  # type: ignore[arg-type]
                self.processor = CLIPProcessor.from_pretrained(name)
            except OSError as exc:
                raise RunnerFatal(f"stages.scores.clip.model: cannot load CLIP from {name!r}: {exc}") from None
        if self.aesthetic:
            self.head = [(w.to(self.device), b.to(self.device)) for w, b in load_head(params["aesthetic"]["head"])]
            width = self.model.config.projection_dim
            if self.head[0][0].shape[1] != width:
                raise RunnerFatal(f"stages.scores.aesthetic.head: takes {self.head[0][0].shape[1]}-wide embeddings, "
                                  f"the CLIP model gives {width} (LAION's heads are for ViT-L/14: 768)")
        if params["ocr"]["enabled"]:
            try:
                from rapidocr_onnxruntime import RapidOCR  # heavy/optional library: loaded only when this runs
            except ImportError:
                raise RunnerFatal("stages.scores.ocr: rapidocr_onnxruntime is not installed: pip install "
                                  "'vidcap[scores]' && pip install --no-deps rapidocr_onnxruntime==1.4.4") from None
            self.ocr = RapidOCR()

    def _image_embeddings(self, frames: list[np.ndarray]):
        inputs = self.processor(images=frames, return_tensors="pt").to(self.device)
        out = self.model.get_image_features(pixel_values=inputs["pixel_values"])
        emb = getattr(out, "pooler_output", out)
        return emb / emb.norm(dim=-1, keepdim=True)

    def score(self, frames: list[np.ndarray], text: str | None) -> dict:
        out: dict = {}
        with self.torch.inference_mode():
            if self.aesthetic or self.match or self.embed:
                emb = self._image_embeddings(frames)
            if self.embed:
                mean = emb.float().mean(dim=0)
                out["clip_embedding"] = (mean / mean.norm()).cpu().tolist()
            if self.aesthetic:
                x = emb.float()
                for w, b in self.head:
                    x = x @ w.T + b
                out["aesthetic"] = float(x.mean())
            if self.match:
                out["clip_match"] = self._match(emb, text)
        if self.ocr is not None:
            out["text_area"] = float(np.mean([self.text_area(f) for f in frames]))
        return out

    def _match(self, emb, text: str | None) -> float | None:
        if not text or not str(text).strip():
            return None
        inputs = self.processor(text=[str(text)], return_tensors="pt", padding=True, truncation=True,
                                max_length=self.model.config.text_config.max_position_embeddings).to(self.device)
        out = self.model.get_text_features(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        t = getattr(out, "pooler_output", out)
        t = t / t.norm(dim=-1, keepdim=True)
        return float((emb @ t.T).mean())

    def text_area(self, frame: np.ndarray) -> float:
        """Share of ``frame`` inside the detector's text boxes (their union)."""
        import cv2  # heavy/optional library: loaded only when this runs

        boxes, _ = self.ocr(np.ascontiguousarray(frame[..., ::-1]), use_det=True, use_cls=False, use_rec=False)
        if not boxes:
            return 0.0
        mask = np.zeros(frame.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.asarray(b, np.int32).reshape(-1, 2) for b in boxes], 1)
        return float(mask.mean())
