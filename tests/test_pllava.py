"""PLLaVA: pooling, released checkpoint layout, LoRA merge, batch generation, per-row prompt choice.

One tiny random-weight checkpoint is built offline in the released layout (sharded safetensors with an
index, LoRA weights) and loaded through ``load_pllava``'s real path, as a downloaded one would be.
"""
from __future__ import annotations

import json
import shutil
from collections import Counter

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from vidcap.dev import synth
from vidcap.dev.tiny_pllava import build_tiny_pllava
from vidcap.errors import RunnerFatal
from vidcap.media.frames import sample_frames
from vidcap.models.pllava import (
    PllavaForConditionalGeneration,
    PllavaProcessor,
    generate_captions,
    patch_grid,
    pllava_config,
    pool_video_features,
    random_pllava,
    visual_token_count,
)
from vidcap.models.pllava_checkpoint import INDEX_FILE, load_config, load_pllava, to_ours, to_released, wrap_lora
from vidcap.models.pllava_prompts import MAX_NEW_TOKENS, caption_length, pllava_prompt


def np_adaptive_avg_pool3d(x: np.ndarray, out: tuple[int, int, int]) -> np.ndarray:
    """Direct 3-D adaptive average pooling of (C, T, H, W): bin i of n covers [floor(i*N/n), ceil((i+1)*N/n))."""
    def bins(size, n):
        return [(i * size // n, -(-(i + 1) * size // n)) for i in range(n)]

    c, t, h, w = x.shape
    res = np.zeros((c, *out))
    for i, (t0, t1) in enumerate(bins(t, out[0])):
        for j, (h0, h1) in enumerate(bins(h, out[1])):
            for k, (w0, w1) in enumerate(bins(w, out[2])):
                res[:, i, j, k] = x[:, t0:t1, h0:h1, w0:w1].mean(axis=(1, 2, 3))
    return res


def np_pool_videos(frames: np.ndarray, num_frames: int, grid: int, out) -> np.ndarray:
    """(videos*frames, grid*grid, D) -> (videos, T*H*W, D) with the tokens in T, H, W order."""
    n, _, d = frames.shape
    videos = frames.reshape(n // num_frames, num_frames, grid, grid, d).transpose(0, 4, 1, 2, 3)
    return np.stack([np_adaptive_avg_pool3d(v, out).reshape(d, -1).T for v in videos])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_pllava(tmp_path_factory.mktemp("pllava") / "tiny")


@pytest.fixture(scope="module")
def loaded(tiny):
    return load_pllava(tiny, device="cpu")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Two synthetic clips and one image, sampled as the captioner does (segment policy, short side 672)."""
    root = tmp_path_factory.mktemp("media")
    paths = [synth.write_video(root / "a.mp4", num_frames=40, width=160, height=90, seed=1),
             synth.write_video(root / "b.mp4", num_frames=25, width=96, height=128, seed=2),
             synth.write_image(root / "c.png", width=120, height=80, seed=3)]
    return [sample_frames(p, 4, "segment", resize_short=672) for p in paths]


# ----------------------------------------------------------------------------------------------- pooling


@pytest.mark.parametrize("num_frames,grid,out", [(4, 24, (4, 12, 12)), (16, 24, (16, 12, 12)), (3, 5, (2, 3, 2)),
                                                 (4, 4, (4, 2, 2))])
def test_pooling_matches_numpy(num_frames, grid, out):
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((2 * num_frames, grid * grid, 8))
    got = pool_video_features(torch.from_numpy(feats), num_frames, grid, out).numpy()
    assert got.shape == (2, int(np.prod(out)), 8)
    np.testing.assert_allclose(got, np_pool_videos(feats, num_frames, grid, out), rtol=1e-10, atol=1e-12)


def test_model_pools_projected_penultimate_patch_features(loaded, clips):
    """Features = pool(projector(CLIP layer -2 without CLS)), per video of num_frames frames (PLLaVA's order)."""
    model, proc = loaded
    pixels = proc(text=[proc.prompt("", "x")] * 3, videos=[c.frames for c in clips])["pixel_values"]
    with torch.no_grad():
        got = torch.stack(list(model.model.get_image_features(pixels).pooler_output)).numpy()
        hidden = model.model.vision_tower(pixels, output_hidden_states=True).hidden_states[-2][:, 1:]
        projected = model.model.multi_modal_projector(hidden).double().numpy()
    cfg = model.config
    assert got.shape == (3, visual_token_count(cfg), cfg.text_config.hidden_size)
    want = np_pool_videos(projected, cfg.num_frames, patch_grid(cfg), tuple(cfg.pooling_shape))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_visual_token_counts_of_the_released_sizes():
    assert visual_token_count(pllava_config("13b", num_frames=4)) == 576
    assert visual_token_count(pllava_config("13b", num_frames=16)) == 2304
    assert pllava_config("13b", num_frames=4, pooling_shape="4-12-12").pooling_shape == [4, 12, 12]
    assert visual_token_count(pllava_config("13b", num_frames=16, pooling_shape=(16, 6, 6))) == 576
    with pytest.raises(ValueError, match="larger than the input"):
        pllava_config("13b", num_frames=4, pooling_shape=(8, 12, 12))
    with pytest.raises(ValueError, match="three positive ints"):
        pllava_config("13b", num_frames=4, pooling_shape="4-12")


def test_full_size_bench_folder_preflight(tmp_path):
    """The GPU bench folder: full-size 13B config and processor, no weights; the preflight counts pooled tokens."""
    folder = build_tiny_pllava(tmp_path / "13b", size="13b", num_frames=16)
    assert not list(folder.glob("*.safetensors"))
    config = load_config(folder)
    assert (config.text_config.hidden_size, config.text_config.vocab_size, config.pooling_shape) == \
        (5120, 32064, [16, 12, 12])
    proc = PllavaProcessor.from_pretrained(folder, config)
    prompt = proc.prompt("sys", "Describe.")
    inputs = proc(text=[prompt], videos=[np.zeros((16, 672, 1194, 3), np.uint8)])
    assert tuple(inputs["pixel_values"].shape) == (16, 3, 336, 336)
    assert proc.count_tokens(prompt) == inputs["input_ids"].shape[1] == 2304 + len(proc.tokenizer(
        prompt.replace("<image>", ""))["input_ids"])
    small = random_pllava(pllava_config("tiny", num_frames=2, text={"vocab_size": 400}), dtype=torch.bfloat16)
    assert small.lm_head.weight.dtype == torch.bfloat16
    assert small.model.language_model.rotary_emb.inv_freq.dtype == torch.float32


def test_full_size_13b_structure_maps_to_the_released_layout():
    """The 13B model (on the meta device: no memory) wrapped with LoRA r=128 has one released key per weight."""
    from accelerate import init_empty_weights

    with init_empty_weights(include_buffers=False):
        model = PllavaForConditionalGeneration(pllava_config("13b", num_frames=16))
        wrap_lora(model, 128, 4, ["q_proj", "v_proj"])
    keys = list(model.state_dict())
    released = [to_released(k) for k in keys]
    assert [to_ours(k) for k in released] == keys
    lora = [k for k in released if ".lora_" in k]
    assert len(lora) == 40 * 2 * 2
    assert "language_model.base_model.model.model.layers.39.self_attn.v_proj.lora_B.default.weight" in released
    assert "vision_tower.vision_model.encoder.layers.23.mlp.fc2.weight" in released
    assert "language_model.base_model.model.lm_head.weight" in released
    shapes = dict(zip(released, (t.shape for t in model.state_dict().values())))
    assert tuple(shapes["language_model.base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight"]) == \
        (128, 5120)
    base = sum(t.numel() for k, t in zip(released, model.state_dict().values()) if ".lora_" not in k)
    assert 13.3e9 < base < 13.4e9


# ------------------------------------------------------------------------------------------- checkpoint


def test_tiny_checkpoint_has_the_released_layout(tiny):
    shards = sorted(tiny.glob("model-*-of-*.safetensors"))
    assert [p.name for p in shards] == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    weight_map = json.loads((tiny / INDEX_FILE).read_text())["weight_map"]
    keys = set()
    for p in shards:
        with safe_open(str(p), framework="pt") as f:
            keys |= {k for k in f.keys() if weight_map[k] == p.name}
    assert keys == set(weight_map)
    assert "language_model.base_model.model.model.layers.1.self_attn.q_proj.lora_B.default.weight" in keys
    assert "language_model.base_model.model.model.layers.1.self_attn.q_proj.base_layer.weight" in keys
    assert "vision_tower.vision_model.embeddings.patch_embedding.weight" in keys


def test_loaded_model_is_plain_llava_with_merged_weights(loaded, tiny):
    model, _ = loaded
    from transformers import LlavaForConditionalGeneration

    plain = LlavaForConditionalGeneration(model.config)
    assert list(model.state_dict()) == list(plain.state_dict())
    with safe_open(str(tiny / "model-00002-of-00002.safetensors"), framework="pt") as f:
        lm_head = f.get_tensor("language_model.base_model.model.lm_head.weight")
    assert torch.equal(model.lm_head.weight, lm_head)


def _copy_with(tiny, dst, key: str, tensor: torch.Tensor | None = None):
    """A copy of the tiny checkpoint with ``key`` removed (``tensor`` None) or set to ``tensor``, in the
    shard the index puts it in (the last shard for a new key)."""
    shutil.copytree(tiny, dst)
    shard = dst / json.loads((dst / INDEX_FILE).read_text())["weight_map"].get(key, "model-00002-of-00002.safetensors")
    with safe_open(str(shard), framework="pt") as f:
        state = {k: f.get_tensor(k) for k in f.keys()}
    if tensor is None:
        del state[key]
    else:
        state[key] = tensor
    save_file(state, str(shard))
    return dst


def test_missing_key_is_an_error_naming_it(tiny, tmp_path):
    key = "language_model.base_model.model.model.layers.1.self_attn.v_proj.lora_B.default.weight"
    with pytest.raises(RunnerFatal, match=f"missing key '{key}'"):
        load_pllava(_copy_with(tiny, tmp_path / "ckpt", key), device="cpu")


def test_unexpected_key_is_an_error_naming_it(tiny, tmp_path):
    key = "image_newline"  # a LLaVA-NeXT weight: PLLaVA has no such parameter
    ckpt = _copy_with(tiny, tmp_path / "ckpt", key, torch.zeros(32))
    with pytest.raises(RunnerFatal, match=f"unexpected key '{key}'"):
        load_pllava(ckpt, device="cpu")
    model, _ = load_pllava(ckpt, device="cpu", ignore_keys=[key])  # skipped only when named on purpose
    assert model.config.num_frames == 4


def test_wrong_shape_missing_shard_and_no_weights_are_errors(tiny, tmp_path):
    ckpt = _copy_with(tiny, tmp_path / "shape", "multi_modal_projector.linear_2.bias", torch.zeros(31))
    with pytest.raises(RunnerFatal, match=r"has shape \(31,\), the model expects \(32,\)"):
        load_pllava(ckpt, device="cpu")
    gone = shutil.copytree(tiny, tmp_path / "gone")
    (gone / "model-00001-of-00002.safetensors").unlink()
    with pytest.raises(RunnerFatal, match="model-00001-of-00002.safetensors is missing"):
        load_pllava(gone, device="cpu")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RunnerFatal, match="no PLLaVA weights"):
        load_pllava(empty, repo_id=tiny, device="cpu")


def test_single_file_checkpoint_loads_like_shards(tiny, tmp_path, loaded):
    one = shutil.copytree(tiny, tmp_path / "one")
    state = {}
    for p in sorted(one.glob("model-*-of-*.safetensors")):
        with safe_open(str(p), framework="pt") as f:
            state.update({k: f.get_tensor(k) for k in f.keys()})
        p.unlink()
    (one / INDEX_FILE).unlink()
    save_file(state, str(one / "model.safetensors"))
    model, _ = load_pllava(one, device="cpu")
    for (k, a), b in zip(model.state_dict().items(), loaded[0].state_dict().values()):
        assert torch.equal(a, b), k


def test_llava_next_repo_for_config_and_16_frames(tiny, tmp_path, tmp_path_factory):
    """``repo_id`` may be a llava-hf LLaVA-NeXT folder (as llava-hf/llava-v1.6-vicuna-13b-hf, the 13B's base);
    the same weights run at 16 frames with 16-2-2 pooling (the releases were trained at 16, Open-Sora runs 4)."""
    from transformers import AutoConfig, AutoTokenizer, LlavaNextConfig, LlavaNextImageProcessor

    src = AutoConfig.from_pretrained(tiny)
    repo = tmp_path / "llava-next"
    LlavaNextConfig(vision_config=src.vision_config.to_dict(), text_config=src.text_config.to_dict(),
                    image_token_index=src.image_token_id, image_grid_pinpoints=[[56, 112], [112, 56]]).save_pretrained(repo)
    LlavaNextImageProcessor(size={"shortest_edge": 56}, crop_size={"height": 56, "width": 56},
                            image_grid_pinpoints=[[56, 112], [112, 56]]).save_pretrained(repo)
    AutoTokenizer.from_pretrained(tiny).save_pretrained(repo)
    assert json.loads((repo / "config.json").read_text())["model_type"] == "llava_next"
    model, proc = load_pllava(tiny, repo_id=repo, num_frames=16, pooling_shape="16-2-2", device="cpu")
    assert (model.config.num_frames, model.config.pooling_shape, proc.visual_tokens) == (16, [16, 2, 2], 64)
    clip = synth.write_video(tmp_path_factory.mktemp("m16") / "long.mp4", num_frames=80, width=128, height=72)
    frames = sample_frames(clip, 16, "segment", resize_short=672)
    out = generate_captions(model, proc, [frames.frames], [proc.prompt("", "Describe.")], 4, min_new_tokens=4)
    assert out[0].output_tokens == 4 and out[0].prompt_tokens == proc.count_tokens(proc.prompt("", "Describe."))
    assert out[0].prompt_tokens > 64


def test_lora_merge_keeps_outputs(tiny, clips):
    """Logits with the adapter merged equal those with it applied unmerged; without it they differ."""
    merged, proc = load_pllava(tiny, device="cpu", lora_alpha=4)
    unmerged, _ = load_pllava(tiny, device="cpu", lora_alpha=4, merge_lora=False)
    prompts = [proc.prompt(p.system, p.user) for p in (pllava_prompt(i, "general", 0.5) for i in "abc")]
    inputs = proc(text=prompts, videos=[c.frames for c in clips])
    with torch.no_grad():
        a = merged(**inputs).logits
        b = unmerged(**inputs).logits
        with unmerged.model.language_model.disable_adapter():
            base = unmerged(**inputs).logits
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert (a - base).abs().max() > 100 * (a - b).abs().max()


# ------------------------------------------------------------------------------------------- generation


def test_generation_on_clips_and_an_image(loaded, clips):
    model, proc = loaded
    assert [c.media_type for c in clips] == ["video", "video", "image"]
    assert [len(c.frames) for c in clips] == [4, 4, 4]
    rows = [pllava_prompt(f"row-{i}", template, 0.5) for i, template in enumerate(["general", "person", "general"])]
    prompts = [proc.prompt(p.system, p.user) for p in rows]
    limits = [6, 3, 5]
    out = generate_captions(model, proc, [c.frames for c in clips], prompts, limits, min_new_tokens=3)
    assert len(out) == 3
    for o, limit, prompt in zip(out, limits, prompts):
        assert 3 <= o.output_tokens <= limit
        assert o.finish_reason == ("length" if o.output_tokens == limit else "stop")
        assert o.prompt_tokens == proc.count_tokens(prompt)
        assert isinstance(o.text, str) and "\n" not in o.text
    # left padding and the per-row cut: each row alone gives the same tokens as in the batch
    for i, clip in enumerate(clips):
        alone = generate_captions(model, proc, [clip.frames], [prompts[i]], limits[i], min_new_tokens=3)[0]
        assert (alone.text, alone.output_tokens) == (out[i].text, out[i].output_tokens)


def test_processor_rejects_wrong_frame_counts_and_prompts(loaded, clips):
    _, proc = loaded
    with pytest.raises(ValueError, match="takes 4 frames"):
        proc(text=[proc.prompt("", "x")], videos=[clips[0].frames[:3]])
    with pytest.raises(ValueError, match="exactly one <image>"):
        proc(text=["USER: no image ASSISTANT:"], videos=[clips[0].frames])
    one = proc(text=[proc.prompt("", "x")], videos=[clips[2].frames[:1]])["pixel_values"]
    assert one.shape[0] == 4 and torch.equal(one[0], one[3])


# ---------------------------------------------------------------------------------------------- prompts


def test_short_or_long_is_fixed_by_row_id():
    ids = [f"clip_{i:05d}" for i in range(2000)]
    first = [caption_length(i, 0.3) for i in ids]
    assert first == [caption_length(i, 0.3) for i in reversed(ids)][::-1]
    assert 0.26 < Counter(first)["short"] / len(ids) < 0.34
    assert {caption_length(i, 0.0) for i in ids} == {"long"} and {caption_length(i, 1.0) for i in ids} == {"short"}
    # a row short at a ratio stays short at any larger ratio
    assert all(caption_length(i, 0.6) == "short" for i, c in zip(ids, first) if c == "short")
    p = pllava_prompt("clip_00007", "person", 0.3)
    assert p.max_new_tokens == MAX_NEW_TOKENS[p.length] and p.provenance["caption_length"] == p.length
    assert p.provenance["prompt_template"] == "person" and p.provenance == pllava_prompt("clip_00007", "person",
                                                                                        0.3).provenance
    assert {MAX_NEW_TOKENS["long"], MAX_NEW_TOKENS["short"]} == {256, 128}
    with pytest.raises(ValueError, match="unknown PLLaVA prompt template"):
        pllava_prompt("x", "sports")
    with pytest.raises(ValueError, match="within"):
        caption_length("x", 1.5)


def test_tiny_model_command_writes_pllava(tmp_path, capsys):
    """``vidcap tiny-model pllava DIR`` (docs/pllava.md) writes the released layout that
    ``load_pllava`` reads; an unknown family still names every known one, pllava included."""
    from vidcap.cli import main

    assert main(["tiny-model", "pllava", str(tmp_path / "p")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "p")
    assert (tmp_path / "p" / INDEX_FILE).is_file()
    model, _ = load_pllava(tmp_path / "p", device="cpu")
    assert model.config.model_type == "llava"
    assert main(["tiny-model", "nope", str(tmp_path / "q")]) == 2
    assert "pllava" in capsys.readouterr().err
