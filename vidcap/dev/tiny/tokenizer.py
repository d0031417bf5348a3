"""The tiny models' tokenizer: a byte-level BPE trained in a second on ``CORPUS`` with a family's special
tokens first (ids 0..), and the chat templates and special tokens shared by several families.
"""
from __future__ import annotations

CORPUS = (
    "a video of a dog running on the beach at sunset with waves and sand. the camera pans left. "
    "a person walks in a city street at night under bright lights. a car drives on a road. "
    "the scene is a kitchen with a chef cutting vegetables. a cat sleeps on a sofa. "
    "subject scene atmosphere light shadow camera technique movement close up wide shot "
    "red green blue yellow white black gray orange purple pattern stripes moving square frame "
    "describe this video in detail in at most six sentences one sentence short caption image "
)


QWEN_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


VICUNA_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['content'] is string %}{% set parts = [{'type': 'text', 'text': message['content']}] %}"
    "{% else %}{% set parts = message['content'] %}{% endif %}"
    "{% if message['role'] == 'system' %}{% for c in parts %}{{ c['text'] }}{% endfor %} "
    "{% elif message['role'] == 'user' %}USER: {% for c in parts %}{% if c['type'] == 'image' %}<image>\n"
    "{% elif c['type'] == 'video' %}<video>\n{% endif %}{% endfor %}"
    "{% for c in parts %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %} "
    "{% else %}ASSISTANT: {% for c in parts %}{{ c['text'] }}{% endfor %}</s>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                 "<|image_pad|>", "<|video_pad|>"]
VICUNA_SPECIAL = ["<unk>", "<s>", "</s>", "<image>", "<video>", "<pad>"]


def bpe_tokenizer(special: list[str], eos: str, pad: str, bos: str | None, vocab_size: int = 400,
               extra: dict | None = None):
    """A byte-level BPE tokenizer trained on a tiny corpus, with ``special`` tokens first (ids 0..)."""
    # heavy: the tokenizer stack, only when a tiny tokenizer is trained
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([CORPUS] * 4, trainer=trainer)
    kwargs = {"eos_token": eos, "pad_token": pad, "unk_token": None}
    if bos:
        kwargs["bos_token"] = bos
    kwargs.update(extra or {})
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)
    fast.padding_side = "left"
    return fast


def token_ids(tok, names):
    return {n: tok.convert_tokens_to_ids(n) for n in names}
