"""Training the multi-task model on any backbone family (``picinspector train --backbone NAME``).

The backbone is chosen by name (`picinspector.models.multitask.backbones`): ``efficientnet-lite0``
/ ``-lite1`` / ``-lite2`` (pretrained weights from their registry packages) or a DINOv2 (``vit-s14``,
a folder, a Hub id, ``random:vit-s14``). The loop, heads, losses, metrics, checkpoints and resume
are the same for all; what differs (loading, pooling, which blocks ``partial`` unfreezes, input
normalisation) is the family's entry.

One run folder holds everything::

    RUN_DIR/run.json             options, dataset, split sizes, backbone source (a rerun must match)
    RUN_DIR/split.json           the training and validation image paths
    RUN_DIR/config.json          } the best model so far (by validation SRCC of quality): what
    RUN_DIR/model.safetensors    } ``--engine dinov2 --model RUN_DIR`` serves (torch)
    RUN_DIR/model.onnx           EfficientNet-Lite runs: the same network as one ONNX graph, written
                                 when the run ends: what ``--engine effnet --model RUN_DIR`` serves
    RUN_DIR/metrics.csv, .json   one row per epoch: losses, per-score SRCC/PLCC, scene mAP, time
    RUN_DIR/checkpoint/          the last epoch: trainable weights, optimiser state, counters
    RUN_DIR/features.safetensors frozen mode only: pooled backbone features of every image
    RUN_DIR/bad_images.txt       images that could not be read (skipped, with the reason)

Running the same command again resumes after the last finished epoch (or, in frozen mode, in the
middle of feature extraction). Nothing is pickled: tensors go to safetensors, the rest to JSON.

Training modes (`MODES`): ``frozen`` trains the heads on cached features of a frozen backbone (the
linear-probe setting; minutes on a CPU), ``partial`` also trains the last ``unfreeze_last`` blocks,
``full`` fine-tunes everything; the backbone gets its own, lower learning rate. Modules with nothing
to train stay in eval mode while training (frozen batch-norm statistics, no dropout).

Loss: smooth-L1 on the 0-1 scores (only where the dataset has the label) plus ``plcc_weight`` x
(1 - PLCC) per score within each batch (a correlation term, as in Li et al.'s norm-in-norm loss,
which rewards getting the ranking right rather than the scale), plus ``scene_weight`` x binary
cross-entropy on the multi-label scenes.

References
----------
D. Li, T. Jiang, M. Jiang, "Norm-in-Norm Loss with Faster Convergence and Better Performance for
Image Quality Assessment", ACM MM 2020, arXiv:2008.03889.
Y. Fang et al., "Perceptual Quality Assessment of Smartphone Photography", CVPR 2020.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..datasets import Sample
from ..errors import PicInspectorError
from ..io import load_photo
from ..models._device import pick_device
from ..models.multitask._config import (EXIF_FEATURES, ONNX_FILE, WEIGHTS_FILE, HeadConfig, ModelConfig, Preprocess,
                                        exif_vector)
from ..models.multitask._torch import MultiTaskNet, describe_backbone, save_model
from ..models.multitask.backbones import family_of
from ..report import SCORE_NAMES, json_safe
from ..scene import SCENES
from .metrics import mean_average_precision, plcc, srcc, top1_any_hit

RUN_FILE, SPLIT_FILE, METRICS_CSV, METRICS_JSON = "run.json", "split.json", "metrics.csv", "metrics.json"
CHECKPOINT_DIR, FEATURES_FILE, BAD_FILE = "checkpoint", "features.safetensors", "bad_images.txt"

#: Options that must agree for a rerun to resume a run folder (``epochs`` and ``patience`` may grow).
_RESUME_KEYS = ("backbone", "mode", "unfreeze_last", "short_side", "crops", "head_hidden", "dropout", "exif",
                "batch_size", "lr", "backbone_lr", "weight_decay", "plcc_weight", "scene_weight", "val_fraction",
                "seed", "bf16", "pooling", "cache_prefix", "prefix_mirror")


@dataclass
class TrainOptions:
    """Options of a training run (all recorded in ``run.json``).

    ``backbone`` names the network and so its family (`~picinspector.models.multitask.backbones`);
    ``pooling`` how its output feeds the heads (None: the family's default); ``cache_inputs`` keeps
    every photo resized to ``short_side`` in memory (float16) after its first read, so that later
    epochs decode nothing (about 3 x 2 x short_side^2 bytes per photo: 1.5 GB for 5,000 at 224).
    ``cache_prefix`` (``partial`` mode, EfficientNet-Lite): the frozen blocks run once per photo and
    view (each test crop, and its mirror image for training), their output is kept in memory
    (float16) and every epoch trains only the unfrozen blocks on it: several times faster on a CPU,
    at the price of augmentation limited to those views (about 2 x 2 x 112 x (short_side/16)^2 bytes
    per training photo with Lite0's last 6 blocks unfrozen: 0.45 GB for 5,000 at 224);
    ``prefix_mirror`` False leaves the mirror images out (half the extraction, no augmentation).
    """

    backbone: str = "vit-s14"
    mode: str = "frozen"
    unfreeze_last: int = 4
    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-3
    backbone_lr: float = 2e-5
    weight_decay: float = 0.05
    warmup_fraction: float = 0.05
    short_side: int = 448
    crops: int = 3
    head_hidden: int = 256
    dropout: float = 0.1
    exif: bool = False
    plcc_weight: float = 0.5
    scene_weight: float = 0.5
    val_fraction: float = 0.2
    seed: int = 0
    patience: int = 5
    device: str = "auto"
    bf16: bool = False
    workers: int = 0
    max_steps_per_epoch: int | None = None
    pooling: str | None = None
    cache_inputs: bool = False
    cache_prefix: bool = False
    prefix_mirror: bool = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown training mode {self.mode!r}; choose from {', '.join(MODES)}")
        for name in ("epochs", "batch_size", "crops", "short_side", "head_hidden", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be between 0 and 1, got {self.val_fraction!r}")
        if self.cache_prefix and self.mode != "partial":
            raise ValueError("cache_prefix applies to mode partial (the frozen blocks are cached)")


# --------------------------------------------------------------------------------------------------
# Which parameters train


def _freeze_all(model: MultiTaskNet, opts: TrainOptions) -> None:
    model.backbone.requires_grad_(False)


def _unfreeze_last(model: MultiTaskNet, opts: TrainOptions) -> None:
    """The last ``unfreeze_last`` of the family's blocks (EfficientNet-Lite: stem, MBConv blocks, head
    convolution; DINOv2: encoder layers, plus its final layer norm)."""
    model.backbone.requires_grad_(False)
    blocks = model.blocks()
    if opts.unfreeze_last > len(blocks):
        raise ValueError(f"--unfreeze-last {opts.unfreeze_last}: this backbone has {len(blocks)} blocks")
    if opts.unfreeze_last:
        for block in blocks[len(blocks) - opts.unfreeze_last:]:
            block.requires_grad_(True)
        for module in model.family.also_partial(model.backbone):
            module.requires_grad_(True)


def _unfreeze_all(model: MultiTaskNet, opts: TrainOptions) -> None:
    model.backbone.requires_grad_(True)


#: Training modes: name -> function that sets ``requires_grad`` on the backbone (heads always train).
MODES: dict[str, Callable[[MultiTaskNet, TrainOptions], None]] = {
    "frozen": _freeze_all, "partial": _unfreeze_last, "full": _unfreeze_all,
}


def train_mode(model: MultiTaskNet) -> None:
    """``model.train()``, except the modules with nothing to train, which stay in eval mode (a frozen
    block keeps its batch-norm statistics and runs no dropout)."""
    model.train()
    for module in model.backbone.modules():
        params = list(module.parameters(recurse=True))
        if params and not any(p.requires_grad for p in params):
            module.eval()


# --------------------------------------------------------------------------------------------------
# Data


@dataclass
class Targets:
    """Labels of a list of samples as arrays: scores 0-1 with a mask, multi-hot scenes with a mask."""

    scores: np.ndarray       # (N, 6) float32
    score_mask: np.ndarray   # (N, 6) bool
    scenes: np.ndarray       # (N, 9) float32
    scene_mask: np.ndarray   # (N,) bool
    exif: np.ndarray         # (N, EXIF_FEATURES) float32

    @classmethod
    def of(cls, samples: Sequence[Sample]) -> "Targets":
        n = len(samples)
        scores = np.zeros((n, len(SCORE_NAMES)), np.float32)
        mask = np.zeros_like(scores, dtype=bool)
        scenes = np.zeros((n, len(SCENES)), np.float32)
        for i, s in enumerate(samples):
            values = {"quality": s.mos01, **{k: v / 100.0 for k, v in s.attributes.items()}}
            for j, name in enumerate(SCORE_NAMES):
                if values.get(name) is not None:
                    scores[i, j], mask[i, j] = values[name], True
            for label in s.scenes:
                if label in SCENES:
                    scenes[i, SCENES.index(label)] = 1.0
        return cls(scores, mask, scenes, scenes.any(axis=1), np.stack([exif_vector(s.exif) for s in samples])
                   if samples else np.zeros((0, EXIF_FEATURES), np.float32))

    def subset(self, idx: Sequence[int]) -> "Targets":
        idx = np.asarray(idx, dtype=int)
        return Targets(*(getattr(self, k)[idx] for k in ("scores", "score_mask", "scenes", "scene_mask", "exif")))

    def batch(self, idx: Sequence[int], device: torch.device) -> dict[str, torch.Tensor]:
        idx = np.asarray(idx)
        return {k: torch.from_numpy(getattr(self, k)[idx]).to(device)
                for k in ("scores", "score_mask", "scenes", "scene_mask", "exif")}


def split_samples(samples: Sequence[Sample], val_fraction: float, seed: int,
                  val_names: set[str] | None = None) -> tuple[list[Sample], list[Sample]]:
    """Training and validation samples: a seeded random ``val_fraction`` (at least one image), or the
    samples whose path or file name is in ``val_names``."""
    if val_names is not None:
        val = [s for s in samples if s.path in val_names or os.path.basename(s.path) in val_names]
        if not val:
            raise ValueError("none of the validation images of the split file is in the dataset")
        keep = {id(s) for s in val}
        return [s for s in samples if id(s) not in keep], val
    n_val = max(1, int(round(len(samples) * val_fraction)))
    if len(samples) - n_val < 1:
        raise ValueError(f"{len(samples)} images are too few to hold out {val_fraction:.0%} for validation")
    order = np.random.default_rng(seed).permutation(len(samples))
    val_idx = set(order[:n_val].tolist())
    return ([s for i, s in enumerate(samples) if i not in val_idx], [s for i, s in enumerate(samples) if i in val_idx])


def read_split_file(path: str | os.PathLike[str]) -> set[str]:
    """Validation image names from a split file: JSON ``{"val": [...]}`` (or ``"test"``), or a text/CSV
    file with one image path or name per line (first column)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        data = json.loads(text)
        names = data.get("val", data.get("test")) if isinstance(data, dict) else data
        if not isinstance(names, list):
            raise ValueError(f"{path}: expected {{\"val\": [image, ...]}} or a JSON list of images")
        return {str(n) for n in names}
    rows = [r[0].strip() for r in csv.reader(text.splitlines()) if r and r[0].strip()]
    return {r for r in rows if r.lower() not in ("image", "path", "image name", "filename")}


class _Images(torch.utils.data.Dataset):
    """Photos read with the product's own loader, as a training view or as the test views."""

    def __init__(self, samples: Sequence[Sample], pre: Preprocess, train: bool, seed: int,
                 cache: dict[str, np.ndarray] | None = None) -> None:
        self.samples, self.pre, self.train, self.seed, self.epoch = list(samples), pre, train, seed, 0
        self.cache = cache

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[int, np.ndarray | None, str | None]:
        try:
            rgb = _resized(self.samples[i].path, self.pre, self.cache)
        except PicInspectorError as exc:
            return i, None, str(exc)
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, i])
            return i, self.pre.train_view(rgb, rng), None
        return i, self.pre.test_views(rgb, distinct=True), None


def _resized(path: str, pre: Preprocess, cache: dict[str, np.ndarray] | None) -> np.ndarray:
    """The photo's working image resized to the shorter side (from ``cache`` when it is there, float16)."""
    if cache is not None and path in cache:
        return cache[path].astype(np.float32)
    img = pre.resized(load_photo(path).rgb)
    if cache is not None:  # every read gives the cached value, so a resumed run sees what it would have seen
        cache[path] = img.astype(np.float16)
        return cache[path].astype(np.float32)
    return img


def _collate(items: list[tuple[int, np.ndarray | None, str | None]]) -> list[tuple[int, np.ndarray | None, str | None]]:
    return items


# --------------------------------------------------------------------------------------------------
# Loss and metrics


def _batch_plcc_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over score columns with at least 4 labelled rows of (1 - PLCC) / 2 (0 = perfect)."""
    terms = []
    for j in range(pred.shape[1]):
        m = mask[:, j]
        if int(m.sum()) < 4:
            continue
        p, t = pred[m, j], target[m, j]
        p, t = p - p.mean(), t - t.mean()
        r = (p * t).sum() / (p.norm() * t.norm() + 1e-8)
        terms.append((1.0 - r) / 2.0)
    return torch.stack(terms).mean() if terms else pred.new_zeros(())


def multitask_loss(out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor],
                   opts: TrainOptions) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted training loss and its parts (see the module docstring)."""
    pred = out["scores"].float()
    target, mask = batch["scores"], batch["score_mask"]
    score = F.smooth_l1_loss(pred[mask], target[mask], beta=0.1) if mask.any() else pred.sum() * 0.0
    rank = _batch_plcc_loss(pred, target, mask)
    logits = out["scene_logits"].float()
    has_scene = batch["scene_mask"]
    scene = (F.binary_cross_entropy_with_logits(logits[has_scene], batch["scenes"][has_scene])
             if has_scene.any() else logits.sum() * 0.0)
    total = score + opts.plcc_weight * rank + opts.scene_weight * scene
    return total, {"score": score.item(), "plcc": rank.item(), "scene": scene.item()}


def validation_metrics(scores: np.ndarray, probs: np.ndarray, targets: Targets) -> dict[str, Any]:
    """SRCC and PLCC per labelled score, scene top-1-any-hit and mAP (the scores and targets on 0-1)."""
    out: dict[str, Any] = {}
    for j, name in enumerate(SCORE_NAMES):
        m = targets.score_mask[:, j]
        if m.sum() >= 3:
            out[f"{name}_srcc"] = srcc(scores[m, j], targets.scores[m, j])
            out[f"{name}_plcc"] = plcc(scores[m, j], targets.scores[m, j])
    m = targets.scene_mask
    if m.any():
        labels = [[SCENES[k] for k in np.flatnonzero(row)] for row in targets.scenes[m]]
        out["scene_top1"] = top1_any_hit(probs[m], labels, SCENES)
        out["scene_map"] = mean_average_precision(probs[m], labels, SCENES)
    return out


# --------------------------------------------------------------------------------------------------
# The run folder


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)),
                   encoding="utf-8")
    os.replace(tmp, path)


def _lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 5 % (a function of the step, so resuming needs no state)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress))


def _save_checkpoint(run: Path, model: MultiTaskNet, optim: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Trainable weights, every buffer (batch-norm statistics), optimiser tensors in safetensors,
    counters and hyper-parameters in JSON."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": p.detach().cpu().contiguous() for k, p in model.named_parameters() if p.requires_grad}
    tensors.update({f"buffer.{k}": b.detach().cpu().contiguous() for k, b in model.named_buffers()})
    tensors["rng.torch"] = torch.get_rng_state()  # dropout: a resumed run continues the same random stream
    osd = optim.state_dict()
    for pid, pstate in osd["state"].items():
        for key, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{key}"] = value.detach().cpu().contiguous().reshape(value.shape)
    tmp = run / (CHECKPOINT_DIR + ".tmp")
    tmp.mkdir(exist_ok=True)
    save_file(tensors, str(tmp / "state.safetensors"))
    _write_json(tmp / "state.json", {**state, "param_groups": osd["param_groups"]})
    final = run / CHECKPOINT_DIR
    if final.exists():
        old = run / (CHECKPOINT_DIR + ".old")
        os.replace(final, old)
        os.replace(tmp, final)
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
    else:
        os.replace(tmp, final)


def _load_checkpoint(run: Path, model: MultiTaskNet, optim: torch.optim.Optimizer) -> dict[str, Any] | None:
    from safetensors.torch import load_file

    folder = run / CHECKPOINT_DIR
    if not (folder / "state.json").is_file() or not (folder / "state.safetensors").is_file():
        return None
    state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    tensors = load_file(str(folder / "state.safetensors"))
    params = dict(model.named_parameters())
    buffers = dict(model.named_buffers())
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors.pop("rng.torch"))
    with torch.no_grad():
        for key, value in tensors.items():
            if key.startswith("model."):
                params[key[len("model."):]].copy_(value)
            elif key.startswith("buffer."):
                buffers[key[len("buffer."):]].copy_(value)
    osd = {"state": {}, "param_groups": state.pop("param_groups")}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            osd["state"].setdefault(int(pid), {})[name] = value
    optim.load_state_dict(osd)
    return state


def _check_resume(run: Path, record: dict[str, Any]) -> dict[str, Any] | None:
    """The previous run record when ``run`` holds a compatible run, None for a new folder."""
    path = run / RUN_FILE
    if not path.is_file():
        return None
    old = json.loads(path.read_text(encoding="utf-8"))
    defaults = asdict(TrainOptions())  # options older runs did not record had these values
    diff = [k for k in _RESUME_KEYS if old["options"].get(k, defaults[k]) != record["options"].get(k, defaults[k])]
    if old.get("dataset", {}).get("root") != record["dataset"]["root"]:
        diff.append("dataset")
    if diff:
        raise ValueError(f"{run} holds a run with other settings ({', '.join(diff)}); use another -o folder, or "
                         f"--restart to discard it")
    return old


# --------------------------------------------------------------------------------------------------
# Features of a frozen backbone


def _extract_features(model: MultiTaskNet, samples: Sequence[Sample], pre: Preprocess, run: Path,
                      device: torch.device, opts: TrainOptions, progress: Any, bad: dict[str, str]) -> dict[str, np.ndarray]:
    """Pooled features (test views averaged) of every sample, cached in ``features.safetensors`` and
    saved every 64 images so that an interrupted extraction resumes."""
    from safetensors.numpy import load_file, save_file

    path = run / FEATURES_FILE
    have: dict[str, np.ndarray] = {}
    if path.is_file():
        stored = load_file(str(path))
        names = json.loads((run / (FEATURES_FILE + ".json")).read_text(encoding="utf-8"))
        have = {n: stored["features"][i] for i, n in enumerate(names)}
    todo = [i for i, s in enumerate(samples) if s.path not in have and s.path not in bad]

    def flush() -> None:
        names = list(have)
        if names:
            save_file({"features": np.stack([have[n] for n in names]).astype(np.float32)}, str(path) + ".tmp")
            os.replace(str(path) + ".tmp", path)
            _write_json(run / (FEATURES_FILE + ".json"), names)

    loader = torch.utils.data.DataLoader(_Images([samples[i] for i in todo], pre, False, opts.seed), batch_size=1,
                                         collate_fn=_collate, num_workers=opts.workers)
    task = progress.add_task("backbone features", total=len(todo))
    model.eval()
    # a family that runs in two parts runs whole as a "prefix" of every block: on onnxruntime on a CPU
    whole = prefix_runner(model, len(model.blocks()), device, opts.bf16, pre.short_side)[0] \
        if todo and model._pooling.prefix is not None else None
    with torch.inference_mode():
        for n, items in enumerate(loader, start=1):
            for j, views, error in items:
                sample = samples[todo[j]]
                if views is None:
                    bad[sample.path] = error or "unreadable"
                elif whole is not None:
                    have[sample.path] = whole(views)[0].mean(0).astype(np.float32)
                else:
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=opts.bf16):
                        feats = model.pooled(torch.from_numpy(views).to(device))
                    have[sample.path] = feats.float().mean(0).cpu().numpy()
                progress.advance(task)
            if n % 64 == 0:
                flush()
    flush()
    return have


class _PrefixModule(torch.nn.Module):
    def __init__(self, model: MultiTaskNet, k: int) -> None:
        super().__init__()
        self.model, self.k = model, k

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.prefix(x, self.k)


def prefix_runner(model: MultiTaskNet, k: int, device: torch.device, bf16: bool = False,
                  side: int = 224) -> tuple[Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], str]:
    """A function running the first ``k`` blocks on a normalised batch (N, 3, H, W) -> (fixed, maps)
    as NumPy arrays, and what runs them: on a CPU, onnxruntime on the blocks exported to ONNX (the
    frozen blocks need no gradient, and onnxruntime runs EfficientNet-Lite several times faster than
    eager PyTorch there; with torch's thread count); elsewhere, or without onnxruntime, torch."""
    import importlib.util

    model.eval()
    if device.type == "cpu" and not bf16 and importlib.util.find_spec("onnxruntime") is not None:
        import io
        import warnings

        import onnxruntime as ort

        buf = io.BytesIO()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(_PrefixModule(model, k).eval(), (torch.zeros(1, 3, side, side),), buf, input_names=["x"],
                              output_names=["fixed", "h"],
                              dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}, "fixed": {0: "n"},
                                            "h": {0: "n", 2: "y", 3: "z"}},
                              opset_version=18, do_constant_folding=True, dynamo=False)
        so = ort.SessionOptions()
        so.intra_op_num_threads = max(1, torch.get_num_threads())
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        sess = ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])

        def run_ort(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            fixed, h = sess.run(None, {"x": np.ascontiguousarray(x, dtype=np.float32)})
            return fixed, h

        return run_ort, "onnxruntime"

    def run_torch(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            fixed, h = model.prefix(torch.from_numpy(np.ascontiguousarray(x)).to(device), k)
        return fixed.float().cpu().numpy(), h.float().cpu().numpy()

    return run_torch, "torch"


def _extract_prefix(model: MultiTaskNet, samples: Sequence[Sample], train_paths: set[str], pre: Preprocess, k: int,
                    device: torch.device, opts: TrainOptions, progress: Any, bad: dict[str, str],
                    log: Callable[[str], None] = print, batch: int = 16) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``cache_prefix``: the first ``k`` (frozen) blocks on every view of every photo, kept in memory:
    path -> (fixed (V, D) float32, maps (V, C, H, W) float16). Views: the distinct test crops, and for
    training photos (``prefix_mirror``) their mirror images too. Photos go through in groups of
    ``batch`` of the same view shape."""
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    run, engine = prefix_runner(model, k, device, opts.bf16, pre.short_side)
    log(f"caching the output of the frozen blocks 1-{k} of {len(samples)} photos ({engine})")
    task = progress.add_task(f"frozen blocks 1-{k}", total=len(samples))
    pending: list[tuple[str, np.ndarray]] = []

    def flush() -> None:
        groups: dict[tuple[int, ...], list[tuple[str, np.ndarray]]] = {}
        for path, views in pending:
            groups.setdefault(views.shape, []).append((path, views))
        for shape, items in groups.items():
            fixed, h = run(np.concatenate([v for _, v in items]))
            n = shape[0]
            for j, (path, _) in enumerate(items):
                out[path] = (fixed[j * n:(j + 1) * n].astype(np.float32), h[j * n:(j + 1) * n].astype(np.float16))
        progress.advance(task, len(pending))
        pending.clear()

    for s in samples:
        try:
            views = pre.test_views(load_photo(s.path).rgb, distinct=True)
        except PicInspectorError as exc:
            bad[s.path] = str(exc)
            progress.advance(task)
            continue
        if s.path in train_paths and opts.prefix_mirror:
            views = np.concatenate([views, views[:, :, :, ::-1]])
        pending.append((s.path, np.ascontiguousarray(views)))
        if len(pending) >= batch:
            flush()
    flush()
    return out


# --------------------------------------------------------------------------------------------------
# Training


@dataclass
class TrainResult:
    """What `train_multitask` did."""

    run_dir: Path
    epochs_run: int
    best_epoch: int | None
    best: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    resumed_from: int = 0
    stopped_early: bool = False
    bad_images: dict[str, str] = field(default_factory=dict)


def train_multitask(samples: Sequence[Sample], run_dir: str | os.PathLike[str], opts: TrainOptions, *,
                    dataset: dict[str, Any] | None = None, val_names: set[str] | None = None,
                    progress: bool = True, log: Callable[[str], None] = print, restart: bool = False) -> TrainResult:
    """Train (or resume training) the multi-task model on labelled samples.

    Parameters
    ----------
    samples : sequence of Sample
        From `picinspector.datasets.load_dataset`; samples without a MOS are dropped.
    run_dir : str or path-like
        The run folder (see the module docstring); created if needed.
    opts : TrainOptions
    dataset : dict, optional
        Recorded in ``run.json`` and the model config (``root``, ``format``, ``citation``).
    val_names : set of str, optional
        Validation images (paths or file names) from a split file, instead of a seeded random split.
    progress : bool
        Rich progress bars on stderr.
    log : callable
        Receives one line per event (epoch results, resuming, early stop).
    restart : bool
        Discard a previous run in ``run_dir`` instead of resuming it.

    Returns
    -------
    TrainResult

    Raises
    ------
    ValueError
        Bad options, too few images, or ``run_dir`` holding an incompatible run.
    picinspector.models.WeightsNotFound
        The backbone cannot be found (the message says how to get it).
    """
    from ..batch import progress_bar

    run = Path(run_dir)
    samples = [s for s in samples if s.mos01 is not None]
    if len(samples) < 2:
        raise ValueError(f"training needs at least 2 images with a MOS, got {len(samples)}")
    family = family_of(opts.backbone)
    pre = family.preprocess(opts.short_side, opts.crops)  # a bad --input-size fails before anything is touched
    family.pooling(opts.pooling)
    if restart and run.is_dir():
        for name in (RUN_FILE, SPLIT_FILE, METRICS_CSV, METRICS_JSON, FEATURES_FILE, FEATURES_FILE + ".json",
                     BAD_FILE, "config.json", WEIGHTS_FILE, ONNX_FILE):
            (run / name).unlink(missing_ok=True)
        if (run / CHECKPOINT_DIR).is_dir():
            for f in (run / CHECKPOINT_DIR).iterdir():
                f.unlink()
            (run / CHECKPOINT_DIR).rmdir()
    run.mkdir(parents=True, exist_ok=True)
    record = {"engine": family.name, "options": asdict(opts), "dataset": {"root": None, **(dataset or {})}}
    previous = _check_resume(run, record)

    if previous is not None and (run / SPLIT_FILE).is_file():
        split = json.loads((run / SPLIT_FILE).read_text(encoding="utf-8"))
        by_path = {s.path: s for s in samples}
        train = [by_path[p] for p in split["train"] if p in by_path]
        val = [by_path[p] for p in split["val"] if p in by_path]
    else:
        train, val = split_samples(samples, opts.val_fraction, opts.seed, val_names)
        _write_json(run / SPLIT_FILE, {"train": [s.path for s in train], "val": [s.path for s in val]})
    record["split"] = {"train": len(train), "val": len(val)}

    torch.manual_seed(opts.seed)
    device = pick_device(opts.device)
    backbone, source = family.load(opts.backbone)
    _write_json(run / RUN_FILE, record)  # only now: a run whose backbone is missing leaves no record behind
    heads = HeadConfig(in_features=family.pooling(opts.pooling).width(backbone), hidden=opts.head_hidden,
                       dropout=opts.dropout, exif=opts.exif, pooling=opts.pooling or family.default_pooling,
                       norm=family.head_norm)
    model = MultiTaskNet(backbone, heads, family).to(device)
    MODES[opts.mode](model, opts)
    backbone_config = describe_backbone(model)
    trained_scores = tuple(n for j, n in enumerate(SCORE_NAMES) if Targets.of(train).score_mask[:, j].any())
    trained_scenes = bool(Targets.of(train).scene_mask.any())
    n_train = sum(p.numel() for p in model.backbone.parameters() if p.requires_grad)
    log(f"backbone {source}; {len(train)} training, {len(val)} validation images; mode {opts.mode} "
        f"({n_train:,} backbone parameters train); device {device}; learns {', '.join(trained_scores)}"
        f"{' and scenes' if trained_scenes else ''}")

    head_params = [p for n, p in model.named_parameters() if not n.startswith("backbone.")]
    backbone_params = [p for p in model.backbone.parameters() if p.requires_grad]
    groups = [{"params": head_params, "lr": opts.lr, "base_lr": opts.lr}]
    if backbone_params:
        groups.append({"params": backbone_params, "lr": opts.backbone_lr, "base_lr": opts.backbone_lr})
    optim = torch.optim.AdamW(groups, weight_decay=opts.weight_decay)

    bad: dict[str, str] = {}
    state = _load_checkpoint(run, model, optim) if previous is not None else None
    start_epoch = int(state["epoch"]) if state else 0
    best = dict(state["best"]) if state else {}
    best_epoch = state.get("best_epoch") if state else None
    stale = int(state.get("stale", 0)) if state else 0
    step = int(state.get("step", 0)) if state else 0
    history: list[dict[str, Any]] = json.loads((run / METRICS_JSON).read_text()) if state and \
        (run / METRICS_JSON).is_file() else []
    history = [h for h in history if h["epoch"] <= start_epoch]
    if state:
        log(f"resuming {run} after epoch {start_epoch} (best quality SRCC {best.get('quality_srcc')}, epoch "
            f"{best_epoch})")

    train_t, val_t = Targets.of(train), Targets.of(val)
    frozen = opts.mode == "frozen"
    prefix_k = len(model.blocks()) - opts.unfreeze_last if opts.cache_prefix else None
    steps_per_epoch = math.ceil(len(train) / opts.batch_size)
    if opts.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, opts.max_steps_per_epoch)
    total_steps = steps_per_epoch * opts.epochs
    warmup = max(1, int(opts.warmup_fraction * total_steps))
    stopped = False
    saved = False
    cache: dict[str, np.ndarray] | None = {} if opts.cache_inputs and not frozen else None
    min_batch = 2 if heads.norm == "batch" else 1  # batch norm cannot train on one photo

    with progress_bar(progress, len(samples)) as bar:
        feats: dict[str, np.ndarray] = {}
        prefixes: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
        # extraction leaves the RNG alone (a DataLoader draws a seed from it), so that a resumed run
        # continues the random stream it saved after its last epoch
        with torch.random.fork_rng(devices=[]):
            if frozen:
                feats = _extract_features(model, list(train) + list(val), pre, run, device, opts, bar, bad)
            elif prefix_k is not None and start_epoch < opts.epochs and stale < opts.patience:
                prefixes = _extract_prefix(model, list(train) + list(val), {s.path for s in train}, pre, prefix_k,
                                           device, opts, bar, bad, log)
        if stale >= opts.patience and start_epoch < opts.epochs:
            log(f"early stopping had ended this run after epoch {start_epoch}; not training further")
            start_epoch = opts.epochs
        for epoch in range(start_epoch + 1, opts.epochs + 1):
            t0 = time.perf_counter()
            train_mode(model)
            losses: list[dict[str, float]] = []
            order = np.random.default_rng([opts.seed, epoch]).permutation(len(train))
            task = bar.add_task(f"epoch {epoch}/{opts.epochs}", total=steps_per_epoch * opts.batch_size)
            batches = [order[b * opts.batch_size:(b + 1) * opts.batch_size] for b in range(steps_per_epoch)]
            if min_batch > 1 and len(batches) > 1 and len(batches[-1]) < min_batch:
                batches[-2:] = [np.concatenate(batches[-2:])]
            for n_in, keep, x in _train_batches(train, batches, pre, opts, epoch, feats if frozen else None, bad,
                                                cache, prefixes):
                bar.advance(task, n_in)
                if len(keep) < min_batch:
                    continue
                batch = train_t.batch(keep, device)
                for g in optim.param_groups:
                    g["lr"] = g["base_lr"] * _lr_factor(step, total_steps, warmup)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=opts.bf16):
                    ex = batch["exif"] if opts.exif else None
                    if prefixes is not None:
                        feat = model.from_prefix(x[1].to(device).float(), x[0].to(device), prefix_k)
                        out = model.from_features(feat, ex)
                    else:
                        out = model.from_features(x.to(device), ex) if frozen else model(x.to(device), ex)
                loss, parts = multitask_loss(out, batch, opts)
                optim.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_([p for g in optim.param_groups for p in g["params"]], 5.0)
                optim.step()
                step += 1
                losses.append({"loss": loss.item(), **parts})
            bar.remove_task(task)
            scores, probs, val_loss = _validate(model, val, val_t, pre, feats if frozen else None, device, opts, bad,
                                                bar, cache, prefixes, prefix_k)
            done = ~np.isnan(scores[:, 0])
            metrics = json_safe(validation_metrics(scores[done], probs[done], val_t.subset(np.flatnonzero(done))))
            row = {"epoch": epoch, "train_loss": float(np.mean([x["loss"] for x in losses])) if losses else None,
                   **{f"train_{k}": float(np.mean([x[k] for x in losses])) for k in ("score", "plcc", "scene")
                      if losses},
                   "val_loss": val_loss, **metrics, "lr": optim.param_groups[0]["lr"],
                   "seconds": round(time.perf_counter() - t0, 2)}
            history.append(row)
            improved = _better(metrics, val_loss, best)
            if improved:
                best, best_epoch, stale = {**metrics, "val_loss": val_loss}, epoch, 0
                config = ModelConfig(backbone_source=source, backbone_config=backbone_config,
                                     preprocess=pre, heads=heads, trained_scores=trained_scores,
                                     trained_scenes=trained_scenes, metrics={"epoch": epoch, **metrics},
                                     training={**record["options"], "dataset": record["dataset"],
                                               "split": record["split"]}, family=family.name,
                                     backbone_name=opts.backbone)
                save_model(model, config, run)
                saved = True
            else:
                stale += 1
            _write_metrics(run, history)
            _save_checkpoint(run, model, optim, {"epoch": epoch, "step": step, "best": best, "best_epoch": best_epoch,
                                                 "stale": stale})
            log(_epoch_line(row, opts.epochs, improved))
            if stale >= opts.patience:
                log(f"early stop: validation SRCC has not improved for {stale} epochs (best: epoch {best_epoch})")
                stopped = True
                break
    if family.name == "effnet" and (run / WEIGHTS_FILE).is_file() and (saved or not (run / ONNX_FILE).is_file()):
        from ..models.multitask.export import export_run

        path = export_run(run)
        log(f"ONNX graph of the best model: {path} (serve it without torch: --engine effnet --model {run})")
    if bad:
        (run / BAD_FILE).write_text("".join(f"{p}\t{why}\n" for p, why in sorted(bad.items())), encoding="utf-8")
        log(f"{len(bad)} images could not be read and were skipped: see {run / BAD_FILE}")
    return TrainResult(run, len(history), best_epoch, best, history, start_epoch, stopped, bad)


def _train_batches(train: Sequence[Sample], batches: list[np.ndarray], pre: Preprocess, opts: TrainOptions,
                   epoch: int, feats: dict[str, np.ndarray] | None, bad: dict[str, str],
                   cache: dict[str, np.ndarray] | None = None,
                   prefixes: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
                   ) -> Iterator[tuple[int, list[int], Any]]:
    """(images asked for, indices kept, input) per batch: cached features in frozen mode; with
    ``prefixes`` one random cached view per photo as (fixed, maps); else one random training view per
    photo, read by ``opts.workers`` DataLoader processes."""
    if prefixes is not None:
        for idx in batches:
            keep = [int(i) for i in idx if train[int(i)].path in prefixes]
            picks = []
            for i in keep:
                fixed, h = prefixes[train[i].path]
                v = int(np.random.default_rng([opts.seed, epoch, i]).integers(len(h)))
                picks.append((fixed[v], h[v]))
            yield len(idx), keep, ((torch.from_numpy(np.stack([p[0] for p in picks])),
                                    torch.from_numpy(np.stack([p[1] for p in picks]))) if keep else None)
        return
    if feats is not None:
        for idx in batches:
            keep = [int(i) for i in idx if train[int(i)].path in feats]
            yield len(idx), keep, torch.from_numpy(np.stack([feats[train[i].path] for i in keep])) if keep else None
        return
    data = _Images(train, pre, True, opts.seed, cache)
    data.epoch = epoch
    loader = torch.utils.data.DataLoader(data, batch_sampler=[list(map(int, b)) for b in batches],
                                         collate_fn=_collate, num_workers=opts.workers)
    for items in loader:
        keep, views = [], []
        for i, view, error in items:
            if view is None:
                bad[train[i].path] = error or "unreadable"
            else:
                keep.append(i)
                views.append(view)
        yield len(items), keep, torch.from_numpy(np.stack(views)) if views else None


def _validate(model: MultiTaskNet, val: Sequence[Sample], targets: Targets, pre: Preprocess,
              feats: dict[str, np.ndarray] | None, device: torch.device, opts: TrainOptions, bad: dict[str, str],
              bar: Any, cache: dict[str, np.ndarray] | None = None,
              prefixes: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
              prefix_k: int | None = None) -> tuple[np.ndarray, np.ndarray, float | None]:
    """Predictions for the validation samples (test views averaged; NaN rows for unreadable images)."""
    model.eval()
    scores = np.full((len(val), len(SCORE_NAMES)), np.nan, np.float32)
    probs = np.full((len(val), len(SCENES)), np.nan, np.float32)
    outs: list[dict[str, torch.Tensor]] = []
    rows: list[int] = []
    task = bar.add_task("validation", total=len(val))
    with torch.inference_mode():
        for i, s in enumerate(val):
            ex = torch.from_numpy(targets.exif[i:i + 1]).to(device) if opts.exif else None
            if feats is not None:
                if s.path not in feats:
                    bar.advance(task)
                    continue
                out = model.from_features(torch.from_numpy(feats[s.path][None]).to(device), ex)
            elif prefixes is not None:
                if s.path not in prefixes:
                    bar.advance(task)
                    continue
                fixed, h = prefixes[s.path]
                feat = model.from_prefix(torch.from_numpy(h).to(device).float(), torch.from_numpy(fixed).to(device),
                                         prefix_k)
                out = model.from_features(feat, ex.expand(len(h), -1) if ex is not None else None)
                out = {k: v.float().mean(0, keepdim=True) for k, v in out.items()}
            else:
                try:
                    views = pre.test_views(_resized(s.path, pre, cache), distinct=True)
                except PicInspectorError as exc:
                    bad[s.path] = str(exc)
                    bar.advance(task)
                    continue
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=opts.bf16):
                    out = model(torch.from_numpy(views).to(device),
                                ex.expand(len(views), -1) if ex is not None else None)
                out = {k: v.float().mean(0, keepdim=True) for k, v in out.items()}
            outs.append({k: v.float() for k, v in out.items()})
            rows.append(i)
            scores[i] = out["scores"][0].float().cpu().numpy()
            probs[i] = torch.sigmoid(out["scene_logits"][0].float()).cpu().numpy()
            bar.advance(task)
    bar.remove_task(task)
    if not rows:
        return scores, probs, None
    joined = {k: torch.cat([o[k] for o in outs]) for k in outs[0]}
    loss, _ = multitask_loss(joined, targets.batch(rows, device), opts)
    return scores, probs, float(loss)


def _better(metrics: dict[str, Any], val_loss: float | None, best: dict[str, Any]) -> bool:
    """Whether an epoch beats the best so far: higher validation SRCC of quality; on a tie (small
    validation sets), lower validation loss."""
    if not best:
        return True
    key, old = metrics.get("quality_srcc"), best.get("quality_srcc")
    key, old = (float("nan") if v is None else v for v in (key, old))
    if not math.isfinite(key):
        return False
    if not math.isfinite(old) or key > old + 1e-9:
        return True
    old_loss = best.get("val_loss")
    return abs(key - old) <= 1e-9 and val_loss is not None and old_loss is not None and val_loss < old_loss


def _write_metrics(run: Path, history: list[dict[str, Any]]) -> None:
    _write_json(run / METRICS_JSON, history)
    columns = list(dict.fromkeys(k for row in history for k in row))
    tmp = run / (METRICS_CSV + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, run / METRICS_CSV)


def _epoch_line(row: dict[str, Any], epochs: int, improved: bool) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}"]
    if row.get("train_loss") is not None:
        parts.append(f"train loss {row['train_loss']:.4f}")
    if row.get("val_loss") is not None:
        parts.append(f"val loss {row['val_loss']:.4f}")
    for key in ("quality_srcc", "quality_plcc", "scene_map"):
        if row.get(key) is not None:
            parts.append(f"{key.replace('_', ' ')} {row[key]:.3f}")
    parts.append(f"{row['seconds']:.1f} s")
    return ", ".join(parts) + (" (best so far: saved)" if improved else "")


#: The name DINOv2-only versions had (``picinspector.training.dinov2.train_dinov2``).
train_dinov2 = train_multitask
