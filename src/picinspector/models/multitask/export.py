"""A trained EfficientNet-Lite multi-task model (backbone + heads) as one ONNX graph (needs torch and onnx).

    python -m picinspector.models.multitask.export RUN_DIR          # writes RUN_DIR/model.onnx
    python -m picinspector.models.multitask.export RUN_DIR --check  # and compares it with torch

The trainer writes the graph itself when an EfficientNet-Lite run ends; ``--engine effnet --model
RUN_DIR`` then serves the run on onnxruntime without torch. The graph:

- input ``image``: float32 (N, H, W, 3), sRGB in [0, 1], H and W multiples of 32 (the run's test
  crops: shorter side ``preprocessing.short_side``); the normalisation is inside the graph;
- input ``exif`` (only for a model trained with ``--exif``): float32 (N, 6), `~._config.exif_vector`;
- output ``scores``: float32 (N, 6), the score head on the 0-1 scale (``labels.scores`` order);
- output ``scene_logits``: float32 (N, 9), the scene head (independent sigmoids);
- output ``embedding``: float32 (N, 1280), the globally pooled head features divided by their L2
  norm (as in the stock graph, for finding near-duplicates).

``torch.onnx.export`` with the TorchScript exporter (``dynamo=False``), opset 18, constant folding.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._config import EXIF_FEATURES, ONNX_FILE, ModelConfig
from ._torch import MultiTaskNet, load_model

INPUTS = ("image", "exif")
OUTPUTS = ("scores", "scene_logits", "embedding")
OPSET = 18


class GraphModule(nn.Module):
    """What is exported: normalisation, backbone, pooling, heads, and the embedding beside them."""

    def __init__(self, model: MultiTaskNet, config: ModelConfig) -> None:
        super().__init__()
        if config.family != "effnet":
            raise ValueError(f"only EfficientNet-Lite models are exported to ONNX (this is {config.family})")
        self.model = model.eval()
        pre = config.preprocess
        self.register_buffer("mean", torch.tensor(pre.mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(pre.std, dtype=torch.float32))

    def forward(self, image: torch.Tensor, exif: torch.Tensor | None = None):
        x = ((image - self.mean) / self.std).permute(0, 3, 1, 2)
        net = self.model.backbone
        maps = net.forward_features(x)
        feats = _pool_from_maps(self.model, maps)
        out = self.model.from_features(feats, exif)
        head = maps[-1].mean((2, 3))
        embedding = head / head.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return out["scores"], out["scene_logits"], embedding


def _pool_from_maps(model: MultiTaskNet, maps: list[torch.Tensor]) -> torch.Tensor:
    """The model's pooling computed from maps already there (one backbone pass for both outputs)."""
    from .backbones import _mean_std

    pooling = model.heads.pooling or model.family.default_pooling
    if pooling == "all.meanstd":
        parts: list[torch.Tensor] = []
        for m in maps:
            parts += _mean_std(m)
        return torch.cat(parts, 1)
    if pooling == "head.mean":
        return maps[-1].mean((2, 3))
    raise ValueError(f"no ONNX export for pooling {pooling!r}")


def export_bytes(model: MultiTaskNet, config: ModelConfig) -> bytes:
    """The graph as bytes, with what it is recorded in its metadata."""
    import onnx

    module = GraphModule(model.cpu(), config).eval()
    side = config.preprocess.short_side
    example: tuple[Any, ...] = (torch.rand(1, side, side, 3, generator=torch.Generator().manual_seed(0)),)
    inputs = ["image"]
    if config.heads.exif:
        example += (torch.zeros(1, EXIF_FEATURES),)
        inputs.append("exif")
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and constant-folding notes
        torch.onnx.export(module, example, buf, input_names=inputs, output_names=list(OUTPUTS),
                          dynamic_axes={"image": {0: "batch", 1: "height", 2: "width"},
                                        **({"exif": {0: "batch"}} if config.heads.exif else {}),
                                        **{o: {0: "batch"} for o in OUTPUTS}},
                          opset_version=OPSET, do_constant_folding=True, dynamo=False)
    graph = onnx.load_from_string(buf.getvalue())
    meta = {"picinspector.format": "picinspector-multitask-onnx", "picinspector.backbone": config.backbone_name or "",
            "picinspector.scores": json.dumps(list(config.heads.scores)),
            "picinspector.scenes": json.dumps(list(config.heads.scenes)),
            "picinspector.preprocess": json.dumps({"input": "float32 NHWC sRGB in [0, 1]",
                                                   "short_side": config.preprocess.short_side,
                                                   "mean": list(config.preprocess.mean),
                                                   "std": list(config.preprocess.std)})}
    del graph.metadata_props[:]
    for key, value in meta.items():
        graph.metadata_props.add(key=key, value=value)
    graph.producer_name = "picinspector"
    return graph.SerializeToString()


def export_run(run: str | os.PathLike[str]) -> Path:
    """Write ``RUN_DIR/model.onnx`` from the run's ``config.json`` and ``model.safetensors`` (atomically)."""
    run = Path(run)
    model, config = load_model(run, engine="effnet")
    data = export_bytes(model, config)
    path = run / ONNX_FILE
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def max_difference(run: str | os.PathLike[str], image: Any) -> dict[str, float]:
    """Largest absolute difference between the ONNX graph (onnxruntime) and the torch model on ``image``
    ((N, H, W, 3) float32 in [0, 1]), per output."""
    import numpy as np
    import onnxruntime as ort

    run = Path(run)
    model, config = load_model(run, engine="effnet")
    module = GraphModule(model, config).eval()
    x = np.ascontiguousarray(image, dtype=np.float32)
    feeds = {"image": x}
    ex = None
    if config.heads.exif:
        ex = np.zeros((len(x), EXIF_FEATURES), np.float32)
        feeds["exif"] = ex
    with torch.no_grad():
        ref = module(torch.from_numpy(x), None if ex is None else torch.from_numpy(ex))
    sess = ort.InferenceSession(str(run / ONNX_FILE), providers=["CPUExecutionProvider"])
    got = sess.run(list(OUTPUTS), feeds)
    return {name: float(np.abs(g - r.numpy()).max()) for name, g, r in zip(OUTPUTS, got, ref)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m picinspector.models.multitask.export",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("run", help="a `picinspector train --backbone efficientnet-liteN` run folder")
    ap.add_argument("--check", action="store_true", help="also compare the graph with torch on a random input")
    args = ap.parse_args(argv)
    path = export_run(args.run)
    print(path)
    if args.check:
        import numpy as np

        from ._config import read_config

        side = read_config(args.run, "effnet").preprocess.short_side
        x = np.random.default_rng(0).random((2, side, side + 32, 3), dtype=np.float32)
        print(json.dumps(max_difference(args.run, x)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
