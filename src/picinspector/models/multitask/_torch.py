"""The multi-task network in PyTorch: any backbone family + a score head + a scene head; saving and loading.

``MultiTaskNet(backbone, heads, family)`` pools the backbone's output as its family says
(`~.backbones`), optionally appends the capture settings (SPAQ's MT-E), and reads the vector with
two small MLPs: six scores on a 0-1 scale and nine scene logits (independent sigmoids: SPAQ
scenes are multi-label). Parameter names are ``backbone.*``, ``score_head.*``, ``scene_head.*``
for every family (the names DINOv2-only versions wrote, so their run folders still load).

Weights are written with safetensors and read with `safetensors.torch.load_file`; nothing is unpickled.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ._config import (CONFIG_FILE, EXIF_FEATURES, FORMAT, WEIGHTS_FILE, HeadConfig, ModelConfig, read_config,
                      write_config)
from .backbones import BackboneFamily, get_family

#: Input normalisation of each head (`HeadConfig.norm`).
HEAD_NORMS = {"layer": nn.LayerNorm, "batch": nn.BatchNorm1d}


def head_mlp(n_in: int, hidden: int, n_out: int, dropout: float, norm: str = "layer") -> nn.Sequential:
    """norm -> Linear -> GELU -> Dropout -> Linear."""
    if norm not in HEAD_NORMS:
        raise ValueError(f"unknown head norm {norm!r}; choose from {', '.join(HEAD_NORMS)}")
    return nn.Sequential(HEAD_NORMS[norm](n_in), nn.Linear(n_in, hidden), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(hidden, n_out))


class MultiTaskNet(nn.Module):
    """Backbone + score head (len(heads.scores) outputs, 0-1 scale) + scene head (len(heads.scenes) logits).

    Parameters
    ----------
    backbone : nn.Module
        A network of ``family`` (`~.backbones.FAMILIES`).
    heads : HeadConfig
        ``in_features`` must equal the width of the family's pooling ``heads.pooling``.
    family : str or BackboneFamily
    """

    def __init__(self, backbone: nn.Module, heads: HeadConfig, family: str | BackboneFamily = "dinov2") -> None:
        super().__init__()
        self.family = get_family(family) if isinstance(family, str) else family
        self._pooling = self.family.pooling(heads.pooling)
        width = self._pooling.width(backbone)
        if heads.in_features != width:
            raise ValueError(f"heads expect {heads.in_features} features; the backbone gives {width} "
                             f"({heads.pooling or self.family.default_pooling} pooling)")
        self.backbone = backbone
        self.heads = heads
        self.score_head = head_mlp(heads.head_inputs, heads.hidden, len(heads.scores), heads.dropout, heads.norm)
        self.scene_head = head_mlp(heads.head_inputs, heads.hidden, len(heads.scenes), heads.dropout, heads.norm)

    def blocks(self) -> list[nn.Module]:
        """The backbone's blocks, input to output (what partial training unfreezes from the end)."""
        return self.family.blocks(self.backbone)

    def pooled(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised -> (N, in_features)."""
        return self._pooling.pool(self.backbone, pixel_values)

    def prefix(self, pixel_values: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``k`` blocks: (what they add to the pooled vector, their output map)."""
        if self._pooling.prefix is None:
            raise ValueError(f"{self.family.name} backbones cannot be run in two parts (no prefix cache)")
        return self._pooling.prefix(self.backbone, pixel_values, k)

    def from_prefix(self, h: torch.Tensor, fixed: torch.Tensor, k: int) -> torch.Tensor:
        """The pooled vector from `prefix`'s output: the blocks from ``k`` on."""
        return self._pooling.suffix(self.backbone, h, fixed, k)

    def from_features(self, features: torch.Tensor, exif: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Heads on pooled features (so a frozen backbone's features can be cached)."""
        if self.heads.exif:
            if exif is None:
                exif = features.new_zeros((features.shape[0], EXIF_FEATURES))
            features = torch.cat([features, exif.to(features.dtype)], dim=1)
        return {"scores": self.score_head(features), "scene_logits": self.scene_head(features)}

    def forward(self, pixel_values: torch.Tensor, exif: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return self.from_features(self.pooled(pixel_values), exif)


def build_model(config: ModelConfig) -> MultiTaskNet:
    """An untrained network with the shapes of ``config`` (weights are loaded separately); no download."""
    family = get_family(config.family)
    return MultiTaskNet(family.rebuild(config.backbone_config), config.heads, family)


def save_model(model: MultiTaskNet, config: ModelConfig, folder: str | os.PathLike[str]) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into ``folder`` (created), atomically per file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    tmp = folder / (WEIGHTS_FILE + ".tmp")
    save_file(state, str(tmp), metadata={"format": FORMAT, "family": config.family})
    os.replace(tmp, folder / WEIGHTS_FILE)
    write_config(config, folder)
    return folder


def load_model(folder: str | os.PathLike[str], device: str | torch.device = "cpu",
               engine: str = "dinov2") -> tuple[MultiTaskNet, ModelConfig]:
    """A trained model and its config from a folder written by `save_model` (a training run's folder).

    Raises
    ------
    WeightsNotFound
        The folder, its ``config.json`` or its ``model.safetensors`` is missing.
    ValueError
        The files are not a PicInspector multi-task model, or their shapes disagree.
    """
    config = read_config(folder, engine)
    model = build_model(config)
    state = load_file(str(Path(folder).expanduser() / WEIGHTS_FILE))
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(f"{folder}/{WEIGHTS_FILE} does not match its {CONFIG_FILE}: missing "
                         f"{result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}")
    return model.to(device).eval(), config


def describe_backbone(model: MultiTaskNet) -> dict[str, Any]:
    """What `build_model` needs to rebuild ``model``'s backbone."""
    return model.family.describe(model.backbone)
