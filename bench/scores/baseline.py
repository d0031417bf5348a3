"""The peers' motion score, reimplemented faithfully for the comparison (bench/scores).

EasyAnimate's ``compute_motion_score`` (easyanimate/video_caption/utils, also Data-Juicer's
``video_motion_score_filter`` with its defaults): OpenCV ``VideoCapture`` reads every frame; every
``int(fps / 2)``-th frame (2 frames a second) is turned grey at full resolution and Farneback flow
(0.5, 3, 15, 3, 5, 1.2, 0) runs against the previous such frame; the score is the mean over pairs of
the mean flow magnitude (``cv2.cartToPolar``). Units: source pixels per ``int(fps / 2)`` frames.
"""
from __future__ import annotations

import cv2
import numpy as np


def easyanimate_motion_score(path: str, sampling_fps: float = 2.0) -> float:
    cap = cv2.VideoCapture(path)
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
        valid_fps = min(max(sampling_fps, 1), fps)
        interval = int(fps / valid_fps)
        scores, prev, count = [], None, -1
        while cap.isOpened():
            ok, frame = cap.read()
            count += 1
            if not ok:
                break
            if count % interval != 0:
                continue
            grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            if prev is None:
                prev = grey
                continue
            flow = cv2.calcOpticalFlowFarneback(prev, grey, None, 0.5, 3, 15, 3, 5, 1.2, 0)
            mag, _ = cv2.cartToPolar(flow[..., 0], flow[..., 1])
            scores.append(float(np.mean(mag)))
            prev = grey
        return float(np.mean(scores)) if scores else float("nan")
    finally:
        cap.release()


def nemo_blur_score(path: str, frames: int = 4) -> float:
    """NeMo Curator's blur filter score: variance of the Laplacian, here over ``frames`` evenly spaced frames."""
    cap = cv2.VideoCapture(path)
    try:
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        out = []
        for i in np.linspace(0, total - 1, frames).astype(int):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(i))
            ok, frame = cap.read()
            if ok:
                out.append(cv2.Laplacian(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())
        return float(np.mean(out))
    finally:
        cap.release()
