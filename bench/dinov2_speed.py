"""Throughput of the DINOv2 engine on this machine, beside the classic engine on the same photos.

Random ViT-S/14 weights (speed does not depend on them). Part 1 times the backbone + heads alone on
batches of crops at each input size, under ``torch.inference_mode``, with the knobs that may help
on a CPU: threads, channels_last, bfloat16 autocast and torch.compile. Part 2 times the whole
``analyze`` per 12-MP JPEG (decode, classic measures for the feedback, the network on 3 crops at
448) against the classic engine on the same files.

    .venv/bin/python bench/dinov2_speed.py [--n 4] [--sizes 224,448] [--batch 8] [--compile]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

from _common import WORK

import torch

from picinspector import Inspector, __version__
from picinspector.models.dinov2 import HeadConfig, ModelConfig, MultiTaskIQA, Preprocess, load_backbone, save_model


def random_model(short_side: int, crops: int) -> tuple[MultiTaskIQA, ModelConfig]:
    torch.manual_seed(0)
    backbone, source = load_backbone("random:vit-s14")
    heads = HeadConfig(in_features=2 * backbone.config.hidden_size)
    config = ModelConfig(backbone_source=source, backbone_config=backbone.config.to_dict(),
                         preprocess=Preprocess(short_side=short_side, crops=crops), heads=heads)
    return MultiTaskIQA(backbone, heads).eval(), config


def views_per_second(model: torch.nn.Module, size: int, batch: int, repeat: int, *, bf16: bool = False,
                     channels_last: bool = False) -> float:
    x = torch.randn(batch, 3, size, size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        model(x)  # warm-up
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return batch / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=4, help="12-MP photos for the end-to-end part")
    ap.add_argument("--sizes", default="224,448", help="input sides (multiples of 14)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--compile", action="store_true", help="also try torch.compile (slow to compile)")
    args = ap.parse_args()

    print(f"picinspector {__version__}, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs\n")
    model, _ = random_model(448, 3)
    sizes = [int(s) for s in args.sizes.split(",")]
    print("| input | threads | knob | views/s | photos/s (3 crops) |")
    print("|---|---|---|---|---|")
    for size in sizes:
        for threads in sorted({1, os.cpu_count() or 1}):
            torch.set_num_threads(threads)
            knobs = {"fp32": {}}
            if threads == (os.cpu_count() or 1):
                knobs.update({"channels_last": {"channels_last": True}, "bf16 autocast": {"bf16": True}})
            for knob, kw in knobs.items():
                v = views_per_second(model, size, args.batch, args.repeat, **kw)
                print(f"| {size} | {threads} | {knob} | {v:.2f} | {v / 3:.2f} |", flush=True)
    if args.compile:
        torch.set_num_threads(os.cpu_count() or 1)
        t0 = time.perf_counter()
        compiled = torch.compile(model)
        v = views_per_second(compiled, sizes[-1], args.batch, args.repeat)
        print(f"| {sizes[-1]} | {os.cpu_count()} | torch.compile (compile+warm-up {time.perf_counter() - t0:.0f} s) "
              f"| {v:.2f} | {v / 3:.2f} |")

    # End to end, per photo, beside the classic engine
    torch.set_num_threads(os.cpu_count() or 1)
    from speed import make_12mp

    photos = make_12mp(args.n)
    folder = WORK / "dinov2_random_vits14"
    save_model(model, random_model(448, 3)[1], folder)
    rows = []
    for label, options in [("classic", {}), ("dinov2, 3 crops", {"engine": "dinov2", "model": str(folder),
                                                                  "device": "cpu"}),
                           ("dinov2, 1 crop", {"engine": "dinov2", "model": str(folder), "device": "cpu",
                                               "crops": 1})]:
        with Inspector(**options) as inspector:
            inspector.analyze(photos[0])  # warm-up (model load, thread pools)
            times = []
            for path in photos:
                t0 = time.perf_counter()
                inspector.analyze(path)
                times.append(time.perf_counter() - t0)
        rows.append((label, statistics.median(times)))
    print(f"\nEnd to end, {len(photos)} JPEGs 4000x3000 q90, median per photo:\n")
    print("| engine | s per photo | photos/s |")
    print("|---|---|---|")
    for label, t in rows:
        print(f"| {label} | {t:.3f} | {1 / t:.2f} |")


if __name__ == "__main__":
    main()
