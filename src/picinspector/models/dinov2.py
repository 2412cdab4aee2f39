"""The DINOv2 multi-task model: six quality scores and nine scene probabilities from one backbone.

A `transformers` ``Dinov2Model`` backbone is pooled into one vector per view (the CLS token next to
the mean of the patch tokens, Oquab et al.'s linear-probe recipe) and read by two small MLP heads:
a regression head for quality (MOS) and the five SPAQ attributes, on a 0-1 scale, and a multi-label
scene head for SPAQ's nine categories (independent sigmoids, as SPAQ images may carry several
labels). Optionally, the capture settings (ISO, exposure time, f-number) enter the heads, as in
SPAQ's MT-E model.

Input handling keeps the quality information that aggressive resizing would destroy: the working
image of `picinspector.io.load_photo` (long side 1024) is resized so that its *shorter* side is
``short_side`` (448 by default: 32 x 32 patches of 14 px), never squeezed to a square, and square
``short_side`` crops are taken along the longer side (three, evenly spaced, averaged at test
time; one random crop and a random horizontal flip when training). At 448 a 12-MP photo is shown
at about 1/7 of its native scale, 3.6 times as many pixels as the usual 224 ImageNet input, so
noise, blur and compression remain visible to the backbone, while the cost stays near one
1024-token forward pass per crop.

A trained model lives in a folder with ``config.json`` (backbone configuration, preprocessing,
head shapes, label names, training metrics) and ``model.safetensors`` (backbone and heads). It is
self-contained: serving it needs no backbone download. Nothing is ever unpickled.

References
----------
M. Oquab et al., "DINOv2: Learning Robust Visual Features without Supervision", TMLR 2024,
arXiv:2304.07193.
Y. Fang, H. Zhu, Y. Zeng, K. Ma, Z. Wang, "Perceptual Quality Assessment of Smartphone
Photography", CVPR 2020 (SPAQ; the MT-A/MT-E/MT-S multi-task baselines).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..report import SCORE_NAMES
from ._device import pick_device
from ._weights import WeightsNotFound, resolve_weights  # noqa: F401  (re-exported)
from .multitask._config import (CONFIG_FILE, EXIF_FEATURES, EXIF_INPUTS, IMAGENET_MEAN, IMAGENET_STD,  # noqa: F401
                                LEGACY_FORMAT, WEIGHTS_FILE, HeadConfig, ModelConfig, Preprocess, exif_vector)
from .multitask._config import read_config as _read_config

try:
    import torch
    from torch import nn
except ImportError as exc:  # pragma: no cover - exercised only without the deep extras
    raise ImportError("the dinov2 engine needs PyTorch and transformers: pip install torch==2.13.0 (CPU build; "
                      "or the build for your GPU from pytorch.org), then pip install \"picinspector[deep]\"") from exc

from .multitask._torch import MultiTaskNet, build_model, save_model  # noqa: E402,F401  (re-exported)
from .multitask._torch import load_model as _load_model  # noqa: E402

#: Format tag of DINOv2-only versions' config.json (still read; new runs write `multitask.FORMAT`).
FORMAT = LEGACY_FORMAT


@dataclass(frozen=True)
class BackboneSpec:
    """A published DINOv2 size: its Hub id and dimensions (for building it with random weights)."""

    hub_id: str
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int


#: Backbone sizes by short name; ``--backbone vit-s14`` means the Hub id, ``random:vit-s14`` the
#: same architecture with random weights (speed benchmarks, smoke tests).
BACKBONES: dict[str, BackboneSpec] = {
    "vit-s14": BackboneSpec("facebook/dinov2-small", 384, 12, 6),
    "vit-b14": BackboneSpec("facebook/dinov2-base", 768, 12, 12),
    "vit-l14": BackboneSpec("facebook/dinov2-large", 1024, 24, 16),
}
RANDOM_PREFIX = "random:"


def backbone_config(name: str) -> Any:
    """The ``Dinov2Config`` of a published size (`BACKBONES` key), as released: patch 14, 518 px."""
    from transformers import Dinov2Config

    spec = BACKBONES[name]
    return Dinov2Config(hidden_size=spec.hidden_size, num_hidden_layers=spec.num_hidden_layers,
                        num_attention_heads=spec.num_attention_heads, mlp_ratio=4, image_size=518, patch_size=14,
                        layerscale_value=1.0)


def load_backbone(name: str | os.PathLike[str], *, allow_download: bool = True) -> tuple[Any, str]:
    """A pretrained ``Dinov2Model`` and a description of where it came from.

    Parameters
    ----------
    name : str or path-like
        A folder with ``config.json`` and ``model.safetensors`` (e.g. from ``save_pretrained`` or
        ``hf download facebook/dinov2-small --local-dir DIR``), a Hub id (``facebook/dinov2-small``),
        a short name of `BACKBONES` (``vit-s14``, ``vit-b14``, ``vit-l14``), or ``random:<short name>``
        for random weights.
    allow_download : bool
        Let `resolve_weights` try the Hub (only when it is reachable and ``HF_HUB_OFFLINE`` is unset).

    Raises
    ------
    WeightsNotFound
        With the files needed and the download command.
    """
    from transformers import Dinov2Model
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    text = os.fspath(name)
    if text.startswith(RANDOM_PREFIX):
        size = text[len(RANDOM_PREFIX):]
        if size not in BACKBONES:
            raise ValueError(f"unknown backbone size {size!r} in {text!r}; choose from {', '.join(BACKBONES)}")
        return Dinov2Model(backbone_config(size)), text
    spec = BACKBONES.get(text)
    hub_id = spec.hub_id if spec else text
    found = resolve_weights(hub_id, what="DINOv2 backbone", files=("config.json", "model.safetensors"),
                            allow_download=allow_download, download_hint="facebook/dinov2-small")
    model = Dinov2Model.from_pretrained(found.path, local_files_only=True, use_safetensors=True)
    return model, f"{hub_id} ({found.source}: {found.path})"


# --------------------------------------------------------------------------------------------------
# The network, saving and loading: the backbone-agnostic multi-task model (`~.multitask`)


class MultiTaskIQA(MultiTaskNet):
    """DINOv2 backbone + score head (6 outputs, 0-1 scale) + scene head (9 logits).

    Parameters
    ----------
    backbone : transformers.Dinov2Model
    heads : HeadConfig
        ``in_features`` must be twice the backbone's hidden size (CLS and mean patch token).
    """

    def __init__(self, backbone: Any, heads: HeadConfig) -> None:
        super().__init__(backbone, heads, "dinov2")


def read_config(folder: str | os.PathLike[str]) -> ModelConfig:
    """The `ModelConfig` of a DINOv2 model folder; a clear error when the folder is not one (or holds
    another backbone family's model, which says which engine serves it)."""
    config = _read_config(folder, "dinov2")
    if config.family != "dinov2":
        raise ValueError(f"{folder} holds a {config.backbone_name or config.family} model, not DINOv2: serve it "
                         f"with --engine {config.family} --model {folder}")
    return config


def load_model(folder: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[MultiTaskNet, ModelConfig]:
    """A trained model and its config from a folder written by `save_model` (a training run's folder).

    Raises
    ------
    WeightsNotFound
        The folder, its ``config.json`` or its ``model.safetensors`` is missing.
    ValueError
        The files are not a PicInspector DINOv2 model, or their shapes disagree.
    """
    read_config(folder)
    return _load_model(folder, device, engine="dinov2")


# --------------------------------------------------------------------------------------------------
# The engine


@lru_cache(maxsize=2)
def _cached_model(folder: str, mtime_ns: int, device: str) -> tuple[MultiTaskIQA, ModelConfig]:
    """Each model folder is loaded once per process and device (again if its weights change)."""
    return load_model(folder, device)


class Dinov2Engine:
    """Scores and scene from a trained DINOv2 multi-task model (``--engine dinov2 --model RUN_DIR``).

    Parameters
    ----------
    model : str or path-like
        A training run's folder (or any folder with its ``config.json`` and ``model.safetensors``).
    device : str
        ``auto`` (CUDA, else MPS, else CPU), ``cpu``, ``cuda``, ``cuda:1`` ...
    crops : int, optional
        Test-time crops per photo (default: the model's own setting, 3 unless trained otherwise);
        1 is about three times faster.
    bf16 : bool
        bfloat16 autocast (on CPUs with bf16 support about 1.4x faster at 448 px, see the README's
        benchmark; scores move by a fraction of a point).

    Notes
    -----
    Scores the model was not trained on (a dataset with MOS only, such as KonIQ-10k or BIQ2021,
    teaches quality but no attributes) come from the classic engine's attribute scores, and the scene
    from the classic cue-based estimate when the model learnt no scenes; ``scene.method`` says which.
    Scene probabilities are independent per class (multi-label), so they need not sum to 1.
    """

    name = "dinov2"

    @staticmethod
    def check(model: str | os.PathLike[str] | None = None, device: str = "auto", crops: int | None = None,
              bf16: bool = False) -> None:
        """Validate the options without loading the weights (what a parent of worker processes does):
        the same errors as the constructor for a missing model, a folder that is not one, or bad crops."""
        if model is None:
            raise ValueError("the dinov2 engine needs a trained model: --model RUN_DIR (a folder made by "
                             "`picinspector train --engine dinov2`)")
        read_config(model)
        pick_device(device)
        if crops is not None and int(crops) < 1:
            raise ValueError(f"crops must be >= 1, got {crops!r}")

    def __init__(self, model: str | os.PathLike[str] | None = None, device: str = "auto",
                 crops: int | None = None, bf16: bool = False) -> None:
        self.check(model, device, crops, bf16)
        folder = Path(model).expanduser().resolve()
        self.device = pick_device(device)
        weights = folder / WEIGHTS_FILE
        self.model, self.config = _cached_model(str(folder), weights.stat().st_mtime_ns if weights.is_file() else 0,
                                                str(self.device))
        self.folder = folder
        self.crops = self.config.preprocess.crops if crops is None else int(crops)
        self.bf16 = bool(bf16)
        self._classic: Any = None

    @property
    def classic(self) -> Any:
        """The classic engine, for what the model did not learn (built on first use)."""
        if self._classic is None:
            from ..scoring import ClassicEngine

            self._classic = ClassicEngine()
        return self._classic

    def forward(self, rgb: np.ndarray, exif: Mapping[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Scores (0-100, in ``config.heads.scores`` order) and scene probabilities of one photo's
        working image, averaged over the test crops."""
        views = torch.from_numpy(self.config.preprocess.test_views(rgb, self.crops)).to(self.device)
        ex = torch.from_numpy(np.repeat(exif_vector(exif)[None], len(views), 0)).to(self.device)
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            out = self.model(views, ex if self.config.heads.exif else None)
        scores = out["scores"].float().mean(0).clamp(0.0, 1.0).cpu().numpy() * 100.0
        probs = torch.sigmoid(out["scene_logits"].float()).mean(0).cpu().numpy()
        return scores, probs

    def predict(self, photo: Any, measures: dict[str, Any]) -> tuple[dict[str, float], Any]:
        from ..report import SceneResult
        from ..scoring import attribute_scores

        values, probs = self.forward(photo.rgb, photo.exif)
        learnt = dict(zip(self.config.heads.scores, (float(v) for v in values)))
        scores = {n: learnt[n] for n in SCORE_NAMES if n in self.config.trained_scores}
        missing = [n for n in SCORE_NAMES if n not in scores]
        if missing:
            classic_attrs = attribute_scores(measures)
            for name in missing:
                scores[name] = (classic_attrs[name] if name in classic_attrs
                                else self.classic.quality(measures, classic_attrs))
        scores = {n: scores[n] for n in SCORE_NAMES}
        if not self.config.trained_scenes:
            _, scene = self.classic.predict(photo, measures)
            return scores, scene
        p = {s: round(float(v), 4) for s, v in zip(self.config.heads.scenes, probs)}
        label = max(p, key=p.get)
        return scores, SceneResult(label=label, probabilities=p, method="dinov2", confidence=p[label])
