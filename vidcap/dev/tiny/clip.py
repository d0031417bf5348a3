"""A tiny random-weight CLIP (transformers ``CLIPModel`` + ``CLIPProcessor``) and a LAION-format aesthetic
head, for the scores stage's tests: the folder loads through the same ``from_pretrained`` as
``openai/clip-vit-large-patch14``, and the head file has the layout of LAION's improved aesthetic
predictor (``layers.{0,2,4,6,7}`` Linear 768-1024-128-64-16-1, here with the tiny projection width in).

``tiny_clip()`` returns ``(clip folder, head .pth)`` in the tiny-model cache (built once, stamped).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from vidcap.dev.tiny import build_cached, built_alike, default_cache_dir, publish
from vidcap.dev.tiny.tokenizer import bpe_tokenizer

WIDTH = 32   # projection width (ViT-L/14: 768)
SPEC = {"family": "clip", "version": "1", "projection_dim": WIDTH}
HEAD = "aesthetic_head.pth"


def build_tiny_clip(outdir: Path) -> Path:
    if built_alike(outdir, SPEC):
        return outdir
    import torch  # heavy/optional library: loaded only when this runs
    from transformers import (  # heavy/optional library: loaded only when this runs
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
    )


    torch.manual_seed(0)
    tok = bpe_tokenizer(["<|endoftext|>", "<|startoftext|>"], eos="<|endoftext|>", pad="<|endoftext|>",
                        bos="<|startoftext|>", vocab_size=300)
    tok.padding_side = "right"
    text = {"vocab_size": len(tok), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 2, "max_position_embeddings": 77, "bos_token_id": 1, "eos_token_id": 0,
            "pad_token_id": 0}
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
              "image_size": 32, "patch_size": 8}
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=WIDTH)
    model = CLIPModel(config).eval()
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    tmp = Path(tempfile.mkdtemp(prefix=".clip.", dir=outdir.parent))
    model.save_pretrained(tmp)
    CLIPProcessor(image_processor=images, tokenizer=tok).save_pretrained(tmp)
    dims = [WIDTH, 1024, 128, 64, 16, 1]
    head = {}
    for key, (a, b) in zip((0, 2, 4, 6, 7), zip(dims, dims[1:])):
        layer = torch.nn.Linear(a, b)
        head[f"layers.{key}.weight"], head[f"layers.{key}.bias"] = layer.weight.data, layer.bias.data
    torch.save(head, tmp / HEAD)
    return publish(tmp, outdir, SPEC)


def tiny_clip() -> tuple[Path, Path]:
    outdir = default_cache_dir() / "clip-tiny"
    outdir.parent.mkdir(parents=True, exist_ok=True)
    folder = build_cached(outdir, lambda: build_tiny_clip(outdir))
    return folder, folder / HEAD
