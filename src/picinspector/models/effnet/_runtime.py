"""Running an EfficientNet-Lite graph with onnxruntime: where the graph is, one session per process,
photo -> network input. NumPy, OpenCV and onnxruntime only (no torch).

The Lite0 graph ships inside the package; other backbones' graphs are exported on demand into the
user's cache folder (``$PICINSPECTOR_CACHE``, else ``$XDG_CACHE_HOME/picinspector``, else
``~/.cache/picinspector``), which needs torch and the weight package, and fails with a message
saying what to install when they are missing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ._config import BackboneCfg, get_backbone

#: The folder of the shipped graph (and heads).
PACKAGE_DIR = Path(__file__).resolve().parent

#: Bump when `~.export` changes what a graph computes: on-demand graphs in the cache are then remade.
GRAPH_REVISION = 1

#: The longest input side, as a multiple of the shorter one: wider photos are reduced further, so that
#: a panorama costs no more than a 2:1 photo.
MAX_ASPECT = 2.0


class GraphUnavailable(ImportError):
    """The ONNX graph of a backbone is not there and cannot be made here; the message says why."""


def cache_dir() -> Path:
    """Where on-demand graphs go."""
    root = os.environ.get("PICINSPECTOR_CACHE")
    if root:
        return Path(root).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "picinspector"


def graph_path(cfg: BackboneCfg | str) -> Path:
    """Where the graph of ``cfg`` is (or would be): the package for the shipped one, else the cache,
    under a name that changes with the weights and `GRAPH_REVISION`."""
    cfg = get_backbone(cfg) if isinstance(cfg, str) else cfg
    if cfg.graph.shipped:
        return PACKAGE_DIR / cfg.graph.filename
    stem = Path(cfg.graph.filename).stem
    return cache_dir() / "effnet" / f"{stem}-{cfg.weights.sha256[:8]}-r{GRAPH_REVISION}.onnx"


def onnxruntime_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def ensure_graph(cfg: BackboneCfg | str, export: bool = True) -> Path:
    """The graph file of ``cfg``, exported into the cache first when it is not there (``export``).

    Raises
    ------
    GraphUnavailable
        The shipped graph is missing from the installation, or an on-demand graph would need torch,
        onnx or the weight package, which are not installed.
    """
    cfg = get_backbone(cfg) if isinstance(cfg, str) else cfg
    path = graph_path(cfg)
    if path.is_file():
        return path
    regen = f"python -m picinspector.models.effnet.export {cfg.name}"
    if cfg.graph.shipped:
        raise GraphUnavailable(f"the {cfg.name} graph {path} is missing from this installation; reinstall "
                               f"picinspector, or regenerate it with `{regen}` (needs torch and "
                               f'"picinspector[deep]")')
    if not export:
        raise GraphUnavailable(f"the {cfg.name} graph is not in {path.parent}; make it with `{regen}`")
    try:
        import onnx  # noqa: F401
        import torch  # noqa: F401

        from ._config import WeightsPackageMissing
        from .export import export as export_graph
    except ImportError as exc:
        raise GraphUnavailable(
            f"{cfg.name} is exported to ONNX on first use, which needs PyTorch and onnx ({exc}): pip install "
            f'torch==2.13.0 (CPU build), then pip install "picinspector[deep]"; or use efficientnet-lite0, '
            "which ships ready") from None
    try:
        export_graph(cfg, path)
    except WeightsPackageMissing as exc:
        raise GraphUnavailable(f"{cfg.name}: {exc}") from None
    return path


@lru_cache(maxsize=8)
def _session(path: str, mtime_ns: int, threads: int) -> Any:
    """One onnxruntime session per graph file and thread count per process (sessions are
    thread-safe for `run`; building one takes a tenth of a second)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Threads that spin while waiting would take CPU from the measure threads running beside them.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def session(path: str | Path, threads: int = 1) -> Any:
    """The cached onnxruntime session for a graph file."""
    path = Path(path)
    return _session(str(path), path.stat().st_mtime_ns, max(1, int(threads)))


def input_size(height: int, width: int, short_side: int, multiple: int = 32) -> tuple[int, int]:
    """(H, W) of the network input for a photo: the shorter side scaled to ``short_side``, the longer
    one at most `MAX_ASPECT` times that, both rounded to multiples of ``multiple`` (at least one)."""
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    scale = short_side / min(height, width)
    scale = min(scale, MAX_ASPECT * short_side / max(height, width))
    h = max(multiple, int(round(height * scale / multiple)) * multiple)
    w = max(multiple, int(round(width * scale / multiple)) * multiple)
    return h, w


def network_input(rgb: np.ndarray, short_side: int, multiple: int = 32) -> np.ndarray:
    """A photo's float32 sRGB pixels in [0, 1] (H, W, 3) resized for the network: (1, h, w, 3),
    area averaging when reducing, bicubic when enlarging."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {rgb.shape}")
    h, w = input_size(rgb.shape[0], rgb.shape[1], short_side, multiple)
    src = np.ascontiguousarray(rgb, dtype=np.float32)
    if (h, w) != src.shape[:2]:
        shrink = h * w < src.shape[0] * src.shape[1]
        src = cv2.resize(src, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
        if not shrink:
            src = np.clip(src, 0.0, 1.0)
    return src[None]


@dataclass(frozen=True)
class Outputs:
    """What one run of the graph gives (see `~.export`)."""

    stats: np.ndarray  # (D,) per-channel spatial means and standard deviations of every tapped map
    embedding: np.ndarray  # (C,) unit-norm pooled head features
    logits: np.ndarray  # (1000,) ImageNet logits

    def probabilities(self) -> np.ndarray:
        z = self.logits.astype(np.float64) - self.logits.max()
        e = np.exp(z)
        return e / e.sum()


class Backbone:
    """A backbone's graph on onnxruntime.

    Parameters
    ----------
    name : str
        A name in `~._config.BACKBONES`.
    threads : int
        onnxruntime intra-op threads (the inspector's thread count; 1 in batch workers).
    export : bool
        Export a missing on-demand graph into the cache (needs torch).
    """

    def __init__(self, name: str = "efficientnet-lite0", threads: int = 1, export: bool = True) -> None:
        if not onnxruntime_available():
            raise GraphUnavailable("the effnet engine needs onnxruntime: pip install onnxruntime")
        self.cfg = get_backbone(name)
        self.path = ensure_graph(self.cfg, export=export)
        self.threads = max(1, int(threads))

    @property
    def session(self) -> Any:
        return session(self.path, self.threads)

    def run_input(self, batch: np.ndarray) -> list[Outputs]:
        """Run a prepared batch (N, H, W, 3) float32 in [0, 1]."""
        stats, emb, logits = self.session.run(None, {"image": np.ascontiguousarray(batch, np.float32)})
        return [Outputs(stats[i], emb[i], logits[i]) for i in range(len(batch))]

    def run(self, rgb: np.ndarray, short_side: int) -> Outputs:
        """Run one photo (H, W, 3) float32 sRGB in [0, 1] with its shorter side at ``short_side``."""
        return self.run_input(network_input(rgb, short_side, self.cfg.preprocess.multiple))[0]
