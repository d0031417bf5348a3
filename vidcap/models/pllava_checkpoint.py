"""The released PLLaVA checkpoints: their files and key layout, ``load_pllava`` and ``save_released``.

Layout, read from the released code (``magic-research/PLLaVA``): ``tasks/train/train_pllava_nframe_accel.py``
wraps the ``language_model`` (a ``LlamaForCausalLM``) of ``PllavaForConditionalGeneration`` with
``peft.get_peft_model`` and saves the whole model's state dict with ``save_pretrained``;
``tasks/eval/model_utils.py`` (``load_pllava``) wraps the same way and loads every ``model.safetensors`` or
``model-0*`` file of ``weight_dir`` with ``load_state_dict(strict=False)``. Keys (released -> ours):

==============================================  ======================================================
``vision_tower.vision_model.<clip>``            ``model.vision_tower.<clip>``
``multi_modal_projector.<linear_1|linear_2>``   ``model.multi_modal_projector.<...>``
``language_model.base_model.model.model.<x>``   ``model.language_model.base_model.model.<x>`` (peft)
``language_model.base_model.model.lm_head.*``   ``lm_head.*``
==============================================  ======================================================

with LoRA on the adapted linears of the LLM (``q_proj``/``v_proj``, r = 128 in the releases):
``<...>.q_proj.base_layer.weight``, ``<...>.q_proj.lora_A.default.weight`` (r x in) and
``<...>.q_proj.lora_B.default.weight`` (out x r). Unlike the released loader, every key is mapped
explicitly: a key of the model missing from the files, a file key with no place in the model, a shape
that differs, a missing shard or no weights at all is ``RunnerFatal`` naming it (never a random init).
"""
from __future__ import annotations

import json
import logging
import re
import warnings
from pathlib import Path

import torch

from vidcap.errors import RunnerFatal
from vidcap.models.pllava import PllavaForConditionalGeneration, PllavaProcessor, set_pooling

log = logging.getLogger("vidcap.models.pllava")

# (released prefix, our prefix while the LLM is wrapped by peft): one table for loading and saving.
PREFIXES = (
    ("vision_tower.vision_model.", "model.vision_tower."),
    ("multi_modal_projector.", "model.multi_modal_projector."),
    ("language_model.base_model.model.model.", "model.language_model.base_model.model."),
    ("language_model.base_model.model.lm_head.", "lm_head."),
)
SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
_SHARD = re.compile(r"^model-(\d+)-of-(\d+)\.safetensors$")
_LORA_A = re.compile(r"^(.*)\.lora_A\.default\.weight$")


def to_ours(key: str) -> str | None:
    """Our key for a released key, or None when the released layout has no such key."""
    for released, ours in PREFIXES:
        if key.startswith(released):
            return ours + key[len(released):]
    return None


def to_released(key: str) -> str:
    """The released key for one of ours (KeyError when it has none)."""
    for released, ours in PREFIXES:
        if key.startswith(ours):
            return released + key[len(ours):]
    raise KeyError(key)


def _shard_match(path: Path) -> re.Match[str]:
    """``_SHARD``'s match of a file already known to be a shard."""
    m = _SHARD.match(path.name)
    assert m is not None, path
    return m


def checkpoint_files(weight_dir) -> list[Path]:
    """``model.safetensors``, or every ``model-0000i-of-0000n.safetensors`` shard (all n, one n).

    RunnerFatal: folder missing, no weights, both a single file and shards, a shard missing or of
    another count.
    """
    folder = Path(weight_dir)
    if not folder.is_dir():
        raise RunnerFatal(f"PLLaVA weight_dir {str(folder)!r} is not a folder")
    single = folder / SINGLE_FILE
    shards = sorted(p for p in folder.iterdir() if _SHARD.match(p.name))
    if single.exists() and shards:
        raise RunnerFatal(f"PLLaVA weight_dir {str(folder)!r} holds both {SINGLE_FILE} and "
                          f"{len(shards)} model-*-of-*.safetensors shards; keep one set")
    if single.exists():
        return [single]
    if not shards:
        raise RunnerFatal(f"no PLLaVA weights in {str(folder)!r}: expected {SINGLE_FILE} or "
                          f"model-00001-of-0000N.safetensors shards")
    counts = {int(_shard_match(p).group(2)) for p in shards}
    if len(counts) != 1:
        raise RunnerFatal(f"PLLaVA shards in {str(folder)!r} disagree on their count: {sorted(counts)}")
    total = counts.pop()
    have = {int(_shard_match(p).group(1)) for p in shards}
    missing = [i for i in range(1, total + 1) if i not in have]
    if missing:
        width = len(_shard_match(shards[0]).group(1))
        raise RunnerFatal(f"PLLaVA shard model-{missing[0]:0{width}d}-of-{total:0{width}d}.safetensors is missing "
                          f"from {str(folder)!r} ({len(missing)} of {total} missing)")
    return shards


def _lora_spec(files: list[Path]) -> tuple[int, list[str]]:
    """(r, adapted module names) from the released ``lora_A`` tensors; RunnerFatal when there are none."""
    # heavy: safetensors (with torch), only when a checkpoint is read or written
    from safetensors import safe_open

    ranks, targets = set(), set()
    for path in files:
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():
                m = _LORA_A.match(key)
                if m:
                    ranks.add(int(f.get_slice(key).get_shape()[0]))
                    targets.add(m.group(1).rsplit(".", 1)[-1])
    if not ranks:
        raise RunnerFatal("the PLLaVA checkpoint holds no LoRA weights (no '*.lora_A.default.weight' key); "
                          "the released layout has them")
    if len(ranks) != 1:
        raise RunnerFatal(f"the PLLaVA checkpoint's LoRA weights have several ranks: {sorted(ranks)}")
    return ranks.pop(), sorted(targets)


def wrap_lora(model, r: int, lora_alpha: float, targets: list[str], *, init_lora_weights=True):
    """Wrap ``model.model.language_model`` with peft LoRA (the released layout); returns the peft model."""
    # heavy, optional: peft, only for a LoRA checkpoint
    from peft import LoraConfig, get_peft_model

    # peft annotates lora_alpha as int; the scale is lora_alpha / r either way, and a float keeps 4.0 as given
    cfg = LoraConfig(r=int(r), lora_alpha=float(lora_alpha), target_modules=list(targets), lora_dropout=0.0,  # type: ignore[arg-type]
                     bias="none", init_lora_weights=init_lora_weights)
    with warnings.catch_warnings():  # peft asks the model a deprecated transformers question
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        model.model.language_model = get_peft_model(model.model.language_model, cfg)
    return model.model.language_model


def load_config(repo_id, *, num_frames=None, pooling_shape=None, **hub_kwargs):
    """A ``LlavaConfig`` with ``num_frames``/``pooling_shape`` from ``repo_id``'s config (llava or llava_next).

    ``num_frames``/``pooling_shape``: given values win, then the config's own, then 4 frames and
    ``default_pooling_shape``. RunnerFatal when the config cannot be read or is not a LLaVA config.
    """
    # heavy: transformers, only when a model or processor is built
    from transformers import AutoConfig, LlavaConfig

    try:
        src = AutoConfig.from_pretrained(repo_id, **hub_kwargs)
    except (OSError, ValueError) as exc:
        raise RunnerFatal(f"cannot read the PLLaVA config from {str(repo_id)!r}: {exc}") from None
    if getattr(src, "vision_config", None) is None or getattr(src, "text_config", None) is None:
        raise RunnerFatal(f"{str(repo_id)!r} is a {getattr(src, 'model_type', '?')!r} config, not a LLaVA one")
    config = LlavaConfig(vision_config=src.vision_config.to_dict(), text_config=src.text_config.to_dict(),
                         image_token_index=src.image_token_id,
                         projector_hidden_act=getattr(src, "projector_hidden_act", "gelu"),
                         vision_feature_layer=getattr(src, "vision_feature_layer", -2),
                         vision_feature_select_strategy=getattr(src, "vision_feature_select_strategy", "default"),
                         multimodal_projector_bias=True, tie_word_embeddings=False)
    frames = num_frames if num_frames is not None else getattr(src, "num_frames", None) or 4
    shape = pooling_shape if pooling_shape is not None else (
        getattr(src, "pooling_shape", None) if num_frames is None else None)
    try:
        return set_pooling(config, frames, shape)
    except ValueError as exc:
        raise RunnerFatal(f"PLLaVA pooling: {exc}") from None


def read_released(files: list[Path], expected: dict, *, dtype=None, device="cpu", ignore_keys=()) -> dict:
    """Our state dict from the released files, every key mapped; RunnerFatal naming a bad key or shape.

    ``expected``: our model's state dict (shapes; meta tensors are fine). ``ignore_keys``: released keys
    to skip on purpose (exact names). Floating tensors are cast to ``dtype`` (None: kept).
    """
    # heavy: safetensors (with torch), only when a checkpoint is read or written
    from safetensors import safe_open

    ignore = set(ignore_keys)
    state: dict = {}
    for path in files:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            for key in f.keys():
                if key in ignore:
                    continue
                ours = to_ours(key)
                if ours is None or ours not in expected:
                    raise RunnerFatal(f"unexpected key {key!r} in {path.name}: the PLLaVA model has no such weight")
                if ours in state:
                    raise RunnerFatal(f"key {key!r} appears in more than one file (again in {path.name})")
                tensor = f.get_tensor(key)
                if tuple(tensor.shape) != tuple(expected[ours].shape):
                    raise RunnerFatal(f"key {key!r} in {path.name} has shape {tuple(tensor.shape)}, the model "
                                      f"expects {tuple(expected[ours].shape)}")
                if dtype is not None and tensor.is_floating_point():
                    tensor = tensor.to(dtype)
                state[ours] = tensor
    missing = [k for k in expected if k not in state]
    if missing:
        raise RunnerFatal(f"missing key {to_released(missing[0])!r} in the PLLaVA checkpoint "
                          f"({len(missing)} missing in all)")
    return state


def load_processor(repo_id, config, **hub_kwargs) -> PllavaProcessor:
    """Tokenizer and CLIP image processor from ``repo_id`` for ``config``; RunnerFatal when they cannot load."""
    try:
        return PllavaProcessor.from_pretrained(repo_id, config, **hub_kwargs)
    except (OSError, ValueError) as exc:
        raise RunnerFatal(f"cannot load the PLLaVA tokenizer/image processor from {str(repo_id)!r}: {exc}") from None


def load_weights(weight_dir, config, *, lora_alpha: float = 4.0, dtype=None, device=None, merge_lora: bool = True,
                 ignore_keys=()):
    """PLLaVA ``config`` (from ``load_config``) with the weights of ``weight_dir``, in eval mode on ``device``.

    LoRA r and targets come from the files; ``lora_alpha`` is the scale numerator (scaling = lora_alpha / r;
    Open-Sora passes 4). The adapter is merged into the LLM (``merge_and_unload``) unless ``merge_lora`` is
    False. ``dtype``: None keeps the stored dtype; ``device``: default CUDA when available, else CPU. The
    attention kernel is ``config._attn_implementation`` when set. Parameters are created empty and filled
    from the files only (non-persistent buffers such as RoPE frequencies are computed as usual).
    RunnerFatal for a file or key problem.
    """
    # heavy: accelerate, only when a checkpoint loads
    from accelerate import init_empty_weights

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    files = checkpoint_files(weight_dir)
    r, targets = _lora_spec(files)
    with init_empty_weights(include_buffers=False):
        model = PllavaForConditionalGeneration(config)
    wrap_lora(model, r, lora_alpha, targets)
    state = read_released(files, model.state_dict(), dtype=dtype, device=device, ignore_keys=ignore_keys)
    model.load_state_dict(state, strict=True, assign=True)
    model.to(device)
    if merge_lora:
        model.model.language_model = model.model.language_model.merge_and_unload()
    model.eval()
    log.info("loaded PLLaVA from %s (LoRA r=%d on %s, alpha %s, %s), pooling %s over %d frames, on %s",
             weight_dir, r, "/".join(targets), lora_alpha, "merged" if merge_lora else "unmerged",
             "-".join(map(str, config.pooling_shape)), config.num_frames, device)
    return model


def load_pllava(weight_dir, repo_id=None, *, num_frames: int | None = None, pooling_shape=None,
                lora_alpha: float = 4.0, dtype=None, device=None, merge_lora: bool = True,
                attn_implementation: str | None = None, ignore_keys=(), **hub_kwargs):
    """(model, processor): PLLaVA with the weights of ``weight_dir``, config and processor from ``repo_id``.

    ``repo_id``: hub id or folder with the LLaVA config, tokenizer and CLIP image processor (default:
    ``weight_dir``, as the released folders hold all three). The three steps (``load_config``,
    ``load_processor``, ``load_weights``; the caption runner calls them apart, with its context check
    before the weights) with their arguments. RunnerFatal for a config, file or key problem.
    """
    repo_id = weight_dir if repo_id is None else repo_id
    config = load_config(repo_id, num_frames=num_frames, pooling_shape=pooling_shape, **hub_kwargs)
    if attn_implementation:
        config._attn_implementation = attn_implementation
    processor = load_processor(repo_id, config, **hub_kwargs)
    model = load_weights(weight_dir, config, lora_alpha=lora_alpha, dtype=dtype, device=device,
                         merge_lora=merge_lora, ignore_keys=ignore_keys)
    return model, processor


def save_released(model, folder, *, shards: int = 1) -> list[Path]:
    """Write a LoRA-wrapped model's weights in the released layout (``shards`` > 1: sharded + index).

    For test checkpoints (``vidcap.dev.tiny_pllava``); returns the files written.
    """
    # heavy: safetensors (with torch), only when a checkpoint is read or written
    from safetensors.torch import save_file

    folder = Path(folder)
    state = {to_released(k): v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    keys = list(state)
    if shards <= 1:
        save_file(state, str(folder / SINGLE_FILE), metadata={"format": "pt"})
        return [folder / SINGLE_FILE]
    per = -(-len(keys) // shards)
    written, weight_map = [], {}
    for i in range(shards):
        name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {k: state[k] for k in keys[i * per:(i + 1) * per]}
        save_file(part, str(folder / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, name))
        written.append(folder / name)
    total = sum(v.numel() * v.element_size() for v in state.values())
    (folder / INDEX_FILE).write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map},
                                                indent=1))
    return written
