"""Tiny current-family models and the engine-sized Qwen builds: built offline from configs, saved, loaded back
through the generic AutoProcessor + AutoModelForImageTextToText path, generating on decoded synthetic frames."""
import json

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor
from transformers.video_utils import VideoMetadata

from vidcap.dev import synth
from vidcap.dev.tiny import CURRENT_FAMILIES, STAMP, VIDEO_FAMILIES, build_tiny_model, tiny_model
from vidcap.media.frames import sample_frames

NEW_TOKENS = 4


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    clip = synth.write_video(tmp_path_factory.mktemp("media") / "clip.mp4", num_frames=24, width=96, height=64)
    return sample_frames(str(clip), num_frames=4)


def _generate(folder, fr, user="describe the video"):
    """Prompt ids and output ids of one greedy generation on ``fr`` (video input or one image per frame)."""
    config = AutoConfig.from_pretrained(folder)
    processor = AutoProcessor.from_pretrained(folder)
    model = AutoModelForImageTextToText.from_pretrained(folder).eval()
    as_video = config.model_type in VIDEO_FAMILIES
    visual = [{"type": "video"}] if as_video else [{"type": "image"}] * len(fr.frames)
    prompt = processor.apply_chat_template([{"role": "user", "content": visual + [{"type": "text", "text": user}]}],
                                           add_generation_prompt=True)
    if as_video:
        meta = VideoMetadata(total_num_frames=fr.total_frames, fps=float(fr.fps), frames_indices=list(fr.indices),
                             height=fr.frames.shape[1], width=fr.frames.shape[2], duration=fr.total_frames / fr.fps)
        inputs = processor(text=[prompt], videos=[fr.frames], video_metadata=[meta], do_sample_frames=False,
                           return_tensors="pt")
    else:
        inputs = processor(text=[prompt], images=[list(fr.frames)], return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False)
    return config, inputs, out


def _visual_token_ids(config) -> set[int]:
    ids = set()
    for key in ("image_token_id", "video_token_id", "image_token_index", "video_token_index"):
        value = getattr(config, key, None)
        if isinstance(value, int):
            ids.add(value)
    return ids


@pytest.mark.parametrize("family", CURRENT_FAMILIES)
def test_current_family_builds_loads_and_generates(tmp_path, frames, family):
    folder = build_tiny_model(family, tmp_path / family)
    assert json.loads((folder / STAMP).read_text())["family"] == family
    assert sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) < 3_000_000, "tiny means tiny"
    config, inputs, out = _generate(folder, frames)
    assert config.model_type == family
    text = config.get_text_config()
    assert text.hidden_size // text.num_attention_heads == 32 or getattr(text, "head_dim", None) == 32, \
        "head_dim 32: a size vLLM's CPU attention supports"
    prompt_len = inputs["input_ids"].shape[1]
    assert out.shape == (1, prompt_len + NEW_TOKENS)
    visual = sum(int((inputs["input_ids"] == t).sum()) for t in _visual_token_ids(config))
    assert visual >= len(frames.frames) // 2, f"{family}: the frames must reach the prompt as visual tokens"


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl"])
def test_engine_size_qwen_has_head_dim_32_and_generates(tmp_path, frames, family):
    folder = build_tiny_model(family, tmp_path / family, size="engine")
    config, inputs, out = _generate(folder, frames)
    text = config.get_text_config()
    assert (text.hidden_size, text.num_attention_heads) == (64, 2)
    assert sum(text.rope_parameters["mrope_section"]) == text.hidden_size // text.num_attention_heads // 2
    vision = config.vision_config
    vision_out = vision.out_hidden_size if family == "qwen2_5_vl" else vision.hidden_size
    assert vision_out == text.hidden_size, "the vision tower's output width is the text width"
    assert out.shape[1] == inputs["input_ids"].shape[1] + NEW_TOKENS


def test_sizes_get_their_own_cache_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDCAP_TINY_CACHE", str(tmp_path))
    tiny = tiny_model("qwen2_vl")
    engine = tiny_model("qwen2_vl", size="engine")
    assert tiny != engine
    assert json.loads((tiny / STAMP).read_text())["size"] == "tiny"
    assert json.loads((engine / STAMP).read_text())["size"] == "engine"
    assert AutoConfig.from_pretrained(tiny).text_config.hidden_size == 32


def test_unknown_family_or_size_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown family"):
        build_tiny_model("qwen9_vl", tmp_path / "x")
    with pytest.raises(ValueError, match="unknown size"):
        build_tiny_model("qwen2_vl", tmp_path / "x", size="huge")
    with pytest.raises(ValueError, match="engine"):
        build_tiny_model("llava", tmp_path / "x", size="engine")
    assert not (tmp_path / "x").exists()


def test_video_families_get_more_visual_tokens_for_more_frames(tmp_path):
    """The video path really carries every frame: 4 frames give more video tokens than 2 (Qwen3-VL)."""
    clip = synth.write_video(tmp_path / "c.mp4", num_frames=24, width=96, height=64)
    folder = build_tiny_model("qwen3_vl", tmp_path / "qwen3_vl")
    counts = []
    for n in (2, 4):
        config, inputs, _ = _generate(folder, sample_frames(str(clip), num_frames=n))
        counts.append(int((inputs["input_ids"] == config.video_token_id).sum()))
    assert counts[1] == 2 * counts[0] > 0
    assert np.all(np.diff(counts) > 0)
