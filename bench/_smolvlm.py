"""The SmolVLM-256M architecture with random weights, for speed measurements without a download.

Dimensions of ``HuggingFaceTB/SmolVLM-256M-Instruct`` (Idefics3ForConditionalGeneration): the text
model is a SmolLM2-135M-like Llama (hidden 576, 30 layers, 9 attention heads, 3 key/value heads,
MLP 1536, vocabulary 49280, RoPE theta 100000, untied embeddings), the vision tower SigLIP base
patch-16/512 (hidden 768, 12 layers, 12 heads, MLP 3072, patch 16, image 512), pixel-shuffle scale
factor 4, so (512/16)^2 / 4^2 = 64 image tokens per 512-px tile; image token id 49190.

Source: the model card (base models SmolLM2-135M-Instruct and google/siglip-base-patch16-512) and
copies of its config.json quoted in public code (test fixtures of Idefics3/SmolVLM ports found with
the code search of this project: text 576/1536/30/9/3/49280, vision 768/3072/12/12/512/16,
scale_factor 4, image_token_id 49190). The Hub itself cannot be reached from here.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from _common import ROOT

#: Idefics3Config keyword arguments of SmolVLM-256M-Instruct.
SMOLVLM_256M: dict[str, Any] = {
    "text_config": {"model_type": "llama", "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
                    "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49280, "head_dim": 64,
                    "max_position_embeddings": 8192, "rms_norm_eps": 1e-5, "rope_theta": 100000.0,
                    "tie_word_embeddings": False, "pad_token_id": 2, "bos_token_id": 1, "eos_token_id": 2},
    "vision_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                      "num_attention_heads": 12, "image_size": 512, "patch_size": 16},
    "scale_factor": 4,
    "image_token_id": 49190,
    "tie_word_embeddings": False,
}
TILE = 512
IMAGE_SEQ_LEN = (512 // 16) ** 2 // 4 ** 2  # 64


def config(**overrides: Any):
    from transformers import Idefics3Config

    kwargs = {**SMOLVLM_256M, **overrides}
    return Idefics3Config(**kwargs)


def random_model(seed: int = 0, **overrides: Any):
    """Idefics3ForConditionalGeneration with SmolVLM-256M's dimensions and random weights (float32)."""
    import torch
    from transformers import Idefics3ForConditionalGeneration

    torch.manual_seed(seed)
    return Idefics3ForConditionalGeneration(config(**overrides)).eval()


def save_random_base(folder: str | Path, seed: int = 0, dtype: Any = None) -> Path:
    """A base-model folder (config, safetensors, processor) with SmolVLM-256M's architecture, random
    weights, and a small byte-level BPE tokenizer carrying the Idefics3 special tokens (its ids fit in
    the 49280-row vocabulary); image processor as SmolVLM's: 512-px tiles, photos up to 2048 px."""
    sys.path.insert(0, str(ROOT / "tests"))
    from _tiny_vlm import build_processor

    processor = build_processor(tile=TILE, image_seq_len=IMAGE_SEQ_LEN)
    tok = processor.tokenizer
    ids = {name: tok.convert_tokens_to_ids(t) for name, t in (("image", "<image>"), ("pad", "<|endoftext|>"),
                                                               ("bos", "<|im_start|>"), ("eos", "<end_of_utterance>"))}
    text = {**SMOLVLM_256M["text_config"], "pad_token_id": ids["pad"], "bos_token_id": ids["bos"],
            "eos_token_id": ids["eos"]}
    model = random_model(seed, text_config=text, image_token_id=ids["image"])
    if dtype is not None:
        model = model.to(dtype)
    folder = Path(folder)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
