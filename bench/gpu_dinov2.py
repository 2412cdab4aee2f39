"""GPU smoke test and throughput of the DINOv2 multi-task model: a few hundred full fine-tuning
steps on synthetic data (random images, targets that depend on them), then inference, both in
bfloat16 autocast at batch 64. Reports images/s for training and inference and the loss before and
after, so a broken training step shows up as a loss that does not fall.

    python bench/gpu_dinov2.py [--device cuda] [--steps 300] [--batch 64] [--size 224]
    python bench/gpu_dinov2.py --device cpu --steps 2 --batch 4 --size 56   # checks the script here
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402

from picinspector.models.dinov2 import HeadConfig, MultiTaskIQA, load_backbone  # noqa: E402
from picinspector.training.dinov2 import TrainOptions, multitask_loss  # noqa: E402


def synthetic_batch(batch: int, size: int, device: torch.device, gen: torch.Generator) -> tuple[torch.Tensor, dict]:
    """Images whose 'quality' is how much of them is noise: a learnable target."""
    smooth = torch.nn.functional.interpolate(torch.randn(batch, 3, size // 16, size // 16, generator=gen),
                                             size=(size, size), mode="bilinear", align_corners=False)
    q = torch.rand(batch, generator=gen)
    x = smooth * q[:, None, None, None] + torch.randn(batch, 3, size, size, generator=gen) * (1 - q[:, None, None, None])
    scores = q[:, None].repeat(1, 6)
    scenes = torch.zeros(batch, 9)
    scenes[torch.arange(batch), (q * 8.999).long()] = 1.0
    target = {"scores": scores, "score_mask": torch.ones(batch, 6, dtype=torch.bool), "scenes": scenes,
              "scene_mask": torch.ones(batch, dtype=torch.bool)}
    return x.to(device), {k: v.to(device) for k, v in target.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--backbone", default="random:vit-s14")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--json", metavar="FILE", help="also write the results here")
    args = ap.parse_args()

    device = torch.device(args.device)
    torch.manual_seed(0)
    backbone, source = load_backbone(args.backbone)
    model = MultiTaskIQA(backbone, HeadConfig(in_features=2 * backbone.config.hidden_size)).to(device)
    opts = TrainOptions(backbone=args.backbone, mode="full")
    optim = torch.optim.AdamW([{"params": [p for n, p in model.named_parameters() if not n.startswith("backbone.")],
                                "lr": 1e-3},
                               {"params": model.backbone.parameters(), "lr": 5e-5}], weight_decay=0.05)
    bf16 = device.type == "cuda"
    gen = torch.Generator().manual_seed(0)
    batches = [synthetic_batch(args.batch, args.size, device, gen) for _ in range(8)]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step(i: int) -> float:
        x, target = batches[i % len(batches)]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
        loss, _ = multitask_loss(out, target, opts)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        return loss.item()

    model.train()
    warm = min(5, max(0, args.steps - 1))  # untimed warm-up steps; at least one step is timed
    losses = [step(i) for i in range(warm)]
    sync()
    t0 = time.perf_counter()
    losses += [step(i) for i in range(warm, args.steps)]
    sync()
    train_s = time.perf_counter() - t0
    timed = args.steps - warm

    model.eval()
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        model(batches[0][0])
        sync()
        t0 = time.perf_counter()
        for i in range(20):
            model(batches[i % len(batches)][0])
        sync()
        infer_s = time.perf_counter() - t0

    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else str(device),
        "torch": torch.__version__, "backbone": source, "input": args.size, "batch": args.batch, "bf16": bf16,
        "steps": args.steps, "train_images_per_s": round(timed * args.batch / train_s, 1),
        "inference_images_per_s": round(20 * args.batch / infer_s, 1),
        "loss_first": round(sum(losses[:5]) / len(losses[:5]), 4), "loss_last": round(sum(losses[-5:]) / 5, 4)
        if len(losses) >= 5 else round(losses[-1], 4),
        "peak_gpu_memory_gb": round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        if device.type == "cuda" else None,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    if args.steps >= 50 and not result["loss_last"] < result["loss_first"]:
        print("FAIL: the loss did not fall", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
