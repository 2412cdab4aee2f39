"""The effnet engine: a pretrained EfficientNet-Lite on onnxruntime, with fitted quality and scene heads.

Per photo, the shipped ONNX graph runs once per shorter side the heads need, on the working image
that the classic measures already use (no second decode). The quality head reads pooled statistics
of several stages plus classic features; the scene head reads ImageNet class groups, the backbone's
embedding and the classic scene cues (faces, night lights) that ImageNet does not teach. The five
attribute scores stay the calibrated classic ones. No torch: NumPy, OpenCV and onnxruntime.

With ``model=RUN_DIR`` (``--engine effnet --model RUN_DIR``) the engine serves a fine-tuned network
instead (``picinspector train --backbone efficientnet-liteN``): the run's ``model.onnx`` (backbone and
heads in one graph) on the run's test crops, averaged. The scores it learnt come from it; the others
(BIQ2021 and KonIQ teach quality only) are the classic ones, and the scene comes from the run's scene
head when it learnt scenes, else from the shipped scene head on the stock graph.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ...report import SCORE_NAMES, SceneResult
from ._heads import QUALITY_HEAD, SCENE_HEAD, QualityHead, SceneHead, check_same_backbone, classic_values, needed_sides
from ._runtime import Backbone, GraphUnavailable, graph_path, onnxruntime_available, session


class FineTuned:
    """A fine-tuned EfficientNet-Lite multi-task run (its ``config.json`` and ``model.onnx``) on onnxruntime."""

    def __init__(self, folder: str | os.PathLike[str], threads: int = 1) -> None:
        from ..multitask._config import CONFIG_FILE, ONNX_FILE, exif_vector, read_config

        self.folder = Path(folder).expanduser().resolve()
        config = read_config(self.folder, "effnet", files=(CONFIG_FILE, ONNX_FILE))
        if config.family != "effnet":
            raise ValueError(f"{self.folder} holds a {config.family} model: serve it with --engine {config.family} "
                             f"--model {self.folder}")
        self.config, self.path, self.threads = config, self.folder / ONNX_FILE, max(1, int(threads))
        self._exif = exif_vector

    def forward(self, rgb: np.ndarray, exif: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scores (0-1, ``config.heads.scores`` order), scene probabilities (independent sigmoids) and the
        unit-norm embedding of one photo's working image, averaged over the run's test crops."""
        views = np.ascontiguousarray(self.config.preprocess.raw_views(rgb, distinct=True), dtype=np.float32)
        feeds = {"image": views}
        if self.config.heads.exif:
            feeds["exif"] = np.repeat(self._exif(exif)[None], len(views), 0)
        scores, logits, emb = session(self.path, self.threads).run(["scores", "scene_logits", "embedding"], feeds)
        probs = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        e = emb.mean(0)
        return scores.mean(0), probs.mean(0), e / max(float(np.linalg.norm(e)), 1e-12)


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
              scene_head: str | os.PathLike[str] | None = None, model: str | os.PathLike[str] | None = None) -> None:
        """Raise what the constructor would (missing onnxruntime, graph or heads, a run folder that is not
        a fine-tuned EfficientNet-Lite), loading only the small head files."""
        if not onnxruntime_available():
            raise GraphUnavailable("the effnet engine needs onnxruntime: pip install onnxruntime")
        if model is not None:
            if quality_head is not None:
                raise ValueError("--model RUN_DIR brings its own quality head; give one or the other")
            FineTuned(model)
        q, s = _heads(quality_head, scene_head)
        path = graph_path(check_same_backbone([q.spec, s.spec]))
        if not path.is_file() and path.parent != Path(__file__).resolve().parent:
            from ._runtime import ensure_graph

            ensure_graph(q.spec.backbone)

    def __init__(self, quality_head: str | os.PathLike[str] | None = None,
                 scene_head: str | os.PathLike[str] | None = None, threads: int = 1,
                 model: str | os.PathLike[str] | None = None) -> None:
        self.check(quality_head, scene_head, model)
        #: The fine-tuned run served (``model=RUN_DIR``), or None for the shipped heads.
        self.finetuned = FineTuned(model, threads) if model is not None else None
        self.quality_head, self.scene_head = _heads(quality_head, scene_head)
        backbone = check_same_backbone([self.quality_head.spec, self.scene_head.spec])
        self.backbone = Backbone(backbone, threads=threads)
        ft = self.finetuned
        self._stock_scene = ft is None or not ft.config.trained_scenes
        self.sides = (needed_sides(self.quality_head.spec, self.scene_head.spec) if ft is None
                      else needed_sides(self.scene_head.spec) if self._stock_scene else [])
        #: The shorter side whose embedding `embed` returns (`EMBED_SIDE`; the stock backbone's, also
        #: beside a fine-tuned run, so that signatures of one shoot compare whatever model scored it).
        self.embed_side = EMBED_SIDE
        self.guards = ft is None and bool(self.quality_head.model.meta.get("guards", False))

    def use_threads(self, threads: int) -> None:
        """Run the graph on ``threads`` intra-op threads (one cached session per count and process)."""
        self.backbone.threads = max(1, int(threads))
        if self.finetuned is not None:
            self.finetuned.threads = max(1, int(threads))

    def outputs(self, photo: Any) -> dict[int, Any]:
        """The graph's outputs for a photo at each shorter side the heads need."""
        return {side: self.backbone.run(photo.rgb, side) for side in self.sides}

    def prepare(self, photo: Any) -> dict[int, Any]:
        """Everything the network gives for a photo: the outputs at each side the heads need and at
        `EMBED_SIDE` (the `~picinspector.Inspector` runs this beside the classic measures and passes
        it to `predict`). A fine-tuned run needs the measures' photo only in `predict`: nothing here."""
        if self.finetuned is not None:
            return {}
        sides = sorted({*self.sides, self.embed_side})
        return {side: self.backbone.run(photo.rgb, side) for side in sides}

    def embed(self, photo: Any) -> np.ndarray:
        """The photo's unit-norm embedding (float32), for finding near-duplicates."""
        return np.asarray(self.backbone.run(photo.rgb, self.embed_side).embedding, dtype=np.float32)

    def _predict_finetuned(self, photo: Any, measures: dict[str, Any]) -> tuple[dict[str, float], SceneResult,
                                                                                 dict[str, Any]]:
        from ...scoring import attribute_scores

        config = self.finetuned.config
        values, probs, _ = self.finetuned.forward(photo.rgb, photo.exif)
        learnt = {n: 100.0 * float(np.clip(v, 0.0, 1.0)) for n, v in zip(config.heads.scores, values)}
        scores = {**attribute_scores(measures), **{n: learnt[n] for n in config.trained_scores if n in learnt}}
        if self._stock_scene:
            outs = self.outputs(photo)
            p = self.scene_head.predict(outs, classic_values(self.scene_head.spec, measures))
        else:
            p = dict(zip(config.heads.scenes, (float(v) for v in probs)))
        p = {k: round(v, 4) for k, v in p.items()}
        label = max(p, key=p.get)
        scene = SceneResult(label=label, probabilities=p, method="effnet", confidence=p[label])
        return {n: scores[n] for n in SCORE_NAMES}, scene, {"embedding": self.embed(photo)}

    def predict(self, photo: Any, measures: dict[str, Any], prepared: dict[int, Any] | None = None,
                ) -> tuple[dict[str, float], SceneResult, dict[str, Any]]:
        """Scores, scene and extras (the embedding); ``prepared`` is what `prepare` gave for this photo
        (run here when not given)."""
        from ...scoring import attribute_scores
        from ...scoring._quality import guard_factor

        if self.finetuned is not None:
            return self._predict_finetuned(photo, measures)
        outs = self.prepare(photo) if prepared is None else prepared
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
        extras = {"embedding": np.asarray(outs[self.embed_side].embedding, dtype=np.float32)
                  if self.embed_side in outs else self.embed(photo)}
        return {n: scores[n] for n in SCORE_NAMES}, scene, extras
