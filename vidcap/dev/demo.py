"""Demo data: a folder of generated clips and images (plus two broken files) and its manifest."""
from __future__ import annotations

from pathlib import Path

from vidcap.dev import synth
from vidcap.dev.tiny import build_tiny_model
from vidcap.io.manifest import scan
from vidcap.io.tables import write_table


def make_demo(root: str | Path) -> Path:
    """Write clips under ``root/media`` and ``root/manifest.csv``; returns the manifest path.

    Also builds the tiny caption model (``make_demo_model``) and the tiny chat model of the tags stage
    (``make_demo_chat_model``).
    The manifest lists paths relative to its own folder, a ``text`` column, one missing file and
    one text file named .mp4, so the demo shows failed rows next to good ones.
    """
    root = Path(root)
    media = root / "media"
    synth.write_demo_set(media)
    (media / "videos" / "not_a_video.mp4").write_text("this is text, not a video\n")
    df = scan(media, kind="all")
    df["path"] = ["media/" + r for r in df["relpath"]]
    missing = {"path": "media/videos/missing.mp4", "id": "missing", "relpath": "videos/missing.mp4"}
    df.loc[len(df)] = missing
    df["text"] = [f'clip "{i}", generated; line one\nline two' for i in df["id"]]
    manifest = write_table(df, root / "manifest.csv")
    make_demo_model(root)
    make_demo_chat_model(root)
    return manifest


DEMO_MODEL_FAMILY = "qwen2_5_vl"


def make_demo_model(root: str | Path) -> Path:
    """The caption stage's demo model: a tiny random-weight model at ``root/models/tiny-<family>``.

    Random weights write random text: the demo shows the pipeline and the columns, not caption quality.
    """

    return build_tiny_model(DEMO_MODEL_FAMILY, Path(root) / "models" / f"tiny-{DEMO_MODEL_FAMILY}")


DEMO_CHAT_FAMILY = "qwen2"


def make_demo_chat_model(root: str | Path) -> Path:
    """The tags stage's demo model: a tiny random-weight text chat model at ``root/models/tiny-<family>``.

    Random weights answer random text: most rows get empty tag lists and a ``tags_error`` (no tag is guessed).
    """

    return build_tiny_model(DEMO_CHAT_FAMILY, Path(root) / "models" / f"tiny-{DEMO_CHAT_FAMILY}")
