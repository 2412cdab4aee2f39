"""Backbone families of the multi-task model, by name: how each is loaded, rebuilt, pooled and frozen.

The trainer (`picinspector.training.multitask`) and the model (`~._torch.MultiTaskNet`) know
nothing of a particular network: everything specific lives in one `BackboneFamily` entry of
`FAMILIES`, found from the ``--backbone`` name by `family_of`:

- ``effnet``: the EfficientNet-Lite backbones of `picinspector.models.effnet` (``efficientnet-lite0``,
  ``-lite1``, ``-lite2``), pretrained weights from their registry packages, the network of
  `~picinspector.models.effnet._torch`; inputs ``(255 x - 127) / 128``, sides multiples of 32.
- ``dinov2``: a ``transformers`` ``Dinov2Model`` (a folder, a Hub id, ``vit-s14`` ..., ``random:vit-s14``;
  see `picinspector.models.dinov2.load_backbone`); ImageNet normalisation.

Each family lists its *blocks* in input-to-output order, which is what ``--freeze last:N`` /
``--mode partial --unfreeze-last N`` unfreezes (the last N of them), and its *poolings*: how the
backbone's output becomes the heads' input vector.

Needs torch (imported by the training and torch-serving code only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from ._config import IMAGENET_MEAN, IMAGENET_STD, Preprocess


@dataclass(frozen=True)
class Pooling:
    """One way of turning a backbone's output into a vector: ``pool(backbone, x)`` -> (N, width(backbone)).

    A family that can run its blocks in two parts (``prefix`` and ``suffix``, see `BackboneFamily`)
    also gives ``prefix(backbone, x, k)`` -> ``(fixed, h)``: what the first ``k`` blocks contribute to
    the pooled vector and their output map; and ``suffix(backbone, h, fixed, k)`` -> the pooled vector.
    The trainer caches the prefix of a partly frozen backbone (``cache_prefix``).
    """

    pool: Callable[[nn.Module, torch.Tensor], torch.Tensor]
    width: Callable[[nn.Module], int]
    doc: str
    prefix: Callable[[nn.Module, torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]] | None = None
    suffix: Callable[[nn.Module, torch.Tensor, torch.Tensor, int], torch.Tensor] | None = None


@dataclass(frozen=True)
class BackboneFamily:
    """Everything the trainer and the model need to know about one kind of backbone.

    Attributes
    ----------
    name : str
        The family (recorded in config.json as ``backbone.family``).
    owns : callable
        ``owns(backbone_name) -> bool``: whether a ``--backbone`` value belongs to this family.
    load : callable
        ``load(backbone_name) -> (module, source)``: the pretrained network and where it came from.
    rebuild : callable
        ``rebuild(config_dict) -> module``: the same architecture, untrained, from ``config_dict``
        (what `describe` wrote), with no download (loading a trained model).
    describe : callable
        ``describe(module) -> dict``: the JSON that `rebuild` reads.
    blocks : callable
        ``blocks(module) -> list of modules``, input to output: what ``last:N`` unfreezes.
    poolings : dict
        Name -> `Pooling`; ``default_pooling`` names the one used unless told otherwise.
    preprocess : callable
        ``preprocess(short_side, crops) -> Preprocess`` with the family's normalisation.
    head_norm : str
        How the heads normalise their input (``layer`` or ``batch``, see `~._torch.head_mlp`).
    also_partial : callable
        ``also_partial(module) -> list of modules`` trained whenever any block is (DINOv2's final
        layer norm); default none.
    """

    name: str
    owns: Callable[[str], bool]
    load: Callable[[str], tuple[nn.Module, str]]
    rebuild: Callable[[dict[str, Any]], nn.Module]
    describe: Callable[[nn.Module], dict[str, Any]]
    blocks: Callable[[nn.Module], list[nn.Module]]
    poolings: dict[str, Pooling]
    default_pooling: str
    preprocess: Callable[[int, int], Preprocess]
    head_norm: str = "layer"
    also_partial: Callable[[nn.Module], list[nn.Module]] = lambda module: []

    def pooling(self, name: str | None) -> Pooling:
        name = name or self.default_pooling
        try:
            return self.poolings[name]
        except KeyError:
            raise ValueError(f"unknown pooling {name!r} for {self.name} backbones; choose from "
                             f"{', '.join(self.poolings)}") from None


# --------------------------------------------------------------------------------------------------
# EfficientNet-Lite


def _effnet_owns(name: str) -> bool:
    from ..effnet._config import BACKBONES

    return name in BACKBONES


def _effnet_strip(net: nn.Module) -> nn.Module:
    """The backbone without its ImageNet classifier (the heads replace it)."""
    net.dropout = nn.Identity()
    net.classifier = nn.Identity()
    return net


def _effnet_load(name: str) -> tuple[nn.Module, str]:
    from ..effnet._config import get_backbone
    from ..effnet._torch import build

    cfg = get_backbone(name)
    net = _effnet_strip(build(cfg, pretrained=True))
    return net, f"{cfg.name} ({cfg.weights.distribution}, sha256 {cfg.weights.sha256[:12]}, {cfg.license})"


def _effnet_rebuild(config: dict[str, Any]) -> nn.Module:
    from ..effnet._config import get_backbone
    from ..effnet._torch import EfficientNetLite

    return _effnet_strip(EfficientNetLite(get_backbone(config["name"]).arch))


def _effnet_describe(net: nn.Module) -> dict[str, Any]:
    from ..effnet._config import BACKBONES

    name = next(n for n, cfg in BACKBONES.items() if cfg.arch == net.arch)
    cfg = BACKBONES[name]
    return {"name": name, "width_mult": cfg.arch.width_mult, "depth_mult": cfg.arch.depth_mult,
            "tap_channels": cfg.arch.tap_channels(), "weights_sha256": cfg.weights.sha256}


def _effnet_blocks(net: nn.Module) -> list[nn.Module]:
    """The stem, every MBConv block (16 in Lite0) and the head convolution."""
    return [net.stem, *(block for stage in net.stages for block in stage), net.head]


def _mean_std(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = m.mean((2, 3))
    var = (m - mean[:, :, None, None]).square().mean((2, 3))
    return mean, (var + 1e-6).sqrt()  # the epsilon keeps the gradient finite on a constant channel


def _taps(net: nn.Module) -> set[int]:
    """Indices in `_effnet_blocks` whose outputs are the 9 feature maps (stem, stage ends, head)."""
    ends, pos = {0}, 0
    for n in net.arch.stage_repeats():
        pos += n
        ends.add(pos)
    return ends | {pos + 1}


def _run(net: nn.Module, x: torch.Tensor, start: int, stop: int,
         parts: Callable[[torch.Tensor, bool], list[torch.Tensor]]) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Blocks ``start:stop`` on ``x``; ``parts(map, is_head)`` of every tapped map among them."""
    taps, blocks = _taps(net), _effnet_blocks(net)
    out: list[torch.Tensor] = []
    for i in range(start, stop):
        x = blocks[i](x)
        if i in taps:
            out += parts(x, i == len(blocks) - 1)
    return out, x


def _parts_all(m: torch.Tensor, is_head: bool) -> list[torch.Tensor]:
    return list(_mean_std(m))


def _parts_head(m: torch.Tensor, is_head: bool) -> list[torch.Tensor]:
    return [m.mean((2, 3))] if is_head else []


def _pooler(parts: Callable[[torch.Tensor, bool], list[torch.Tensor]]):
    def pool(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export():
            net.check_input(x)
        return torch.cat(_run(net, x, 0, len(_effnet_blocks(net)), parts)[0], 1)

    def prefix(net: nn.Module, x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export():
            net.check_input(x)
        fixed, h = _run(net, x, 0, k, parts)
        return (torch.cat(fixed, 1) if fixed else x.new_zeros((x.shape[0], 0))), h

    def suffix(net: nn.Module, h: torch.Tensor, fixed: torch.Tensor, k: int) -> torch.Tensor:
        rest, _ = _run(net, h, k, len(_effnet_blocks(net)), parts)
        return torch.cat([fixed, *rest], 1)

    return pool, prefix, suffix


_ALL, _HEAD = _pooler(_parts_all), _pooler(_parts_head)


def _effnet_preprocess(short_side: int, crops: int) -> Preprocess:
    from ..effnet._config import Preprocess as NetPreprocess

    p = NetPreprocess()
    return Preprocess(short_side=short_side, crops=crops, mean=(p.mean / 255.0,) * 3, std=(p.std / 255.0,) * 3,
                      multiple=p.multiple)


EFFNET = BackboneFamily(
    name="effnet", owns=_effnet_owns, load=_effnet_load, rebuild=_effnet_rebuild, describe=_effnet_describe,
    blocks=_effnet_blocks,
    poolings={
        "all.meanstd": Pooling(_ALL[0], lambda net: 2 * sum(net.arch.tap_channels()),
                               "per-channel spatial mean and standard deviation of all 9 feature maps (stem, "
                               "7 stages, head conv): the inputs of the shipped quality head", *_ALL[1:]),
        "head.mean": Pooling(_HEAD[0], lambda net: net.arch.head_channels,
                             "global average of the head convolution (what the ImageNet classifier reads)",
                             *_HEAD[1:]),
    },
    default_pooling="all.meanstd", preprocess=_effnet_preprocess, head_norm="batch")


# --------------------------------------------------------------------------------------------------
# DINOv2


def _dinov2_load(name: str) -> tuple[nn.Module, str]:
    from ..dinov2 import load_backbone

    return load_backbone(name)


def _dinov2_rebuild(config: dict[str, Any]) -> nn.Module:
    from transformers import Dinov2Config, Dinov2Model

    return Dinov2Model(Dinov2Config.from_dict(config))


def _pool_cls_mean(backbone: nn.Module, x: torch.Tensor) -> torch.Tensor:
    tokens = backbone(pixel_values=x).last_hidden_state  # layer-normed by Dinov2Model
    return torch.cat([tokens[:, 0], tokens[:, 1:].mean(dim=1)], dim=1)


DINOV2 = BackboneFamily(
    name="dinov2", owns=lambda name: not _effnet_owns(name), load=_dinov2_load, rebuild=_dinov2_rebuild,
    describe=lambda backbone: backbone.config.to_dict(), blocks=lambda backbone: list(backbone.encoder.layer),
    poolings={"cls+mean_patch": Pooling(_pool_cls_mean, lambda backbone: 2 * backbone.config.hidden_size,
                                        "the CLS token next to the mean of the patch tokens (Oquab et al.)")},
    default_pooling="cls+mean_patch",
    preprocess=lambda short_side, crops: Preprocess(short_side=short_side, crops=crops, mean=IMAGENET_MEAN,
                                                    std=IMAGENET_STD),
    also_partial=lambda backbone: [backbone.layernorm])


#: Families by name; `family_of` asks them in this order (DINOv2 takes any name the others do not).
FAMILIES: dict[str, BackboneFamily] = {"effnet": EFFNET, "dinov2": DINOV2}


def get_family(name: str) -> BackboneFamily:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown backbone family {name!r}; choose from {', '.join(FAMILIES)}") from None


def family_of(backbone: str) -> BackboneFamily:
    """The family a ``--backbone`` value belongs to."""
    return next(f for f in FAMILIES.values() if f.owns(backbone))
