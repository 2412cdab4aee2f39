"""What a multi-task run folder holds, readable without torch: preprocessing, head shapes, the config.

A trained multi-task model (six scores on 0-1 and nine scene logits from one backbone, see
`~picinspector.models.multitask`) lives in a folder::

    config.json         this module's `ModelConfig`: backbone family, name and configuration,
                        preprocessing, head shapes, label names, training metrics
    model.safetensors   backbone and heads (torch serving; the trainer writes it)
    model.onnx          the same network as one ONNX graph (EfficientNet-Lite runs: what
                        ``--engine effnet --model RUN_DIR`` serves on onnxruntime, without torch)

Run folders written before backbones became selectable (``"format": "picinspector-dinov2"``,
version 1) are read as DINOv2 runs: their weights have the same names.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import cv2
import numpy as np

from ...report import SCORE_NAMES
from ...scene import SCENES
from .._weights import WeightsNotFound

#: Format tag of config.json; `LEGACY_FORMAT` is what DINOv2-only versions wrote (read as family dinov2).
FORMAT = "picinspector-multitask"
FORMAT_VERSION = 2
LEGACY_FORMAT = "picinspector-dinov2"
CONFIG_FILE, WEIGHTS_FILE, ONNX_FILE = "config.json", "model.safetensors", "model.onnx"

#: ImageNet statistics (DINOv2 was trained with them).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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
        Per-channel normalisation of [0, 1] values: ``(x - mean) / std`` (ImageNet for DINOv2;
        127/255 and 128/255 for EfficientNet-Lite, i.e. its ``(255 x - 127) / 128``).
    multiple : int
        ``short_side`` must be a multiple of this (EfficientNet-Lite: 32, its total stride; 1: any).
    """

    short_side: int = 448
    crops: int = 3
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    multiple: int = 1

    def __post_init__(self) -> None:
        if self.short_side < 14:
            raise ValueError(f"short_side must be at least one patch (14 px), got {self.short_side}")
        if self.crops < 1:
            raise ValueError(f"crops must be >= 1, got {self.crops}")
        if self.multiple < 1 or self.short_side % self.multiple:
            raise ValueError(f"short_side must be a multiple of {self.multiple} for this backbone, got "
                             f"{self.short_side}")

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

    def raw_views(self, rgb: np.ndarray, n: int | None = None, distinct: bool = False) -> np.ndarray:
        """The test-time crops in [0, 1], not normalised: (n, S, S, 3). With ``distinct``, crops with
        the same origin (a square photo's) are given once: averaging over them changes nothing."""
        img = self.resized(rgb)
        s = self.short_side
        origins = self.crop_origins(img.shape, n)
        if distinct:
            origins = list(dict.fromkeys(origins))
        return np.stack([img[y:y + s, x:x + s] for y, x in origins])

    def test_views(self, rgb: np.ndarray, n: int | None = None, distinct: bool = False) -> np.ndarray:
        """The ``n`` test-time crops of a photo, normalised: (n, 3, S, S)."""
        return self.normalise(self.raw_views(rgb, n, distinct))

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
# Capture settings (SPAQ's MT-E)

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
# Heads and the whole config


@dataclass
class HeadConfig:
    """Shapes of the two heads (recorded in config.json). ``pooling`` names how the backbone's
    output becomes one vector (see each backbone family's ``poolings``); None: the family's default.
    ``norm`` is how each head normalises that vector first: ``layer`` (per photo, LayerNorm: the
    DINOv2 tokens are layer-normed already) or ``batch`` (per feature, BatchNorm1d: EfficientNet-Lite's
    pooled statistics differ in scale from map to map)."""

    in_features: int
    hidden: int = 256
    dropout: float = 0.1
    exif: bool = False
    scores: tuple[str, ...] = SCORE_NAMES
    scenes: tuple[str, ...] = SCENES
    pooling: str | None = None
    norm: str = "layer"

    @property
    def head_inputs(self) -> int:
        return self.in_features + (EXIF_FEATURES if self.exif else 0)


@dataclass
class ModelConfig:
    """Everything needed to rebuild and serve a trained model (``config.json``).

    ``family`` is the backbone family (`~.backbones.FAMILIES`: ``dinov2``, ``effnet``), ``backbone_name``
    the registered name it was trained from (``vit-s14``, ``efficientnet-lite0``, a folder, ...),
    ``backbone_config`` what rebuilds the architecture without any download.
    """

    backbone_source: str
    backbone_config: dict[str, Any]
    preprocess: Preprocess
    heads: HeadConfig
    trained_scores: tuple[str, ...] = SCORE_NAMES
    trained_scenes: bool = True
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    family: str = "dinov2"
    backbone_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION,
                "backbone": {"family": self.family, "name": self.backbone_name, "source": self.backbone_source,
                             "config": self.backbone_config},
                "preprocessing": {**asdict(self.preprocess), "input": "picinspector.io working image (long side "
                                  "<= 1024), float sRGB in [0, 1]", "resize": "shorter side, area/bicubic"},
                "heads": asdict(self.heads),
                "labels": {"scores": list(self.heads.scores), "scenes": list(self.heads.scenes),
                           "score_scale": "0-1 in the network, x100 in reports"},
                "trained": {"scores": list(self.trained_scores), "scenes": self.trained_scenes},
                "metrics": self.metrics, "training": self.training}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "config.json") -> "ModelConfig":
        fmt = d.get("format")
        if fmt not in (FORMAT, LEGACY_FORMAT):
            raise ValueError(f"{where}: not a PicInspector multi-task model (format {fmt!r}, expected {FORMAT!r})")
        if int(d.get("format_version", 0)) > FORMAT_VERSION:
            raise ValueError(f"{where}: made by a newer PicInspector (format version {d['format_version']})")
        pre = {k: d["preprocessing"][k] for k in ("short_side", "crops", "mean", "std", "multiple")
               if k in d["preprocessing"]}
        heads = {k: d["heads"][k] for k in ("in_features", "hidden", "dropout", "exif", "scores", "scenes")}
        heads["pooling"] = d["heads"].get("pooling")  # version 1: "cls+mean_patch", DINOv2's only pooling
        heads["norm"] = d["heads"].get("norm", "layer")  # version 1: LayerNorm
        backbone = d["backbone"]
        family = backbone.get("family", "dinov2")
        tup = lambda v: tuple(v) if isinstance(v, list) else v  # noqa: E731
        return cls(backbone_source=backbone["source"], backbone_config=dict(backbone["config"]),
                   preprocess=Preprocess(**{k: tup(v) for k, v in pre.items()}),
                   heads=HeadConfig(**{k: tup(v) for k, v in heads.items()}),
                   trained_scores=tuple(d["trained"]["scores"]), trained_scenes=bool(d["trained"]["scenes"]),
                   metrics=dict(d.get("metrics") or {}), training=dict(d.get("training") or {}),
                   family=family, backbone_name=backbone.get("name"))


def json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_config(config: ModelConfig, folder: str | os.PathLike[str]) -> None:
    """``config.json`` in ``folder``, atomically."""
    path = Path(folder) / CONFIG_FILE
    tmp = path.with_name(CONFIG_FILE + ".tmp")
    tmp.write_text(json.dumps(config.to_dict(), indent=2, default=json_default), encoding="utf-8")
    os.replace(tmp, path)


def read_config(folder: str | os.PathLike[str], engine: str = "dinov2",
                files: Sequence[str] = (CONFIG_FILE, WEIGHTS_FILE)) -> ModelConfig:
    """The `ModelConfig` of a model folder; a clear error when the folder is not one.

    ``engine`` names the engine asking (for the messages), ``files`` the files it needs.
    """
    folder = Path(folder).expanduser()
    path = folder / CONFIG_FILE
    hint = f"make one with `picinspector train --engine {engine} ... -o RUN_DIR`"
    if not folder.is_dir():
        raise WeightsNotFound(f"{engine} model {folder} is not a folder; {hint}")
    missing = [n for n in files if not (folder / n).is_file()]
    if missing:
        raise WeightsNotFound(f"{engine} model folder {folder} lacks {' and '.join(missing)}: not a finished run "
                              f"(a run writes them when its first epoch ends); {hint}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ModelConfig.from_dict(data, str(path))
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a readable PicInspector multi-task config ({type(exc).__name__}: "
                         f"{exc})") from None
