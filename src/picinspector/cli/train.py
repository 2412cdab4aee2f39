"""``picinspector train``: the multi-task model on any backbone (effnet: EfficientNet-Lite; dinov2), or the vlm writer."""

from __future__ import annotations

import os
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.text import Text

from ._app import EXIT_ALL_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, app
from ._common import _deep_modules, _usage
from .evaluate import _vlm_setup


#: ``--engine`` -> the backbone trained when ``--backbone`` is not given (multi-task engines).
DEFAULT_BACKBONES = {"dinov2": "vit-s14", "effnet": "efficientnet-lite0"}


def parse_freeze(value: str) -> tuple[str, int | None]:
    """``--freeze``: ``frozen`` (the backbone), ``last:N`` (all but its last N blocks) or ``full``
    (nothing) -> (training mode, blocks to unfreeze or None)."""
    text = value.strip().lower()
    if text in ("frozen", "backbone", "all"):
        return "frozen", None
    if text in ("full", "none"):
        return "full", None
    if text.startswith("last:") and text[5:].isdigit():
        return "partial", int(text[5:])
    raise _usage(f"--freeze {value!r}: expected frozen, last:N (train the backbone's last N blocks) or full",
                 "--freeze")


def _train_multitask(a: dict[str, Any], err: Console) -> int:
    """``train --backbone NAME`` (engines effnet and dinov2): the multi-task model on a labelled dataset."""
    from ..datasets import CITATIONS, DatasetError, load_dataset, subsample
    from ..models import WeightsNotFound
    from ..models.effnet import WeightsPackageMissing

    engine = a["engine"]
    modules = _deep_modules(err, "deep", "training.multitask", "models.multitask.backbones")
    if modules is None:
        return EXIT_USAGE
    TrainOptions, read_split_file, train_multitask = (getattr(modules[0], n) for n in
                                                      ("TrainOptions", "read_split_file", "train_multitask"))
    family = modules[1].family_of(a["backbone"]).name
    if family != engine:
        raise _usage(f"--backbone {a['backbone']} belongs to the {family} engine, not --engine {engine}", "--backbone")
    if a["dataset"] is None:
        raise _usage(f"train --engine {engine} needs --dataset DIR", "--dataset")
    mode, unfreeze_last = a["mode"], a["unfreeze_last"]
    if a["freeze"] is not None:
        mode, n = parse_freeze(a["freeze"])
        if a["mode"] not in (None, mode):
            raise _usage(f"--freeze {a['freeze']} contradicts --mode {a['mode']}", "--freeze")
        unfreeze_last = n if n is not None else unfreeze_last
    if a["threads"]:
        import torch

        torch.set_num_threads(a["threads"])
    try:
        fmt, samples = load_dataset(a["dataset"], a["fmt"])
    except (DatasetError, ImportError, ValueError) as exc:
        err.print(Text(f"Error: {exc}", style="red"), soft_wrap=True)
        return EXIT_USAGE
    samples = subsample(samples, a["limit"], a["seed"])
    try:
        opts = TrainOptions(backbone=a["backbone"], mode=mode or "frozen", unfreeze_last=unfreeze_last,
                            epochs=a["epochs"] or 10, batch_size=a["batch_size"] or 16, lr=a["lr"] or 1e-3,
                            backbone_lr=a["backbone_lr"],
                            short_side=a["input_size"], crops=a["crops"], exif=a["exif"],
                            plcc_weight=a["plcc_weight"], scene_weight=a["scene_weight"],
                            val_fraction=a["val_fraction"], seed=a["seed"], patience=a["patience"],
                            device=a["device"], bf16=a["bf16"], workers=a["workers"], pooling=a["pooling"],
                            cache_inputs=a["cache_inputs"], cache_prefix=a["cache_prefix"], prefix_mirror=a["mirror"])
        val_names = read_split_file(a["split"]) if a["split"] else None
    except (ValueError, OSError) as exc:
        raise _usage(str(exc)) from None
    info = {"root": os.path.abspath(a["dataset"]), "format": fmt, "citation": CITATIONS.get(fmt),
            "limit": a["limit"]}
    try:
        result = train_multitask(samples, a["output"], opts, dataset=info, val_names=val_names,
                                 progress=not a["no_progress"], restart=a["restart"],
                                 log=lambda line: err.print(Text(line), soft_wrap=True))
    except (ValueError, WeightsNotFound, WeightsPackageMissing) as exc:
        err.print(Text(f"Error: {exc}", style="red"), soft_wrap=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.print(Text("Interrupted: run the same command again to resume after the last finished epoch.",
                       style="yellow"), soft_wrap=True)
        return EXIT_INTERRUPTED
    if result.best_epoch is None:
        err.print(Text("No epoch finished with a usable validation score; no model was written.", style="red"))
        return EXIT_ALL_FAILED
    best = {k: float("nan") if v is None else v for k, v in result.best.items()}
    err.print(Text(f"best epoch {result.best_epoch}: quality SRCC {best.get('quality_srcc', float('nan')):.3f}, "
                   f"PLCC {best.get('quality_plcc', float('nan')):.3f} -> {result.run_dir} "
                   f"(serve it with: picinspector analyze PHOTO --engine {engine} --model {result.run_dir})",
                   style="bold"), soft_wrap=True)
    return EXIT_OK


def _train_vlm(a: dict[str, Any], err: Console) -> int:
    """``train --engine vlm``: a LoRA adapter that teaches SmolVLM to write quality feedback."""
    from ..datasets import DatasetError
    from ..models._device import pick_device

    if a["captions"] is None:
        raise _usage("train --engine vlm needs --captions FILE (make one with `picinspector captions make`)",
                     "--captions")
    setup = _vlm_setup(a, err)
    if setup is None:
        return EXIT_USAGE
    vlm_mod, lora, samples = setup
    device = str(pick_device(a["device"]))
    try:
        result = lora.train_vlm(samples, a["base"] or vlm_mod.DEFAULT_BASE, a["output"], rank=a["rank"], alpha=a["alpha"],
                           dropout=a["lora_dropout"], target=a["target"], lr=a["lr"] or 2e-4, epochs=a["epochs"] or 1,
                           batch_size=a["batch_size"] or 1, grad_accum=a["grad_accum"],
                           max_image_size=a["max_image_size"], seed=a["seed"], device=device, bf16=a["bf16"],
                           grounded=a["grounded"], progress=not a["no_progress"], resume=not a["restart"],
                           max_steps=a["max_steps"], workers=a["workers"])
    except (ValueError, FileNotFoundError, DatasetError) as exc:  # WeightsNotFound is a FileNotFoundError
        err.print(Text(f"Error: {exc}", style="red"), soft_wrap=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.print(Text("Interrupted: run the same command again to resume from the last checkpoint.",
                       style="yellow"), soft_wrap=True)
        return EXIT_INTERRUPTED
    last = result.history[-1] if result.history else {}
    err.print(Text(f"{result.global_step} steps, {result.epochs_done} epochs"
                   + (f", last train loss {last['train_loss']:.4f}" if last.get("train_loss") is not None else "")
                   + f" -> {result.run_dir} (use it with: picinspector analyze PHOTO --feedback vlm --vlm-model "
                   f"{result.run_dir})", style="bold"), soft_wrap=True)
    if result.bad_images:
        err.print(Text(f"{len(result.bad_images)} photos could not be read and were skipped: see "
                       f"{result.run_dir / 'bad_images.txt'}", style="yellow"), soft_wrap=True)
    if a["merge"]:
        merged = lora.merge_vlm(result.run_dir, a["merge"], device=device)
        err.print(Text(f"merged model -> {merged}", style="bold"), soft_wrap=True)
    return EXIT_OK


#: ``train --engine NAME`` -> the function that runs it with the parsed options.
TRAINERS: dict[str, Any] = {"effnet": _train_multitask, "dinov2": _train_multitask, "vlm": _train_vlm}


@app.command()
def train(
    engine: Annotated[Optional[str], typer.Option(
        "--engine", help="What to train: effnet or dinov2 (scores and scene; default: the family of --backbone, "
                         "else dinov2) or vlm (written feedback).", show_default=False)] = None,
    dataset: Annotated[Optional[str], typer.Option(
        "--dataset", metavar="DIR", help="effnet/dinov2: labelled dataset folder (or annotation/CSV file).")] = None,
    fmt: Annotated[Optional[str], typer.Option(
        "--format", help="effnet/dinov2: spaq, koniq, biq2021 or csv (default: detected from the files).")] = None,
    captions: Annotated[Optional[str], typer.Option(
        "--captions", metavar="FILE", help="vlm: image/description pairs (Q-Instruct or LLaVA JSON, CSV, or the "
                                           "JSONL of `captions make`).")] = None,
    output: Annotated[Optional[str], typer.Option(
        "-o", "--output", metavar="RUN_DIR", help="Run folder (default runs/ENGINE); the same command again "
                                                  "resumes.")] = None,
    backbone: Annotated[Optional[str], typer.Option(
        "--backbone", metavar="NAME",
        help="efficientnet-lite0/1/2 (pretrained, from their registry packages; engine effnet), or a DINOv2: a "
             "folder, a Hub id (facebook/dinov2-small), vit-s14/vit-b14/vit-l14, random:vit-s14 (untrained). "
             "Default: efficientnet-lite0 for --engine effnet, vit-s14 for dinov2.", show_default=False)] = None,
    base: Annotated[Optional[str], typer.Option(
        "--base", metavar="PATH_OR_ID", help="vlm: the base model, a folder or Hub id (default "
                                             "HuggingFaceTB/SmolVLM-256M-Instruct).")] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", min=1, help="Default: dinov2 10, vlm 1.")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", min=1, help="Default: dinov2 16, vlm 1.")] = None,
    lr: Annotated[Optional[float], typer.Option(
        "--lr", help="Learning rate (dinov2: of the heads, default 1e-3; vlm: of LoRA, default 2e-4).")] = None,
    mode: Annotated[Optional[str], typer.Option(
        "--mode", help="effnet/dinov2: frozen (heads on cached features: fast, CPU-friendly; the default), partial "
                       "(also the last --unfreeze-last blocks) or full fine-tuning.", show_default=False)] = None,
    freeze: Annotated[Optional[str], typer.Option(
        "--freeze", help="effnet/dinov2, the same as --mode in one flag: frozen, last:N (train the backbone's last N "
                         "blocks) or full.")] = None,
    unfreeze_last: Annotated[int, typer.Option(
        "--unfreeze-last", min=0, help="partial: blocks to train (EfficientNet-Lite0 has 18: stem, 16 MBConv, head "
                                       "conv; DINOv2: its layers).")] = 4,
    backbone_lr: Annotated[float, typer.Option("--backbone-lr", help="effnet/dinov2: learning rate of trained "
                                                                     "backbone blocks.")] = 2e-5,
    pooling: Annotated[Optional[str], typer.Option(
        "--pooling", help="effnet: all.meanstd (mean and std of all 9 maps, default) or head.mean; dinov2: "
                          "cls+mean_patch.")] = None,
    cache_inputs: Annotated[bool, typer.Option(
        "--cache-inputs", help="Keep the resized photos in memory after the first epoch (float16).")] = False,
    cache_prefix: Annotated[bool, typer.Option(
        "--cache-prefix", help="effnet partial: run the frozen blocks once per photo and view (crops + mirror) and "
                               "train only the last blocks on their cached output: several times faster on a CPU.")
    ] = False,
    mirror: Annotated[bool, typer.Option(
        "--mirror/--no-mirror", help="--cache-prefix: also cache each training view's mirror image (augmentation; "
                                     "twice the extraction).")] = True,
    threads: Annotated[Optional[int], typer.Option("--threads", min=1, help="torch CPU threads (default: "
                                                                             "torch's own).")] = None,
    input_size: Annotated[int, typer.Option(
        "--input-size", min=14, help="effnet/dinov2: shorter side after resizing and side of the square crops "
                                     "(effnet: a multiple of 32; default 448).")] = 448,
    crops: Annotated[int, typer.Option("--crops", min=1, help="effnet/dinov2: test-time crops per photo.")] = 3,
    exif: Annotated[bool, typer.Option("--exif", help="effnet/dinov2: feed ISO, exposure time and f-number to the heads "
                                                      "(MT-E).")] = False,
    plcc_weight: Annotated[float, typer.Option("--plcc-weight", min=0.0, help="effnet/dinov2: weight of the correlation "
                                                                              "loss.")] = 0.5,
    scene_weight: Annotated[float, typer.Option("--scene-weight", min=0.0, help="effnet/dinov2: weight of the scene "
                                                                                "loss.")] = 0.5,
    val_fraction: Annotated[float, typer.Option("--val-fraction", help="effnet/dinov2: held-out share (seeded split).")] = 0.2,
    split: Annotated[Optional[str], typer.Option(
        "--split", metavar="FILE", help="effnet/dinov2: validation images, JSON {\"val\": [...]} or one name per line.")
    ] = None,
    patience: Annotated[int, typer.Option("--patience", min=1, help="effnet/dinov2: early stop after this many epochs "
                                                                     "without a better validation SRCC.")] = 5,
    rank: Annotated[int, typer.Option("--rank", min=1, help="vlm: LoRA rank.")] = 8,
    alpha: Annotated[float, typer.Option("--alpha", help="vlm: LoRA alpha.")] = 16,
    lora_dropout: Annotated[float, typer.Option("--lora-dropout", help="vlm: LoRA dropout.")] = 0.05,
    target: Annotated[str, typer.Option("--target", help="vlm: LoRA on the language model's attention, or "
                                                         "attention+mlp.")] = "attention",
    grad_accum: Annotated[int, typer.Option("--grad-accum", min=1, help="vlm: gradient accumulation steps.")] = 4,
    max_image_size: Annotated[Optional[int], typer.Option(
        "--max-image-size", min=16, help="vlm: longest image side (default: the processor's tile).")] = None,
    grounded: Annotated[bool, typer.Option("--grounded", help="vlm: train with the measured scores and findings "
                                                              "in the prompt.")] = False,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", min=1, help="vlm: stop after this many "
                                                                                "optimiser steps.")] = None,
    merge: Annotated[Optional[str], typer.Option(
        "--merge", metavar="DIR", help="vlm: also write the base with the adapter merged in (for deployment).")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:1, mps.")] = "auto",
    bf16: Annotated[bool, typer.Option("--bf16", help="bfloat16 (GPUs with bf16 support).")] = False,
    workers: Annotated[int, typer.Option("--workers", min=0, help="Image-reading processes.")] = 0,
    limit: Annotated[Optional[int], typer.Option("--limit", min=2, help="Train on a seeded subset.")] = None,
    restart: Annotated[bool, typer.Option("--restart", help="Discard a previous run in RUN_DIR.")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bars.")] = False,
) -> None:
    """Train a deep engine; the run folder is what `analyze`/`eval` serve with --model (dinov2) or
    --vlm-model (vlm)."""
    if engine is None:
        from ..models.effnet import BACKBONES as EFFNET_BACKBONES

        engine = "effnet" if backbone in EFFNET_BACKBONES else "dinov2"
    if engine not in TRAINERS:
        raise _usage(f"unknown engine {engine!r}; choose from {', '.join(TRAINERS)}", "--engine")
    err = Console(stderr=True)
    args = dict(locals())
    args["backbone"] = backbone or DEFAULT_BACKBONES.get(engine)
    args["output"] = output or os.path.join("runs", engine)
    raise typer.Exit(TRAINERS[engine](args, err))
