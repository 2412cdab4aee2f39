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

import json
import math
import os
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

import cv2
import numpy as np

from ..report import SCORE_NAMES
from ..scene import SCENES
from ._device import pick_device
from ._weights import WeightsNotFound, resolve_weights

try:
    import torch
    from torch import nn
except ImportError as exc:  # pragma: no cover - exercised only without the deep extras
    raise ImportError("the dinov2 engine needs PyTorch and transformers: pip install torch==2.13.0 (CPU build; "
                      "or the build for your GPU from pytorch.org), then pip install \"picinspector[deep]\"") from exc

#: Format tag written into every model folder's config.json.
FORMAT = "picinspector-dinov2"
FORMAT_VERSION = 1
CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"

#: ImageNet statistics, which DINOv2 was trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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
# Preprocessing


@dataclass(frozen=True)
class Preprocess:
    """How a photo becomes backbone input (recorded in every model's config).

    Attributes
    ----------
    short_side : int
        The shorter side after resizing, and the side of the square crops (a multiple of the patch
        size keeps every pixel in a patch).
    crops : int
        Crops per photo at test time, evenly spaced along the longer side, outputs averaged.
    mean, std : tuple of float
        Per-channel normalisation (ImageNet).
    """

    short_side: int = 448
    crops: int = 3
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        if self.short_side < 14:
            raise ValueError(f"short_side must be at least one patch (14 px), got {self.short_side}")
        if self.crops < 1:
            raise ValueError(f"crops must be >= 1, got {self.crops}")

    def resized(self, rgb: np.ndarray) -> np.ndarray:
        """``rgb`` (H, W, 3) float in [0, 1] resized so that its shorter side is ``short_side``
        (area averaging when shrinking, bicubic when enlarging), aspect ratio kept."""
        h, w = rgb.shape[:2]
        scale = self.short_side / min(h, w)
        size = (max(self.short_side, int(round(w * scale))), max(self.short_side, int(round(h * scale))))
        if size == (w, h):
            return np.ascontiguousarray(rgb, dtype=np.float32)
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        return np.clip(cv2.resize(np.asarray(rgb, np.float32), size, interpolation=interp), 0.0, 1.0)

    def crop_origins(self, resized_shape: Sequence[int], n: int | None = None) -> list[tuple[int, int]]:
        """Top-left corners of ``n`` (default ``crops``) square crops spread evenly along the longer side."""
        n = self.crops if n is None else n
        h, w = resized_shape[:2]
        s = self.short_side
        if n == 1:
            return [((h - s) // 2, (w - s) // 2)]
        if w >= h:
            return [((h - s) // 2, int(round(i * (w - s) / (n - 1)))) for i in range(n)]
        return [(int(round(i * (h - s) / (n - 1))), (w - s) // 2) for i in range(n)]

    def normalise(self, crops: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) in [0, 1] -> (N, 3, S, S) float32, normalised."""
        x = (crops - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)

    def test_views(self, rgb: np.ndarray, n: int | None = None) -> np.ndarray:
        """The ``n`` test-time crops of a photo, normalised: (n, 3, S, S)."""
        img = self.resized(rgb)
        s = self.short_side
        return self.normalise(np.stack([img[y:y + s, x:x + s] for y, x in self.crop_origins(img.shape, n)]))

    def train_view(self, rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One random crop with a random horizontal flip (quality-preserving augmentation): (3, S, S)."""
        img = self.resized(rgb)
        s = self.short_side
        y = int(rng.integers(0, img.shape[0] - s + 1))
        x = int(rng.integers(0, img.shape[1] - s + 1))
        crop = img[y:y + s, x:x + s]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        return self.normalise(crop[None])[0]


# --------------------------------------------------------------------------------------------------
# Capture settings (MT-E)

#: EXIF inputs: (key in Photo.exif / Sample.exif, transform to a roughly unit-scale number).
EXIF_INPUTS: dict[str, Any] = {
    "iso": lambda v: math.log2(v / 100.0) / 4.0,
    "exposure_time_s": lambda v: math.log2(v * 60.0) / 4.0,
    "f_number": lambda v: math.log2(v / 2.0),
}
EXIF_FEATURES = 2 * len(EXIF_INPUTS)  # value and "present" flag for each


def exif_vector(exif: Mapping[str, Any] | None) -> np.ndarray:
    """Capture settings as model input: for each of `EXIF_INPUTS` a scaled log value and a flag
    saying whether it was present (missing or invalid values are 0 with flag 0)."""
    out = np.zeros(EXIF_FEATURES, np.float32)
    for i, (key, transform) in enumerate(EXIF_INPUTS.items()):
        value = (exif or {}).get(key)
        try:
            v = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(v) and v > 0:
            out[2 * i], out[2 * i + 1] = float(np.clip(transform(v), -4.0, 4.0)), 1.0
    return out


# --------------------------------------------------------------------------------------------------
# The network


@dataclass
class HeadConfig:
    """Shapes of the two heads (recorded in config.json)."""

    in_features: int
    hidden: int = 256
    dropout: float = 0.1
    exif: bool = False
    scores: tuple[str, ...] = SCORE_NAMES
    scenes: tuple[str, ...] = SCENES

    @property
    def head_inputs(self) -> int:
        return self.in_features + (EXIF_FEATURES if self.exif else 0)


def _mlp(n_in: int, hidden: int, n_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.LayerNorm(n_in), nn.Linear(n_in, hidden), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(hidden, n_out))


class MultiTaskIQA(nn.Module):
    """DINOv2 backbone + score head (6 outputs, 0-1 scale) + scene head (9 logits).

    Parameters
    ----------
    backbone : transformers.Dinov2Model
    heads : HeadConfig
        ``in_features`` must be twice the backbone's hidden size (CLS and mean patch token).
    """

    def __init__(self, backbone: Any, heads: HeadConfig) -> None:
        super().__init__()
        if heads.in_features != 2 * backbone.config.hidden_size:
            raise ValueError(f"heads expect {heads.in_features} features; the backbone gives "
                             f"{2 * backbone.config.hidden_size}")
        self.backbone = backbone
        self.heads = heads
        self.score_head = _mlp(heads.head_inputs, heads.hidden, len(heads.scores), heads.dropout)
        self.scene_head = _mlp(heads.head_inputs, heads.hidden, len(heads.scenes), heads.dropout)

    def pooled(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, 2 * hidden): the CLS token next to the mean of the patch tokens."""
        tokens = self.backbone(pixel_values=pixel_values).last_hidden_state  # layer-normed by Dinov2Model
        return torch.cat([tokens[:, 0], tokens[:, 1:].mean(dim=1)], dim=1)

    def from_features(self, features: torch.Tensor, exif: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Heads on pooled features (so a frozen backbone's features can be cached)."""
        if self.heads.exif:
            if exif is None:
                exif = features.new_zeros((features.shape[0], EXIF_FEATURES))
            features = torch.cat([features, exif.to(features.dtype)], dim=1)
        return {"scores": self.score_head(features), "scene_logits": self.scene_head(features)}

    def forward(self, pixel_values: torch.Tensor, exif: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return self.from_features(self.pooled(pixel_values), exif)


# --------------------------------------------------------------------------------------------------
# Saving and loading


@dataclass
class ModelConfig:
    """Everything needed to rebuild and serve a trained model (``config.json``)."""

    backbone_source: str
    backbone_config: dict[str, Any]
    preprocess: Preprocess
    heads: HeadConfig
    trained_scores: tuple[str, ...] = SCORE_NAMES
    trained_scenes: bool = True
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION,
                "backbone": {"source": self.backbone_source, "config": self.backbone_config},
                "preprocessing": {**asdict(self.preprocess), "input": "picinspector.io working image (long side "
                                  "<= 1024), float sRGB in [0, 1]", "resize": "shorter side, area/bicubic"},
                "heads": {**asdict(self.heads), "pooling": "cls+mean_patch"},
                "labels": {"scores": list(self.heads.scores), "scenes": list(self.heads.scenes),
                           "score_scale": "0-1 in the network, x100 in reports"},
                "trained": {"scores": list(self.trained_scores), "scenes": self.trained_scenes},
                "metrics": self.metrics, "training": self.training}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "config.json") -> "ModelConfig":
        if d.get("format") != FORMAT:
            raise ValueError(f"{where}: not a PicInspector DINOv2 model (format {d.get('format')!r}, expected "
                             f"{FORMAT!r})")
        if int(d.get("format_version", 0)) > FORMAT_VERSION:
            raise ValueError(f"{where}: made by a newer PicInspector (format version {d['format_version']})")
        pre = {k: d["preprocessing"][k] for k in ("short_side", "crops", "mean", "std")}
        heads = {k: d["heads"][k] for k in ("in_features", "hidden", "dropout", "exif", "scores", "scenes")}
        return cls(backbone_source=d["backbone"]["source"], backbone_config=dict(d["backbone"]["config"]),
                   preprocess=Preprocess(**{k: tuple(v) if isinstance(v, list) else v for k, v in pre.items()}),
                   heads=HeadConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in heads.items()}),
                   trained_scores=tuple(d["trained"]["scores"]), trained_scenes=bool(d["trained"]["scenes"]),
                   metrics=dict(d.get("metrics") or {}), training=dict(d.get("training") or {}))


def build_model(config: ModelConfig) -> MultiTaskIQA:
    """An untrained network with the shapes of ``config`` (weights are loaded separately)."""
    from transformers import Dinov2Config, Dinov2Model

    return MultiTaskIQA(Dinov2Model(Dinov2Config.from_dict(config.backbone_config)), config.heads)


def save_model(model: MultiTaskIQA, config: ModelConfig, folder: str | os.PathLike[str]) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into ``folder`` (created), atomically per file."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    tmp = folder / (WEIGHTS_FILE + ".tmp")
    save_file(state, str(tmp), metadata={"format": FORMAT})
    os.replace(tmp, folder / WEIGHTS_FILE)
    tmp = folder / (CONFIG_FILE + ".tmp")
    tmp.write_text(json.dumps(config.to_dict(), indent=2, default=_json_default), encoding="utf-8")
    os.replace(tmp, folder / CONFIG_FILE)
    return folder


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_config(folder: str | os.PathLike[str]) -> ModelConfig:
    """The `ModelConfig` of a model folder; a clear error when the folder is not one."""
    folder = Path(folder).expanduser()
    path = folder / CONFIG_FILE
    hint = "make one with `picinspector train --engine dinov2 ... -o RUN_DIR`"
    if not folder.is_dir():
        raise WeightsNotFound(f"dinov2 model {folder} is not a folder; {hint}")
    missing = [n for n in (CONFIG_FILE, WEIGHTS_FILE) if not (folder / n).is_file()]
    if missing:
        raise WeightsNotFound(f"dinov2 model folder {folder} lacks {' and '.join(missing)}: not a finished run "
                              f"(a run writes them when its first epoch ends); {hint}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ModelConfig.from_dict(data, str(path))
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a readable PicInspector DINOv2 config ({type(exc).__name__}: {exc})") from None


def load_model(folder: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[MultiTaskIQA, ModelConfig]:
    """A trained model and its config from a folder written by `save_model` (a training run's folder).

    Raises
    ------
    WeightsNotFound
        The folder, its ``config.json`` or its ``model.safetensors`` is missing.
    ValueError
        The files are not a PicInspector DINOv2 model, or their shapes disagree.
    """
    from safetensors.torch import load_file

    config = read_config(folder)
    model = build_model(config)
    state = load_file(str(Path(folder).expanduser() / WEIGHTS_FILE))
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(f"{folder}/{WEIGHTS_FILE} does not match its config.json: missing "
                         f"{result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}")
    return model.to(device).eval(), config


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
