"""The effnet engine: a pretrained EfficientNet-Lite on onnxruntime, with fitted quality and scene heads.

Per photo, the shipped ONNX graph runs once per shorter side the heads need, on the working image
that the classic measures already use (no second decode). The quality head reads pooled statistics
of several stages plus classic features; the scene head reads ImageNet class groups, the backbone's
embedding and the classic scene cues (faces, night lights) that ImageNet does not teach. The five
attribute scores stay the calibrated classic ones. No torch: NumPy, OpenCV and onnxruntime.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ...report import SCORE_NAMES, SceneResult
from ._heads import QUALITY_HEAD, SCENE_HEAD, QualityHead, SceneHead, check_same_backbone, classic_values, needed_sides
from ._runtime import Backbone, GraphUnavailable, graph_path, onnxruntime_available


@lru_cache(maxsize=8)
def _quality_head(path: str, mtime_ns: int) -> QualityHead:
    return QualityHead.load(path)


@lru_cache(maxsize=8)
def _scene_head(path: str, mtime_ns: int) -> SceneHead:
    return SceneHead.load(path)


def _mtime(path: Path) -> int:
    return path.stat().st_mtime_ns if path.is_file() else 0


def _heads(quality_head: str | os.PathLike[str] | None,
           scene_head: str | os.PathLike[str] | None) -> tuple[QualityHead, SceneHead]:
    q = Path(QUALITY_HEAD if quality_head is None else quality_head).expanduser().resolve()
    s = Path(SCENE_HEAD if scene_head is None else scene_head).expanduser().resolve()
    return _quality_head(str(q), _mtime(q)), _scene_head(str(s), _mtime(s))


def available() -> bool:
    """Whether the effnet engine can run here with its shipped files: onnxruntime is importable and
    the graph and both heads are in the package (what makes it the default engine)."""
    if not (onnxruntime_available() and QUALITY_HEAD.is_file() and SCENE_HEAD.is_file()):
        return False
    try:
        q, s = _heads(None, None)
        return graph_path(check_same_backbone([q.spec, s.spec])).is_file()
    except (ValueError, OSError):
        return False


#: The shorter side (px) of the photo embedding (`EffnetEngine.embed`, ``Report.extras["embedding"]``),
#: made for finding the same scene again: at 128 px a half-size copy, a re-save, a 17-px motion blur,
#: noise of sigma 20 or a 2-stop exposure step move the embedding little (cosine distance <= 0.19 on the
#: test shoot of tests/test_cull_cli.py, against 0.29-0.33 at 384 px), while different photos stay
#: >= 0.6 apart. One more run of the graph, about a ninth of the 384-px one.
EMBED_SIDE = 128


class EffnetEngine:
    """Scores and scene from EfficientNet-Lite features (``--engine effnet``; the default when it can run).

    Parameters
    ----------
    quality_head, scene_head : str or path-like, optional
        Head files made by ``picinspector fit-quality --engine effnet`` and ``picinspector fit-scene``;
        by default the ones shipped in the package (fitted on BIQ2021: Ahmed et al. 2022,
        doi:10.1117/1.JEI.31.5.053010; see docs/effnet.md).
    threads : int
        onnxruntime intra-op threads (the `~picinspector.Inspector` sets its own thread count here).
    """

    name = "effnet"

    @staticmethod
    def check(quality_head: str | os.PathLike[str] | None = None,
              scene_head: str | os.PathLike[str] | None = None) -> None:
        """Raise what the constructor would (missing onnxruntime, graph or heads), loading only the
        small head files."""
        if not onnxruntime_available():
            raise GraphUnavailable("the effnet engine needs onnxruntime: pip install onnxruntime")
        q, s = _heads(quality_head, scene_head)
        path = graph_path(check_same_backbone([q.spec, s.spec]))
        if not path.is_file() and path.parent != Path(__file__).resolve().parent:
            from ._runtime import ensure_graph

            ensure_graph(q.spec.backbone)

    def __init__(self, quality_head: str | os.PathLike[str] | None = None,
                 scene_head: str | os.PathLike[str] | None = None, threads: int = 1) -> None:
        self.quality_head, self.scene_head = _heads(quality_head, scene_head)
        backbone = check_same_backbone([self.quality_head.spec, self.scene_head.spec])
        self.backbone = Backbone(backbone, threads=threads)
        self.sides = needed_sides(self.quality_head.spec, self.scene_head.spec)
        #: The shorter side whose embedding `embed` returns (`EMBED_SIDE`).
        self.embed_side = EMBED_SIDE
        self.guards = bool(self.quality_head.model.meta.get("guards", False))

    def use_threads(self, threads: int) -> None:
        """Run the graph on ``threads`` intra-op threads (one cached session per count and process)."""
        self.backbone.threads = max(1, int(threads))

    def outputs(self, photo: Any) -> dict[int, Any]:
        """The graph's outputs for a photo at each shorter side the heads need."""
        return {side: self.backbone.run(photo.rgb, side) for side in self.sides}

    def embed(self, photo: Any) -> np.ndarray:
        """The photo's unit-norm embedding (float32), for finding near-duplicates."""
        return np.asarray(self.backbone.run(photo.rgb, self.embed_side).embedding, dtype=np.float32)

    def predict(self, photo: Any, measures: dict[str, Any]) -> tuple[dict[str, float], SceneResult, dict[str, Any]]:
        from ...scoring import attribute_scores
        from ...scoring._quality import guard_factor

        outs = self.outputs(photo)
        attrs = attribute_scores(measures)
        q = self.quality_head.predict(outs, classic_values(self.quality_head.spec, measures))
        quality = 100.0 * min(1.0, max(0.0, q)) if np.isfinite(q) else 0.0
        if self.guards:
            quality *= guard_factor(measures, attrs)
        scores = {"quality": quality, **attrs}
        probs = self.scene_head.predict(outs, classic_values(self.scene_head.spec, measures))
        p = {k: round(v, 4) for k, v in probs.items()}
        label = max(p, key=p.get)
        scene = SceneResult(label=label, probabilities=p, method="effnet", confidence=p[label])
        embedded = outs[self.embed_side] if self.embed_side in outs else self.backbone.run(photo.rgb, self.embed_side)
        extras = {"embedding": np.asarray(embedded.embedding, dtype=np.float32)}
        return {n: scores[n] for n in SCORE_NAMES}, scene, extras
