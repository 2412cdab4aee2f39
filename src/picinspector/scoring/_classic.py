"""The classic engine: hand-made measures -> attribute scores, quality and a cue-based scene."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from ..io import Photo
from ..measures import MEASURE_GROUPS
from ..report import SceneResult
from ..scene import estimate_from_cues
from ._attributes import attribute_scores
from ._features import features
from ._model import DEFAULT_MODEL, QualityModel
from ._quality import guard_factor, quality_score


@lru_cache(maxsize=4)
def _load_model(path: str, mtime_ns: int) -> QualityModel:
    """Each model file is read once per process (again if it changes on disk); models are read-only."""
    return QualityModel.load(path)


class ClassicEngine:
    """Training-free measures, a small fitted quality model; no network, no GPU, no torch.

    Parameters
    ----------
    quality_model : str or Path, optional
        A quality-model file made by ``picinspector fit-quality``; by default the one shipped in
        the package (`~._model.DEFAULT_MODEL`, fitted on the BIQ2021 training photos: Ahmed et
        al. 2022, doi:10.1117/1.JEI.31.5.053010; see README). ``"handmade"`` uses the
        hand-calibrated combination of `._quality` instead of a fitted model.
    """

    name = "classic"

    def __init__(self, quality_model: str | Path | None = None) -> None:
        if quality_model == "handmade":
            self.model = None
        else:
            path = Path(DEFAULT_MODEL if quality_model is None else quality_model).resolve()
            self.model = _load_model(str(path), path.stat().st_mtime_ns if path.is_file() else 0)

    def quality(self, measures: dict[str, Any], attributes: dict[str, float]) -> float:
        if self.model is None:
            return quality_score(measures, attributes)
        return self.model.score(features(measures)) * guard_factor(measures, attributes)

    def predict(self, photo: Photo, measures: dict[str, Any]) -> tuple[dict[str, float], SceneResult]:
        attrs = attribute_scores(measures)
        scores = {"quality": self.quality(measures, attrs), **attrs}
        cues = {o.name: measures[o.name] for o in MEASURE_GROUPS["scene_cues"].outputs}
        est = estimate_from_cues(cues)
        scene = SceneResult(label=est.label, probabilities=dict(est.probabilities), method=est.method,
                            confidence=float(est.confidence))
        return scores, scene
