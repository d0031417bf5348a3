"""Model code that transformers does not ship, built on its classes (import the submodules; they import torch).

``pllava``: PLLaVA (LLaVA + 3-D average pooling of frame features), its processor and batch generation;
``pllava_checkpoint``: the released checkpoints' files and key layout, and ``load_pllava``;
``pllava_prompts``: the PLLaVA caption prompts (general / person, long / short per row).
"""
