"""A short LoRA fine-tune of the SmolVLM-256M architecture (random weights) on synthetic photos: steps/s.

Runs the real trainer, `picinspector.training.lora.train_vlm` (photo loading and the Idefics3
processor on the CPU, forward/backward/AdamW on the device), in bfloat16 on CUDA, on a base
folder written by `_smolvlm.save_random_base` (nothing is downloaded). A warm-up run of
``--warmup`` steps comes first (CUDA kernels, allocator); the timed run is one epoch of exactly
``--steps`` optimizer steps (``grad_accum`` 1). Then greedy generation of ``--new-tokens`` tokens
with the trained adapter, on the same device.

    python bench/gpu_vlm.py                              # CUDA, bf16, 30 steps of batch 8
    python bench/gpu_vlm.py --device cpu --steps 2      # slowly (float32, batch 1): a check that it runs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import _smolvlm
import numpy as np
from PIL import Image

from picinspector.datasets import CaptionSample

CAPTIONS = [
    "The photo is sharp and well exposed, with bright colours.",
    "The photo is blurry and dark, with dull colours and low contrast.",
    "A noisy night scene: grain in the shadows and a dark sky.",
    "A bright portrait, slightly soft, with clean skin tones.",
]


def synthetic_photos(folder: Path, n: int, seed: int = 0) -> list[CaptionSample]:
    """``n`` 640x480 JPEGs (smooth colour fields with stripes and noise) with captions."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:480, 0:640].astype(np.float32)
    out = []
    for i in range(n):
        base = rng.uniform(0.1, 0.9, 3)
        img = base + 0.25 * np.sin(xx[..., None] / rng.uniform(5, 60) + rng.uniform(0, 6, 3))
        img = img * (0.5 + yy[..., None] / 960) + rng.normal(0, rng.uniform(0, 0.1), (480, 640, 3))
        path = folder / f"synthetic_{i:04d}.jpg"
        Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(path, quality=90)
        out.append(CaptionSample(str(path), CAPTIONS[i % len(CAPTIONS)]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, help="untimed steps first (default: 2 on CUDA, 1 elsewhere)")
    ap.add_argument("--batch-size", type=int, help="images per step (default: 8 on CUDA, 1 elsewhere)")
    ap.add_argument("--workers", type=int, help="photo-loading processes (default: up to 8 on CUDA, 0 elsewhere)")
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--target", default="attention", choices=["attention", "attention+mlp"])
    ap.add_argument("--dtype", choices=["auto", "bf16", "fp32"], default="auto",
                    help="auto: bfloat16 on CUDA, float32 elsewhere")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    import torch

    from picinspector.models.vlm import load_vlm
    from picinspector.training.lora import train_vlm

    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise SystemExit("CUDA is not available here; pass --device cpu (slow) to check that the script runs")
    bf16 = args.dtype == "bf16" or (args.dtype == "auto" and cuda)
    args.batch_size = args.batch_size or (8 if cuda else 1)
    args.warmup = (2 if cuda else 1) if args.warmup is None else args.warmup
    if args.workers is None:
        args.workers = min(8, os.cpu_count() or 1) if cuda else 0
    dtype = torch.bfloat16 if bf16 else torch.float32
    common = {"batch_size": args.batch_size, "grad_accum": 1, "rank": args.rank, "alpha": 2 * args.rank,
              "target": args.target, "lr": 2e-4, "device": args.device, "bf16": bf16, "progress": False,
              "resume": False, "workers": args.workers}

    with tempfile.TemporaryDirectory(prefix="gpu_vlm_") as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        base = _smolvlm.save_random_base(work / "base", dtype=dtype)
        build_s = time.perf_counter() - t
        (work / "photos").mkdir()
        samples = synthetic_photos(work / "photos", (args.warmup + args.steps) * args.batch_size)
        if args.warmup:
            train_vlm(samples[:args.warmup * args.batch_size], base, work / "warmup", max_steps=args.warmup,
                      **common)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        timed = samples[args.warmup * args.batch_size:]
        result = train_vlm(timed, base, work / "run", epochs=1, **common)
        epoch = result.history[-1]
        steps_per_s = result.global_step / epoch["seconds"]
        peak_gb = torch.cuda.max_memory_allocated() / 2**30 if cuda else None

        vlm = load_vlm(result.run_dir, device=args.device, dtype=dtype)
        batch = vlm.inputs(timed[0].image)
        pad = vlm.processor.tokenizer.pad_token_id

        def generate() -> None:
            with torch.inference_mode():
                vlm.model.generate(**batch, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens,
                                   do_sample=False, pad_token_id=pad, eos_token_id=vlm.end_token_id)
            if cuda:
                torch.cuda.synchronize()

        generate()
        times = []
        for _ in range(3):
            t = time.perf_counter()
            generate()
            times.append(time.perf_counter() - t)
        gen_s = statistics.median(times)

    device_name = torch.cuda.get_device_name() if cuda else (platform.processor() or platform.machine())
    results = {"device": device_name, "torch": torch.__version__, "dtype": str(dtype).replace("torch.", ""),
               "batch_size": args.batch_size, "steps": result.global_step, "seconds": epoch["seconds"],
               "steps_per_s": steps_per_s, "samples_per_s": steps_per_s * args.batch_size,
               "train_loss_first_epoch": epoch["train_loss"], "peak_memory_gib": peak_gb,
               "generation_s_per_image": gen_s, "generation_tokens_per_s": args.new_tokens / gen_s,
               "rank": args.rank, "target": args.target, "workers": args.workers, "base_build_s": build_s}
    print(f"\nSmolVLM-256M architecture (random weights), LoRA r={args.rank} on {args.target}, "
          f"{results['dtype']}, batch {args.batch_size}, on {device_name} (torch {torch.__version__}, "
          f"{args.workers} photo-loading workers)\n")
    print("| Measure | Value |")
    print("|---|---:|")
    print(f"| LoRA training, end to end (photo loading + processor + step) | {steps_per_s:.2f} steps/s, "
          f"{steps_per_s * args.batch_size:.1f} images/s |")
    print(f"| Steps timed | {result.global_step} in {epoch['seconds']:.1f} s |")
    if peak_gb is not None:
        print(f"| Peak GPU memory | {peak_gb:.2f} GiB |")
    print(f"| Greedy generation, {args.new_tokens} tokens, 1 image | {gen_s:.2f} s "
          f"({args.new_tokens / gen_s:.0f} tokens/s) |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
