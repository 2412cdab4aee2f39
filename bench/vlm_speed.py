"""Speed of the VLM feedback writer on this CPU: SmolVLM-256M's architecture with random weights
(`_smolvlm.SMOLVLM_256M`), beside the rule-based writer.

Measured, each as the median of ``--repeat`` runs after one warm-up:

* prefill: one forward pass over the prompt (vision tower + connector + language model over
  ``64 x tiles`` image tokens and ``--prompt-tokens`` text tokens);
* generation: greedy ``model.generate`` of ``--new-tokens`` tokens (EOS suppressed, so every run
  writes exactly that many) under ``torch.inference_mode``; seconds per image, and decode tokens/s
  = new tokens / (generation - prefill);
* one LoRA training step (peft, rank 8 on the language model's q/k/v/o, batch 1): forward with
  labels on prompt + ``--answer-tokens``, backward, AdamW step;
* `picinspector.feedback.rules.write` on an analysed photo (and the classic analysis itself).

No tokenizer is needed: input ids and pixel values are fed as tensors, with the right number of
image tokens.

    .venv/bin/python bench/vlm_speed.py [--threads 2] [--new-tokens 64] [--tiles 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import _smolvlm
from _common import WORK


def median_time(fn: Callable[[], Any], repeat: int, warmup: int = 1) -> tuple[float, list[float]]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def inputs(tiles: int, prompt_tokens: int, answer_tokens: int = 0, seed: int = 0) -> dict[str, Any]:
    """Token ids laid out as the Idefics3 processor lays out one photo, plus random pixels."""
    import torch

    g = torch.Generator().manual_seed(seed)
    cfg = _smolvlm.SMOLVLM_256M
    image_id = cfg["image_token_id"]
    fake, glob = 49189, 49152  # <fake_token_around_image>, <global-img> in SmolVLM's vocabulary

    def words(n: int) -> list[int]:
        return torch.randint(100, 49000, (n,), generator=g).tolist()

    ids = [1] + words(3)
    for tile in range(tiles):
        ids += [fake] + ([glob] if tile == tiles - 1 else words(1)) + [image_id] * _smolvlm.IMAGE_SEQ_LEN
    ids += [fake] + words(prompt_tokens)
    prompt_len = len(ids)
    ids += words(answer_tokens)
    input_ids = torch.tensor([ids])
    batch = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids),
             "pixel_values": torch.rand((1, tiles, 3, _smolvlm.TILE, _smolvlm.TILE), generator=g) * 2 - 1,
             "pixel_attention_mask": torch.ones((1, tiles, _smolvlm.TILE, _smolvlm.TILE), dtype=torch.bool)}
    if answer_tokens:
        labels = input_ids.clone()
        labels[:, :prompt_len] = -100
        batch["labels"] = labels
    return batch


def rules_time(repeat: int) -> tuple[float, float, str]:
    """Median seconds of rules.write on an analysed photo, and of the analysis itself."""
    from picinspector import Inspector
    from picinspector.feedback import rules

    photos = sorted((WORK / "12mp").glob("*.jpg"))
    source: Any
    if photos:
        source, name = str(photos[0]), photos[0].name
    else:
        from picinspector.samples import load_sample

        source, name = load_sample("astronaut"), "astronaut (scikit-image)"
    with Inspector() as inspector:
        analysis, _ = median_time(lambda: inspector.analyze(source), repeat)
        photo = inspector.load(source)
        report = inspector.analyze_photo(photo)
    write, _ = median_time(lambda: rules.write(photo, report.measures, report.scores, report.scene), 200, warmup=5)
    return write, analysis, name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--prompt-tokens", type=int, default=40, help="text tokens of the instruction")
    ap.add_argument("--answer-tokens", type=int, default=48, help="answer tokens in the training step")
    ap.add_argument("--tiles", type=int, default=1,
                    help="512-px tiles per photo (1: PicInspector's default; 17: SmolVLM's 4x4 split + global)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import torch
    from peft import LoraConfig, get_peft_model

    from picinspector.training.lora import target_modules

    torch.set_num_threads(args.threads)
    t = time.perf_counter()
    model = _smolvlm.random_model()
    build_s = time.perf_counter() - t
    n_params = sum(p.numel() for p in model.parameters())
    prompt = inputs(args.tiles, args.prompt_tokens)
    n_prompt = prompt["input_ids"].shape[1]

    with torch.inference_mode():
        prefill, _ = median_time(lambda: model(**prompt), args.repeat)
        generate, _ = median_time(lambda: model.generate(**prompt, max_new_tokens=args.new_tokens,
                                                         min_new_tokens=args.new_tokens, do_sample=False,
                                                         eos_token_id=2, pad_token_id=2), args.repeat)
    decode_tps = args.new_tokens / max(generate - prefill, 1e-9)

    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05,
                                                  target_modules=target_modules("attention")))
    peft_model.train()
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=2e-4)
    batch = inputs(args.tiles, args.prompt_tokens, args.answer_tokens, seed=1)

    def step() -> None:
        loss = peft_model(**batch, use_cache=False).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    train_step, _ = median_time(step, args.repeat)
    write, analysis, photo_name = rules_time(args.repeat)

    print(f"\nSmolVLM-256M architecture, random weights: {n_params / 1e6:.0f} M parameters (built in {build_s:.1f} s); "
          f"LoRA r=8 on q/k/v/o: {trainable / 1e6:.2f} M trainable")
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{args.threads} thread(s); {args.tiles} tile(s) = {args.tiles * _smolvlm.IMAGE_SEQ_LEN} image tokens, "
          f"prompt {n_prompt} tokens; median of {args.repeat}\n")
    print("| Feedback writer step | Time | Rate |")
    print("|---|---:|---:|")
    print(f"| VLM prefill (vision + {n_prompt}-token prompt) | {prefill:.2f} s | |")
    print(f"| VLM generation, {args.new_tokens} new tokens, greedy (s per image) | {generate:.2f} s | "
          f"{args.new_tokens / generate:.1f} tokens/s overall, {decode_tps:.1f} tokens/s decoding |")
    print(f"| VLM LoRA training step (batch 1, {n_prompt + args.answer_tokens} tokens) | {train_step:.2f} s | "
          f"{1 / train_step:.2f} steps/s |")
    print(f"| Rule-based feedback (`rules.write`) | {write * 1e3:.3f} ms | {1 / write:,.0f} photos/s |")
    print(f"| Classic analysis before either writer ({photo_name}) | {analysis:.2f} s | |")


if __name__ == "__main__":
    main()
