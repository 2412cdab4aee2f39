"""A tiny random Idefics3 (the SmolVLM architecture) and its processor, built offline for the VLM tests.

`build_tiny_vlm(folder)` trains a byte-level BPE tokenizer on a few sentences with the `tokenizers`
library, adds the image special tokens Idefics3 needs, wraps it in an `Idefics3Processor` with a
SmolVLM-style chat template, builds an `Idefics3ForConditionalGeneration` with random weights and
tiny dimensions, and saves both with ``save_pretrained``: the folder is a "base model" for the tests,
laid out like a downloaded SmolVLM snapshot. Nothing is downloaded.

Sizes: the vision tower sees 32x32 tiles in 8x8 patches; pixel shuffle by 2 turns the 16 patches
into 4 image tokens per tile. The processor's tile (``max_image_size``) equals the vision
``image_size``, as Idefics3 requires; its ``size`` (the longest edge before splitting into tiles) is
four tiles, as in the published SmolVLM processors.
"""

from __future__ import annotations

from pathlib import Path

#: Sentences the tiny tokenizer learns its merges from (the words the tests' captions use).
CORPUS = [
    "The photo is sharp and well exposed, with bright colours.",
    "The photo is blurry and dark, with dull colours and low contrast.",
    "A noisy night scene: grain in the shadows and a dark sky.",
    "A bright portrait, slightly soft, with clean skin tones.",
    "Describe the quality of this photo: sharpness, noise, exposure, contrast and colour.",
    "Measured scores: quality 62/100, brightness 40/100, colorfulness 55/100, contrast 30/100.",
    "noisiness 80/100, sharpness 25/100. Scene: landscape, portrait, night, indoor, food, animal.",
    "Findings: motion blur, under-exposed, over-exposed, flat low contrast, visible noise.",
    "User: Assistant: 0123456789 %.,;:!?()/-'",
]

SPECIAL_TOKENS = ["<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>", "<image>", "<global-img>",
                  *[f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)]]

#: A SmolVLM-style chat template: "<|im_start|>User:<image>text<end_of_utterance>\nAssistant:".
CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}"
    "{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
    "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% elif part['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

TILE = 32          # vision image_size == processor max_image_size["longest_edge"]
PATCH = 8
SCALE_FACTOR = 2
IMAGE_SEQ_LEN = (TILE // PATCH) ** 2 // SCALE_FACTOR ** 2


def build_tokenizer(vocab_size: int = 400):
    """A byte-level BPE `PreTrainedTokenizerFast` with the Idefics3 special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>", *SPECIAL_TOKENS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<end_of_utterance>", pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        extra_special_tokens={"image_token": "<image>", "fake_image_token": "<fake_token_around_image>",
                              "global_image_token": "<global-img>", "end_of_utterance_token": "<end_of_utterance>"},
    )


def build_processor(tile: int = TILE, image_seq_len: int = IMAGE_SEQ_LEN):
    """An `Idefics3Processor`: tiles of ``tile`` pixels (the vision ``image_size``), ``image_seq_len``
    image tokens per tile, photos up to four tiles long before splitting (as SmolVLM's processors)."""
    from transformers import Idefics3ImageProcessorPil, Idefics3Processor

    image_processor = Idefics3ImageProcessorPil(size={"longest_edge": 4 * tile}, max_image_size={"longest_edge": tile},
                                                do_image_splitting=True)
    return Idefics3Processor(image_processor=image_processor, tokenizer=build_tokenizer(),
                             image_seq_len=image_seq_len, chat_template=CHAT_TEMPLATE)


def build_model(tokenizer, seed: int = 0):
    import torch
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<image>", "<|endoftext|>", "<|im_start|>",
                                                            "<end_of_utterance>")}
    text = {"model_type": "llama", "vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
            "pad_token_id": ids["<|endoftext|>"], "bos_token_id": ids["<|im_start|>"],
            "eos_token_id": ids["<end_of_utterance>"], "tie_word_embeddings": False}
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
              "image_size": TILE, "patch_size": PATCH}
    config = Idefics3Config(text_config=text, vision_config=vision, scale_factor=SCALE_FACTOR,
                            image_token_id=ids["<image>"], tie_word_embeddings=False,
                            pad_token_id=ids["<|endoftext|>"])
    torch.manual_seed(seed)
    model = Idefics3ForConditionalGeneration(config)
    # With the default 0.02 init, logits after the final RMSNorm span a fraction of a unit whatever the
    # hidden state: no adapter could make one token likely. A wider LM head lets a few LoRA steps
    # show a clear drop in loss.
    with torch.no_grad():
        model.lm_head.weight.normal_(0.0, 0.5)
    model.generation_config.eos_token_id = ids["<end_of_utterance>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    return model


def build_tiny_vlm(folder: str | Path, seed: int = 0) -> Path:
    """Save a tiny random Idefics3 model and its processor into ``folder``; return the folder."""
    folder = Path(folder)
    processor = build_processor()
    model = build_model(processor.tokenizer, seed)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
