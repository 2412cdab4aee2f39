"""Export an EfficientNet-Lite backbone to the ONNX graph that inference runs (needs torch and onnx).

    python -m picinspector.models.effnet.export efficientnet-lite0            # the shipped graph, in place
    python -m picinspector.models.effnet.export efficientnet-lite1 -o DIR     # any backbone, anywhere
    python -m picinspector.models.effnet.export efficientnet-lite0 --check    # regenerate, compare the hash
    python -m picinspector.models.effnet.export --classes-from timm-1.0.31-py3-none-any.whl   # class names

Why the Lite0 graph is shipped inside the package and not built at first use: building it needs the
torch model (or unpickling the ``.pth``, which needs torch too), and the core install must not need
torch. ``torch.onnx.export`` with the TorchScript exporter (``dynamo=False``), a fixed opset and
constant folding writes the same bytes for the same torch version, weights and CPU kind, so the
file's SHA-256 is recorded in `~._config.BACKBONES`. On another CPU the folded constants (batch norm
into convolution) can round their last bit differently (seen: 94 of the tensors, at most 1.7e-7 of
their largest value, on an AVX-512 machine). So ``--check`` (and a test, where torch is installed)
proves that this command regenerates the graph with `same_graph`: the same nodes, the same
initializer names, shapes and types, and every value within `GRAPH_RTOL` of its tensor's largest.

The graph (one run gives everything the heads need, no post-processing in NumPy):

- input ``image``: float32 (N, H, W, 3), sRGB in [0, 1]; H and W multiples of 32 (any size);
- output ``stats``: float32 (N, D), per feature map of `~._config.TAP_NAMES` the spatial mean of
  each channel, then the spatial standard deviation of each channel (map after map: stem mean, stem
  std, stage1 mean, ...); `stats_layout` gives the slices;
- output ``embedding``: float32 (N, 1280), the globally pooled head features divided by their L2 norm
  (what the classifier reads; for finding near-duplicates);
- output ``logits``: float32 (N, 1000), ImageNet-1k class logits.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import warnings
from pathlib import Path

import numpy as np

from ._config import TAP_NAMES, BackboneCfg, get_backbone

#: Graph input and output names (the runtime reads these).
INPUT = "image"
OUTPUTS = ("stats", "embedding", "logits")
#: The ImageNet class names beside the graph (see `write_class_names`).
CLASS_NAMES_FILE = "imagenet_classes.txt"


def stats_layout(cfg: BackboneCfg) -> dict[str, tuple[int, int]]:
    """``{"<tap>.mean" | "<tap>.std": (start, stop)}``: where each block of ``stats`` lies."""
    out, pos = {}, 0
    for name, channels in zip(TAP_NAMES, cfg.arch.tap_channels()):
        for kind in ("mean", "std"):
            out[f"{name}.{kind}"] = (pos, pos + channels)
            pos += channels
    return out


def graph_module(cfg: BackboneCfg, pretrained: bool = True):
    """The torch module that is exported: normalisation, backbone, pooled statistics, classifier."""
    import torch
    from torch import nn

    from ._torch import build, normalise

    net = build(cfg, pretrained=pretrained)

    class Graph(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, image: torch.Tensor):
            maps = self.net.forward_features(normalise(image, cfg.preprocess))
            parts = []
            for m in maps:
                mean = m.mean((2, 3), keepdim=True)
                std = (m - mean).square().mean((2, 3)).sqrt()
                parts += [mean.flatten(1), std]
            pooled = parts[-2]  # the head map's mean
            embedding = pooled / pooled.norm(dim=1, keepdim=True).clamp_min(1e-12)
            return torch.cat(parts, 1), embedding, self.net.classifier(pooled)

    return Graph().eval()


def export_bytes(cfg: BackboneCfg | str, pretrained: bool = True) -> bytes:
    """The ONNX graph of backbone ``cfg`` as bytes (deterministic for a given torch version)."""
    import torch

    cfg = get_backbone(cfg) if isinstance(cfg, str) else cfg
    module = graph_module(cfg, pretrained)
    example = torch.rand(1, 224, 224, 3, generator=torch.Generator().manual_seed(0))
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter's notes on constant folding of Slice and on its deprecation.
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), buf, input_names=[INPUT], output_names=list(OUTPUTS),
                          dynamic_axes={INPUT: {0: "batch", 1: "height", 2: "width"},
                                        **{o: {0: "batch"} for o in OUTPUTS}},
                          opset_version=cfg.graph.opset, do_constant_folding=True, dynamo=False)
    return _with_metadata(buf.getvalue(), cfg)


def _with_metadata(data: bytes, cfg: BackboneCfg) -> bytes:
    """Record what the graph is inside it (metadata_props), so that a file names its own origin."""
    import json

    import onnx

    model = onnx.load_from_string(data)
    meta = {"picinspector.backbone": cfg.name, "picinspector.weights_sha256": cfg.weights.sha256,
            "picinspector.weights_package": cfg.weights.distribution, "picinspector.license": cfg.license,
            "picinspector.preprocess": json.dumps({"input": "float32 NHWC sRGB in [0, 1]",
                                                   "normalise": f"(255 x - {cfg.preprocess.mean:g}) / "
                                                                f"{cfg.preprocess.std:g}", "sides": "multiples of 32"}),
            "picinspector.stats_layout": json.dumps(stats_layout(cfg))}
    del model.metadata_props[:]
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    model.producer_name = "picinspector"
    return model.SerializeToString()


def export(cfg: BackboneCfg | str, path: str | Path) -> str:
    """Write the graph to ``path`` (atomically) and return its SHA-256."""
    data = export_bytes(cfg)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)
    return hashlib.sha256(data).hexdigest()


def write_class_names(wheel: str | Path, path: str | Path) -> None:
    """Write the 1000 ImageNet-1k class names, in the classifier's order, from timm's wheel.

    timm ships them as data (``timm/data/_info/imagenet_synsets.txt``: the WordNet ids in class order;
    ``imagenet_synset_to_lemma.txt``: their lemmas). The wheel is read as a zip file; timm itself is
    never imported. Output lines: ``index<TAB>wnid<TAB>lemmas``, after a header naming the source.
    """
    import zipfile

    with zipfile.ZipFile(wheel) as z:
        wnids = z.read("timm/data/_info/imagenet_synsets.txt").decode().split()
        lemmas = dict(line.split("\t", 1) for line in
                      z.read("timm/data/_info/imagenet_synset_to_lemma.txt").decode().splitlines() if "\t" in line)
    if len(wnids) != 1000:
        raise ValueError(f"{wheel}: expected 1000 ImageNet-1k synsets, found {len(wnids)}")
    lines = [f"# ImageNet-1k class names in the classifier's order (index, WordNet id, lemmas), written by "
             f"`python -m picinspector.models.effnet.export --classes-from {Path(wheel).name}` from timm's "
             "data files timm/data/_info/imagenet_synsets.txt and imagenet_synset_to_lemma.txt (timm, Apache-2.0)."]
    lines += [f"{i}\t{w}\t{lemmas[w].strip()}" for i, w in enumerate(wnids)]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


#: How far a regenerated graph's constants may differ from the shipped ones, relative to each tensor's
#: largest absolute value (float32 rounding of the folded constants is ~6e-8).
GRAPH_RTOL = 1e-6


def same_graph(a: bytes, b: bytes, rtol: float = GRAPH_RTOL) -> tuple[bool, str]:
    """Whether two serialised ONNX graphs compute the same thing: (verdict, a line saying how).

    Byte-for-byte equal, or equal nodes (operators, wiring, attributes), inputs, outputs and metadata
    with every initializer of the same name, shape and type, integers equal and floats within
    ``rtol`` of the tensor's largest absolute value.
    """
    if a == b:
        return True, "byte for byte"
    import onnx
    from onnx import numpy_helper

    ga, gb = onnx.load_from_string(a), onnx.load_from_string(b)
    if list(ga.graph.node) != list(gb.graph.node):
        return False, "the nodes differ"
    if (list(ga.graph.input), list(ga.graph.output)) != (list(gb.graph.input), list(gb.graph.output)):
        return False, "the inputs or outputs differ"
    if list(ga.metadata_props) != list(gb.metadata_props) or list(ga.opset_import) != list(gb.opset_import):
        return False, "the metadata or opset differ"
    ia = {t.name: numpy_helper.to_array(t) for t in ga.graph.initializer}
    ib = {t.name: numpy_helper.to_array(t) for t in gb.graph.initializer}
    if set(ia) != set(ib):
        return False, "the initializer names differ"
    worst, changed = 0.0, 0
    for name, x in ia.items():
        y = ib[name]
        if x.shape != y.shape or x.dtype != y.dtype:
            return False, f"initializer {name} is {y.dtype}{y.shape}, expected {x.dtype}{x.shape}"
        if x.dtype.kind != "f":
            if not np.array_equal(x, y):
                return False, f"integer initializer {name} differs"
            continue
        if x.size and not np.array_equal(x, y):
            changed += 1
            rel = float(np.abs(x.astype(np.float64) - y).max()) / max(float(np.abs(x).max()), 1e-30)
            worst = max(worst, rel)
            if rel > rtol:
                return False, f"initializer {name} differs by {rel:.2g} of its largest value (limit {rtol:g})"
    return True, (f"same nodes; {changed} of {len(ia)} constants differ in the last bits, at most {worst:.2g} of "
                  "their largest value (constant folding on this CPU)")


def main(argv: list[str] | None = None) -> int:
    from ._runtime import PACKAGE_DIR, graph_path

    ap = argparse.ArgumentParser(prog="python -m picinspector.models.effnet.export", description=__doc__.split("\n")[0])
    ap.add_argument("backbone", nargs="?", help="efficientnet-lite0, efficientnet-lite1 or efficientnet-lite2")
    ap.add_argument("--classes-from", metavar="TIMM_WHEEL",
                    help="Write imagenet_classes.txt from timm's wheel (`pip download --no-deps timm`).")
    ap.add_argument("-o", "--output-dir", help="Folder to write into (default: where picinspector looks for it).")
    ap.add_argument("--check", action="store_true",
                    help="Regenerate in memory and compare with the shipped graph (`same_graph`); write nothing.")
    args = ap.parse_args(argv)
    if args.classes_from:
        write_class_names(args.classes_from, PACKAGE_DIR / CLASS_NAMES_FILE)
        print(PACKAGE_DIR / CLASS_NAMES_FILE)
        return 0
    if not args.backbone:
        ap.error("name a backbone (or --classes-from)")
    cfg = get_backbone(args.backbone)
    if args.check:
        data = export_bytes(cfg)
        digest = hashlib.sha256(data).hexdigest()
        shipped = graph_path(cfg)
        if not shipped.is_file():
            print(f"{cfg.name}: {digest}; no graph at {shipped} to compare with", file=sys.stderr)
            return 1
        ok, how = same_graph(shipped.read_bytes(), data)
        print(f"{cfg.name}: sha256 {digest} (recorded {cfg.graph.sha256}); "
              f"{'matches the shipped graph' if ok else 'DIFFERS from the shipped graph'}: {how}")
        return 0 if ok else 1
    path = Path(args.output_dir) / cfg.graph.filename if args.output_dir else graph_path(cfg)
    digest = export(cfg, path)
    print(f"{path}: sha256 {digest}")
    if cfg.graph.sha256 and digest != cfg.graph.sha256:
        print(f"note: the recorded SHA-256 is {cfg.graph.sha256} (another torch version?)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
