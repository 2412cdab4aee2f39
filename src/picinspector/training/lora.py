"""LoRA fine-tuning of a SmolVLM (Idefics3) feedback writer, its evaluation, and merging for deployment.

``picinspector train --engine vlm`` calls `train_vlm`, ``picinspector eval --engine vlm`` calls
`evaluate_vlm`; `merge_vlm` folds an adapter into its base for a plain model folder.

What is trained
    LoRA adapters (peft) on the *language model's* attention projections q/k/v/o (optionally also
    the MLP gate/up/down projections). The vision tower, the connector, the embeddings and every
    base weight stay frozen.
What is learned from
    Each sample is the chat prompt ``User:<image>INSTRUCTION<end_of_utterance>\\nAssistant:`` (the
    sample's own prompt when it has one, plus the measured facts with ``grounded``) followed by the
    reference description and ``<end_of_utterance>``. The loss covers the answer tokens only: every
    prompt and image position has label -100 (`encode_example`).
What is written
    ``OUT_DIR/`` the final adapter (``adapter_model.safetensors``, ``adapter_config.json``), the
    processor, ``picinspector_vlm.json`` (base, instruction, image size, generation settings, LoRA
    and training options, metrics), ``metrics.csv`` / ``metrics.json`` (one row per epoch);
    ``OUT_DIR/checkpoints/step-NNNNNN/`` after every epoch (and when stopped by ``max_steps`` or
    Ctrl-C): the adapter, ``optimizer.safetensors`` (AdamW moments and step counts) and
    ``trainer_state.json`` (epoch, position in the epoch, step, running loss, options). No pickle.
Resuming
    Running `train_vlm` again on the same ``out_dir`` continues from the newest checkpoint: the
    data order of an epoch depends only on the seed and the epoch, and dropout is re-seeded at every
    optimizer step, so an interrupted and resumed run reaches the same weights as one that ran
    straight through.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import PicInspectorError
from ..models import vlm as _vlm

#: LoRA target sets: name -> projection names inside the language model's decoder layers.
TARGETS: dict[str, tuple[str, ...]] = {
    "attention": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "attention+mlp": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
}

#: Label of positions the loss ignores.
IGNORE_INDEX = -100

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.safetensors"
METRICS_CSV = "metrics.csv"
METRICS_JSON = "metrics.json"
BAD_FILE = "bad_images.txt"

#: Options that must match for a run to be resumed.
_RESUME_KEYS = ("base", "rank", "alpha", "dropout", "target", "lr", "batch_size", "grad_accum", "image_size",
                "seed", "grounded", "n_samples")


def target_modules(target: str) -> str:
    """The peft ``target_modules`` regex for a `TARGETS` entry: language-model layers only.

    The vision tower also has ``q_proj``/``k_proj``/``v_proj``; the regex anchors on
    ``text_model.layers.N`` so that they are never adapted.
    """
    if target not in TARGETS:
        raise ValueError(f"unknown LoRA target {target!r}; choose from {sorted(TARGETS)}")
    names = "|".join(TARGETS[target])
    return rf"(?:.*\.)?text_model\.layers\.\d+\.(?:self_attn|mlp)\.(?:{names})"


# --------------------------------------------------------------------------------------------------
# Examples


def encode_example(processor: Any, image: Any, instruction: str, answer: str, image_size: int) -> dict[str, Any]:
    """Token ids, labels and pixels for one training example.

    The prompt is encoded by the processor exactly as at inference (`picinspector.models.vlm.encode_prompt`);
    the answer, `` ANSWER<end_of_utterance>``, is tokenised on its own and appended, so the boundary
    between prompt and answer is exact.

    Returns
    -------
    dict
        ``input_ids``, ``attention_mask``, ``labels`` (1-D long tensors of equal length; labels are
        `IGNORE_INDEX` on every prompt position and equal to ``input_ids`` on the answer),
        ``pixel_values`` (tiles, 3, H, W) and ``pixel_attention_mask`` (tiles, H, W).
    """
    import torch

    if not answer or not answer.strip():
        raise ValueError("an empty answer cannot be trained on")
    prompt = _vlm.encode_prompt(processor, image, instruction, image_size)
    tokenizer = processor.tokenizer
    answer_ids = tokenizer(" " + answer.strip() + _vlm.end_token(tokenizer), add_special_tokens=False)["input_ids"]
    prompt_ids = prompt["input_ids"][0]
    answer_ids = torch.tensor(answer_ids, dtype=prompt_ids.dtype)
    input_ids = torch.cat([prompt_ids, answer_ids])
    labels = torch.cat([torch.full_like(prompt_ids, IGNORE_INDEX), answer_ids])
    out = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": labels,
           "pixel_values": prompt["pixel_values"][0]}
    if "pixel_attention_mask" in prompt:
        out["pixel_attention_mask"] = prompt["pixel_attention_mask"][0]
    return out


def collate(examples: Sequence[dict[str, Any]], pad_id: int) -> dict[str, Any]:
    """A right-padded batch: padding has attention 0 and label `IGNORE_INDEX`; images with fewer
    tiles are padded with all-zero tiles, which Idefics3 drops."""
    import torch

    errors = [e["error"] for e in examples if "error" in e]
    examples = [e for e in examples if "error" not in e]
    if not examples:
        return {"errors": errors}
    length = max(len(e["input_ids"]) for e in examples)
    tiles = max(e["pixel_values"].shape[0] for e in examples)
    batch: dict[str, Any] = {}
    for key, fill in (("input_ids", pad_id), ("attention_mask", 0), ("labels", IGNORE_INDEX)):
        rows = [torch.cat([e[key], torch.full((length - len(e[key]),), fill, dtype=e[key].dtype)]) for e in examples]
        batch[key] = torch.stack(rows)
    pixels = []
    masks = []
    for e in examples:
        pv = e["pixel_values"]
        pixels.append(torch.cat([pv, pv.new_zeros((tiles - pv.shape[0], *pv.shape[1:]))]))
        if "pixel_attention_mask" in e:
            pm = e["pixel_attention_mask"]
            masks.append(torch.cat([pm, pm.new_zeros((tiles - pm.shape[0], *pm.shape[1:]))]))
    batch["pixel_values"] = torch.stack(pixels)
    if len(masks) == len(examples):
        batch["pixel_attention_mask"] = torch.stack(masks)
    if errors:
        batch["errors"] = errors
    return batch


class Grounder:
    """Measured facts for a sample's prompt: the sample's own ``meta["grounding"]`` when it has one,
    else what the classic inspector measures on the image (cached per image)."""

    def __init__(self) -> None:
        self._inspector = None
        self._cache: dict[str, dict[str, Any]] = {}

    def __call__(self, sample: Any, photo: Any = None) -> dict[str, Any]:
        meta = getattr(sample, "meta", None) or {}
        if isinstance(meta.get("grounding"), Mapping):
            return dict(meta["grounding"])
        key = os.path.abspath(sample.image) if isinstance(sample.image, (str, os.PathLike)) else None
        if key is not None and key in self._cache:
            return self._cache[key]
        if self._inspector is None:
            from ..pipeline import Inspector

            self._inspector = Inspector(threads=1)
        report = self._inspector.analyze(photo if photo is not None else sample.image)
        grounding = _vlm.grounding_from(report.scores, report.scene, report.findings)
        if key is not None:
            self._cache[key] = grounding
        return grounding


#: Suffixes whose header Pillow reads by itself (cheap check before training).
_HEADER_CHECKED = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


def _check_images(samples: Sequence[Any]) -> dict[str, str]:
    """Missing or unidentifiable image files (path -> reason), found before minutes of model loading.

    Reading a file's header is cheap; a file that is cut short past its header is found when it is
    first decoded, and skipped then. FileNotFoundError when no image at all is usable (a wrong
    folder, most likely), naming a few.
    """
    from PIL import Image, UnidentifiedImageError

    bad: dict[str, str] = {}
    for s in samples:
        if not isinstance(s.image, (str, os.PathLike)):
            continue
        path = os.fspath(s.image)
        if not os.path.isfile(path):
            bad[path] = "does not exist"
            continue
        if os.path.splitext(path)[1].lower() not in _HEADER_CHECKED:
            continue  # RAW, HEIF and the like are left to the loader
        try:
            with Image.open(path) as im:
                im.verify()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            bad[path] = f"not a readable image ({type(exc).__name__}: {exc})"
    usable = sum(not isinstance(s.image, (str, os.PathLike)) or os.fspath(s.image) not in bad for s in samples)
    if not usable:
        shown = "; ".join(f"{p} ({why})" for p, why in list(bad.items())[:3])
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise FileNotFoundError(f"none of the {len(samples)} images is usable: {shown}{more}; check the image "
                                "paths in the captions file")
    return bad


def _instruction(sample: Any, default: str, grounding: Mapping[str, Any] | None) -> str:
    return _vlm.build_prompt(grounding, getattr(sample, "prompt", None) or default)


class _Examples:
    """The training examples as a map-style dataset (``len`` and ``[i]``) for a torch DataLoader:
    photo loading, grounding and the processor run in its worker processes."""

    def __init__(self, samples: Sequence[Any], processor: Any, instruction: str, image_size: int,
                 grounder: Grounder | None) -> None:
        self.samples, self.processor, self.instruction = samples, processor, instruction
        self.image_size, self.grounder = image_size, grounder

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.samples[index]
        try:
            image = _load_image(sample)
        except PicInspectorError as exc:  # skipped and reported by the training loop; the run goes on
            return {"error": (os.fspath(sample.image), str(exc))}
        grounding = self.grounder(sample, image) if self.grounder is not None else None
        return encode_example(self.processor, image, _instruction(sample, self.instruction, grounding),
                              sample.description, self.image_size)


def _load_image(sample: Any) -> Any:
    from ..io import load_photo

    image = sample.image
    return load_photo(image) if isinstance(image, (str, os.PathLike)) else image


# --------------------------------------------------------------------------------------------------
# Checkpoints (safetensors + JSON, no pickle)


def _save_optimizer(optimizer: Any, path: Path) -> dict[str, Any]:
    """Tensors of the optimizer state to safetensors; the rest (param groups, scalars) returned for JSON."""
    import torch
    from safetensors.torch import save_file

    state = optimizer.state_dict()
    tensors = {}
    scalars: dict[str, Any] = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"state.{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{name}"] = value
    save_file(tensors, str(path))
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in state["param_groups"]]
    return {"param_groups": groups, "scalars": scalars}


def _load_optimizer(optimizer: Any, path: Path, meta: Mapping[str, Any], device: Any) -> None:
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value if name == "step" else value.to(device)
    for key, value in meta.get("scalars", {}).items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def _checkpoint_dirs(out_dir: Path) -> list[Path]:
    """Complete checkpoints (with their state file), oldest first."""
    root = out_dir / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-") and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def _adapter_state(model: Any) -> dict[str, Any]:
    from peft import get_peft_model_state_dict

    return {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(model).items()}


@dataclass
class _Position:
    """Where training stands at an optimizer-step boundary."""

    epoch: int = 0            # 0-based epoch being run
    batches_done: int = 0     # batches of that epoch already consumed
    global_step: int = 0      # optimizer steps so far
    loss_sum: float = 0.0     # sum of batch losses in this epoch so far
    loss_batches: int = 0
    seconds: float = 0.0      # training time in this epoch so far


def _write_checkpoint(model: Any, optimizer: Any, out_dir: Path, position: _Position, options: dict[str, Any],
                      history: list[dict[str, Any]]) -> Path:
    final = out_dir / CHECKPOINTS / f"step-{position.global_step:06d}"
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp, safe_serialization=True)
    meta = _save_optimizer(optimizer, tmp / OPTIMIZER_FILE)
    state = {"epoch": position.epoch, "batches_done": position.batches_done, "global_step": position.global_step,
             "loss_sum": position.loss_sum, "loss_batches": position.loss_batches, "seconds": position.seconds,
             "options": options, "history": history, "optimizer": meta, "version": __version__}
    (tmp / STATE_FILE).write_text(json.dumps(state, indent=1) + "\n", encoding="utf-8")
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


# --------------------------------------------------------------------------------------------------
# Training


@dataclass
class TrainResult:
    """What `train_vlm` did.

    Attributes
    ----------
    run_dir : Path
        The folder `~picinspector.models.vlm.load_vlm` reads.
    global_step : int
        Optimizer steps taken in total (including those before a resume).
    epochs_done : int
        Complete epochs.
    history : list of dict
        One row per complete epoch: ``epoch``, ``global_step``, ``train_loss``, ``batches``,
        ``seconds``, ``lr``.
    resumed_from : Path or None
        The checkpoint training continued from.
    stopped : str
        "finished", "max_steps".
    model : peft.PeftModel
        The trained model in memory (base frozen, adapters trained).
    bad_images : dict
        Photos that could not be read during this call (path -> reason), skipped; also listed in
        ``bad_images.txt`` in the run folder.
    """

    run_dir: Path
    global_step: int
    epochs_done: int
    history: list[dict[str, Any]]
    resumed_from: Path | None
    stopped: str
    model: Any = field(repr=False, default=None)
    processor: Any = field(repr=False, default=None)
    bad_images: dict[str, str] = field(default_factory=dict)


def _check_options(rank: int, alpha: float, dropout: float, target: str, lr: float, epochs: int, batch_size: int,
                   grad_accum: int, max_image_size: int | None, max_steps: int | None) -> None:
    checks = [(rank >= 1, f"rank must be >= 1, got {rank}"), (alpha > 0, f"alpha must be > 0, got {alpha}"),
              (0.0 <= dropout < 1.0, f"dropout must be in [0, 1), got {dropout}"),
              (lr > 0 and math.isfinite(lr), f"lr must be a positive number, got {lr}"),
              (epochs >= 1, f"epochs must be >= 1, got {epochs}"),
              (batch_size >= 1, f"batch_size must be >= 1, got {batch_size}"),
              (grad_accum >= 1, f"grad_accum must be >= 1, got {grad_accum}"),
              (max_image_size is None or max_image_size >= 16, f"max_image_size must be >= 16, got {max_image_size}"),
              (max_steps is None or max_steps >= 1, f"max_steps must be >= 1, got {max_steps}")]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)
    target_modules(target)


def _write_metrics(out_dir: Path, history: list[dict[str, Any]]) -> None:
    columns = ["epoch", "global_step", "train_loss", "batches", "seconds", "lr"]
    tmp = out_dir / (METRICS_CSV + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, out_dir / METRICS_CSV)
    (out_dir / METRICS_JSON).write_text(json.dumps(history, indent=1) + "\n", encoding="utf-8")


def _export_run(model: Any, processor: Any, out_dir: Path, options: dict[str, Any], history: list[dict[str, Any]],
                instruction: str) -> None:
    """The final adapter, processor and settings at the top of the run folder."""
    model.save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)
    settings = {"format": _vlm.SETTINGS_FORMAT, "format_version": _vlm.SETTINGS_VERSION, "base": options["base"],
                "instruction": instruction, "grounded": options["grounded"], "image_size": options["image_size"],
                "generation": dict(_vlm.GENERATION), "merged": False,
                "lora": {k: options[k] for k in ("rank", "alpha", "dropout", "target")},
                "training": {k: options[k] for k in ("lr", "epochs", "batch_size", "grad_accum", "seed", "bf16",
                                                     "n_samples")},
                "metrics": {"history": history, "final_train_loss": history[-1]["train_loss"] if history else None},
                "version": __version__}
    _vlm.write_settings(out_dir, settings)
    _write_metrics(out_dir, history)


def train_vlm(samples: Sequence[Any], base: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
              rank: int = 8, alpha: float = 16, dropout: float = 0.05, target: str = "attention", lr: float = 2e-4,
              epochs: int = 1, batch_size: int = 1, grad_accum: int = 4, max_image_size: int | None = None,
              seed: int = 0, device: str = "cpu", bf16: bool = False, grounded: bool = False, progress: bool = True,
              resume: bool = True, max_steps: int | None = None, instruction: str | None = None,
              workers: int = 0) -> TrainResult:
    """Fine-tune a SmolVLM (Idefics3) base with LoRA on image/description pairs.

    Parameters
    ----------
    samples : sequence of CaptionSample
        ``image`` (a path, or an array / Pillow image / `Photo`), ``description`` (the answer),
        optional ``prompt`` (replaces the instruction) and ``meta`` (``meta["grounding"]``, if
        present, is used as the measured facts).
    base : str or path-like
        Base model folder or Hub id (e.g. `picinspector.models.vlm.DEFAULT_BASE`); resolved with
        `~picinspector.models.resolve_weights`.
    out_dir : str or path-like
        Run folder (created). Holding checkpoints of the same run, training resumes from them.
    rank, alpha, dropout : int, float, float
        LoRA rank, scaling numerator (the update is scaled by ``alpha / rank``) and dropout.
    target : {"attention", "attention+mlp"}
        Which language-model projections get adapters (see `TARGETS`).
    lr : float
        AdamW learning rate (constant; weight decay 0).
    epochs : int
        Passes over ``samples``.
    batch_size, grad_accum : int
        Images per forward pass, and forward passes per optimizer step.
    max_image_size : int, optional
        Longest edge the photos are resized to. Default: the processor's tile (512 px for
        SmolVLM-256M: one tile, 64 image tokens); larger values split the photo into tiles plus a
        global view, each costing ``image_seq_len`` tokens. Smaller values save nothing (the
        vision tower always sees whole tiles) and only blur the photo.
    seed : int
        Data order, LoRA initialisation and dropout.
    device : str
        "cpu", "cuda", ...
    bf16 : bool
        Load the base in bfloat16 (the adapters stay float32).
    grounded : bool
        Put the measured scores, scene and findings into every prompt (see `Grounder`); inference
        should then be grounded too (``VLMFeedback(run_dir, grounded=None)`` follows the run).
    progress : bool
        Rich progress bar on stderr.
    resume : bool
        Continue from the newest checkpoint in ``out_dir`` (True) or delete the old checkpoints and
        start over (False).
    max_steps : int, optional
        Stop after this many optimizer steps in total (checkpointing there; a later call with a
        larger ``max_steps`` or none continues).
    instruction : str, optional
        The instruction for samples without their own prompt, saved as the run's instruction (what
        inference asks). Default: the prompt most samples carry, else
        `picinspector.models.vlm.INSTRUCTION`.
    workers : int
        Processes that load photos and run the processor while the model trains (0: in the
        training loop). On a GPU the photos are the bottleneck without them.

    Returns
    -------
    TrainResult

    Raises
    ------
    ValueError
        Bad options, no samples, an empty description, or checkpoints in ``out_dir`` from a run with
        other options (pass ``resume=False`` or another folder).
    FileNotFoundError
        Not one image is usable (checked before anything is loaded); single unreadable photos are
        skipped and reported in ``TrainResult.bad_images`` and ``bad_images.txt``.
    picinspector.models.WeightsNotFound
        The base model cannot be found.
    """
    import torch
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from safetensors.torch import load_file

    _check_options(rank, alpha, dropout, target, lr, epochs, batch_size, grad_accum, max_image_size, max_steps)
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    samples = list(samples)
    if not samples:
        raise ValueError("no training samples")
    for i, sample in enumerate(samples):
        if not str(getattr(sample, "description", "") or "").strip():
            raise ValueError(f"sample {i} ({getattr(sample, 'image', '?')}) has an empty description")
    bad = _check_images(samples)  # unreadable photos: path -> reason; skipped, reported at the end
    samples = [s for s in samples if not isinstance(s.image, (str, os.PathLike)) or os.fspath(s.image) not in bad]
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    if not resume and (out / CHECKPOINTS).exists():
        shutil.rmtree(out / CHECKPOINTS)

    model, processor, resolved = _vlm.load_base(base, device=device, dtype=torch.bfloat16 if bf16 else torch.float32)
    image_size = int(max_image_size or _vlm.tile_size(processor))
    options = {"base": str(resolved.path) if resolved.source == "local folder" else resolved.name,
               "rank": int(rank), "alpha": float(alpha), "dropout": float(dropout), "target": target, "lr": float(lr),
               "epochs": int(epochs), "batch_size": int(batch_size), "grad_accum": int(grad_accum),
               "image_size": image_size, "seed": int(seed), "bf16": bool(bf16), "grounded": bool(grounded),
               "n_samples": len(samples)}
    instruction = instruction or _common_prompt(samples) or _vlm.INSTRUCTION

    torch.manual_seed(seed)
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules(target),
                        bias="none")
    model = get_peft_model(model, config)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)

    position, history, resumed_from = _Position(), [], None
    checkpoints = _checkpoint_dirs(out) if resume else []
    if checkpoints:
        resumed_from = checkpoints[-1]
        state = json.loads((resumed_from / STATE_FILE).read_text(encoding="utf-8"))
        differ = [k for k in _RESUME_KEYS if state["options"].get(k) != options[k]]
        if differ:
            raise ValueError(f"{out} holds checkpoints of a run with other settings ({', '.join(differ)}: "
                             f"{', '.join(repr(state['options'].get(k)) for k in differ)}); use another folder or "
                             "resume=False to start over")
        set_peft_model_state_dict(model, load_file(str(resumed_from / "adapter_model.safetensors")))
        _load_optimizer(optimizer, resumed_from / OPTIMIZER_FILE, state["optimizer"], device)
        position = _Position(state["epoch"], state["batches_done"], state["global_step"], state["loss_sum"],
                             state["loss_batches"], state["seconds"])
        history = list(state["history"])

    pad_id = processor.tokenizer.pad_token_id
    if pad_id is None:
        pad_id = processor.tokenizer.convert_tokens_to_ids(_vlm.end_token(processor.tokenizer))
    examples = _Examples(samples, processor, instruction, image_size, Grounder() if grounded else None)
    n_batches = math.ceil(len(samples) / batch_size)

    def epoch_batches(epoch: int, start: int) -> Any:
        """The batches of an epoch from batch ``start`` on, loaded by ``workers`` processes."""
        from functools import partial

        from torch.utils.data import DataLoader

        order = np.random.default_rng([seed, epoch]).permutation(len(samples))
        plan = [order[b * batch_size:(b + 1) * batch_size].tolist() for b in range(start, n_batches)]
        return DataLoader(examples, batch_sampler=plan, collate_fn=partial(collate, pad_id=pad_id),
                          num_workers=workers, pin_memory=str(device).startswith("cuda"))

    stopped = "finished"
    saved_step = position.global_step
    model.train()
    from ..batch import progress_bar

    with progress_bar(progress, n_batches) as bar:
        task = bar.add_task("training", total=len(samples))
        while position.epoch < epochs:
            if max_steps is not None and position.global_step >= max_steps:
                stopped = "max_steps"
                break
            loader = epoch_batches(position.epoch, position.batches_done)
            bar.reset(task, total=len(samples), completed=min(len(samples), position.batches_done * batch_size),
                      description=f"epoch {position.epoch + 1}/{epochs}")
            started = time.perf_counter() - position.seconds
            boundary = _Position(**vars(position))
            in_step = False
            try:
                batch_index = position.batches_done
                for batch in loader:
                    group_start = (batch_index // grad_accum) * grad_accum
                    group_len = min(grad_accum, n_batches - group_start)
                    if batch_index == group_start:
                        torch.manual_seed(_step_seed(seed, position.global_step))
                    for path, why in batch.pop("errors", []):
                        bad[path] = why
                    n_images = len(batch["input_ids"]) if batch else 0
                    if batch:  # a batch whose every photo was unreadable adds no gradient
                        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                        loss = model(**batch, use_cache=False).loss
                        (loss / group_len).backward()
                        position.loss_sum += float(loss.detach())
                        position.loss_batches += 1
                    batch_index += 1
                    bar.update(task, advance=n_images,
                               description=f"epoch {position.epoch + 1}/{epochs} "
                                           f"loss {position.loss_sum / max(1, position.loss_batches):.3f}")
                    if batch_index == group_start + group_len:
                        in_step = True
                        optimizer.step()
                        optimizer.zero_grad(set_to_none=True)
                        in_step = False
                        position.global_step += 1
                        position.batches_done = batch_index
                        position.seconds = time.perf_counter() - started
                        boundary = _Position(**vars(position))
                        if max_steps is not None and position.global_step >= max_steps and batch_index < n_batches:
                            _write_checkpoint(model, optimizer, out, position, options, history)
                            saved_step = position.global_step
                            stopped = "max_steps"
                            break
            except KeyboardInterrupt:
                # Weights and optimizer are those of the last completed step (unless the interrupt hit
                # optimizer.step itself): save them, so that the next call resumes from there.
                if not in_step and boundary.global_step > saved_step:
                    optimizer.zero_grad(set_to_none=True)
                    _write_checkpoint(model, optimizer, out, boundary, options, history)
                raise
            if stopped == "max_steps":
                break
            history.append({"epoch": position.epoch + 1, "global_step": position.global_step,
                            "train_loss": position.loss_sum / max(1, position.loss_batches),
                            "batches": position.loss_batches, "seconds": round(time.perf_counter() - started, 3),
                            "lr": lr})
            position = _Position(position.epoch + 1, 0, position.global_step)
            _write_checkpoint(model, optimizer, out, position, options, history)
            saved_step = position.global_step
            _write_metrics(out, history)

    model.eval()
    _export_run(model, processor, out, options, history, instruction)
    if bad:
        (out / BAD_FILE).write_text("".join(f"{p}\t{why}\n" for p, why in sorted(bad.items())), encoding="utf-8")
    return TrainResult(out, position.global_step, len(history), history, resumed_from, stopped, model, processor,
                       bad_images=bad)


def _common_prompt(samples: Sequence[Any]) -> str | None:
    """The prompt most samples carry (captions made by ``picinspector captions make`` share one): the
    run's instruction, which inference then asks."""
    from collections import Counter

    prompts = Counter(p for s in samples if (p := getattr(s, "prompt", None)))
    return prompts.most_common(1)[0][0] if prompts else None


def _step_seed(seed: int, step: int) -> int:
    """The torch seed for an optimizer step (dropout), independent of how the run was interrupted."""
    return (int(seed) * 1_000_003 + int(step)) % (2**63 - 1)


# --------------------------------------------------------------------------------------------------
# Merging


def merge_vlm(run_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, device: str = "cpu",
              dtype: Any = None) -> Path:
    """Fold a run's LoRA adapter into its base and save a plain model folder (safetensors).

    The folder holds ``config.json``, ``model.safetensors``, the processor and the run's settings
    (marked ``merged``); `~picinspector.models.vlm.load_vlm` loads it without peft or the base.

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    ValueError
        ``run_dir`` holds no adapter.
    """
    run = Path(run_dir).expanduser()
    if not _vlm.is_run_dir(run):
        raise ValueError(f"{run} holds no LoRA adapter ({', '.join(_vlm.ADAPTER_FILES)}); nothing to merge")
    loaded = _vlm.load_vlm(run, device=device, dtype=dtype)
    merged = loaded.model.merge_and_unload()
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out)
    loaded.processor.save_pretrained(out)
    settings = {**loaded.settings, "merged": True, "merged_from": str(run.resolve())}
    _vlm.write_settings(out, settings)
    return out


# --------------------------------------------------------------------------------------------------
# Evaluation


def truths_from_meta(samples: Sequence[Any]) -> list[dict[str, Any]] | None:
    """Per-sample truths (``{"scores", "scenes"}``) from the samples' ``meta``, as written by
    `picinspector.feedback.captions`; None unless every sample has ``meta["scores"]``."""
    metas = [getattr(s, "meta", None) or {} for s in samples]
    if not metas or not all(isinstance(m.get("scores"), Mapping) for m in metas):
        return None
    return [{"scores": dict(m["scores"]), "scenes": list(m.get("scenes") or [])} for m in metas]


def evaluate_vlm(samples: Sequence[Any], run_dir: str | os.PathLike[str], grounded: bool | None = None,
                 truths: Sequence[Mapping[str, Any]] | None = None, max_new_tokens: int | None = None, *,
                 device: str = "cpu", progress: bool = True,
                 vlm: Any = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Generate for every sample's image; ROUGE against the references, and the contradiction rate.

    Parameters
    ----------
    samples : sequence of CaptionSample
        Images and reference descriptions (a sample's own ``prompt`` is used as its instruction).
    run_dir : str or path-like
        Run folder, merged export or base model (see `~picinspector.models.vlm.load_vlm`).
    grounded : bool, optional
        Put the measured facts into the prompts. Default: as the run was trained.
    truths : sequence of mapping, optional
        One per sample: ``{"scores": {name: 0-100}, "scenes": [labels]}``, what
        `picinspector.feedback.captions.contradiction_rate` judges texts against. Default: the
        samples' ``meta`` when every one has ``scores`` (captions made by ``picinspector captions
        make`` do), else no faithfulness check.
    max_new_tokens : int, optional
        Default: the run's generation setting.
    device : str
    progress : bool
    vlm : VLM, optional
        An already loaded model (then ``run_dir`` is not read).

    Returns
    -------
    summary : dict
        ``n``, ``rouge1``, ``rouge2``, ``rougeL`` (mean F-measures in [0, 1], from
        `picinspector.training.text_metrics.rouge`), ``grounded``, ``model``,
        ``seconds_per_image``; with truths also ``contradiction_rate`` (share of texts with at
        least one contradicted claim) and ``contradictions`` (the full
        `~picinspector.feedback.captions.contradiction_rate` dict).
    rows : list of dict
        Per sample: ``image``, ``reference``, ``generated``, ``rouge1``, ``rouge2``, ``rougeL``, and
        with truths ``contradictions`` (the contradicted claim kinds).

    Raises
    ------
    ValueError
        No samples, or truths not aligned with the samples.
    """
    from ..batch import progress_bar
    from .text_metrics import ROUGE_TYPES, rouge

    samples = list(samples)
    if not samples:
        raise ValueError("no evaluation samples")
    if truths is None:
        truths = truths_from_meta(samples)
    elif len(truths) != len(samples):
        raise ValueError(f"truths has {len(truths)} entries for {len(samples)} samples")
    model = vlm if vlm is not None else _vlm.load_vlm(run_dir, device=device)
    if grounded is None:
        grounded = bool(model.settings.get("grounded", False))
    grounder = Grounder() if grounded else None
    rows: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    kept: list[int] = []
    started = time.perf_counter()
    with progress_bar(progress, len(samples)) as bar:
        task = bar.add_task("generating", total=len(samples))
        for index, sample in enumerate(samples):
            try:
                image = _load_image(sample)
            except PicInspectorError as exc:  # a bad file is reported and skipped, the rest goes on
                failed.append({"image": os.fspath(sample.image), "kind": exc.kind, "message": str(exc)})
                bar.update(task, advance=1)
                continue
            kept.append(index)
            grounding = grounder(sample, image) if grounder is not None else None
            text = model.generate(image, grounding, instruction=getattr(sample, "prompt", None),
                                  max_new_tokens=max_new_tokens)
            rows.append({"image": os.fspath(sample.image) if isinstance(sample.image, (str, os.PathLike)) else None,
                         "reference": sample.description, "generated": text})
            bar.update(task, advance=1)
    seconds = time.perf_counter() - started
    if not rows:
        raise ValueError(f"none of the {len(samples)} images could be read (first: {failed[0]['message']})")
    if truths is not None:
        truths = [truths[i] for i in kept]
    scores = rouge([r["generated"] for r in rows], [r["reference"] for r in rows])
    for i, row in enumerate(rows):
        row.update({name: float(scores["per_item"][name][i]) for name in ROUGE_TYPES})
    summary: dict[str, Any] = {"n": len(rows), **{name: float(scores[name]) for name in ROUGE_TYPES},
                               "grounded": grounded, "model": model.source,
                               "seconds_per_image": seconds / len(rows), "failed": failed}
    if truths is not None:
        from ..feedback.captions import contradiction_rate, contradictions

        checked = contradiction_rate([r["generated"] for r in rows], list(truths))
        summary["contradiction_rate"] = checked["rate_per_text"]
        summary["contradictions"] = checked
        for row, truth in zip(rows, truths):
            row["contradictions"] = contradictions(row["generated"], truth.get("scores") or {}, truth.get("scenes"))
    return summary, rows


__all__ = ["IGNORE_INDEX", "TARGETS", "Grounder", "TrainResult", "collate", "encode_example", "evaluate_vlm",
           "merge_vlm", "target_modules", "train_vlm", "truths_from_meta"]
