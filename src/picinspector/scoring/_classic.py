"""The classic engine: hand-made measures -> attribute scores, quality and a cue-based scene."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..io import Photo
from ..measures import MEASURE_GROUPS
from ..report import SceneResult
from ..scene import estimate_from_cues
from ._attributes import attribute_scores
from ._features import features
from ._model import DEFAULT_MODEL, QualityModel
from ._quality import quality_score


class ClassicEngine:
    """Training-free measures, a small fitted quality model; no network, no GPU, no torch.

    Parameters
    ----------
    quality_model : str or Path, optional
        A quality-model file made by ``picinspector fit-quality``; by default the one shipped in
        the package (fitted on BIQ2021, see README). ``"handmade"`` uses the hand-calibrated
        combination of `._quality` instead of a fitted model.
    """

    name = "classic"

    def __init__(self, quality_model: str | Path | None = "handmade") -> None:  # STAGING: fitted model next
        if quality_model == "handmade":
            self.model = None
        else:
            self.model = QualityModel.load(DEFAULT_MODEL if quality_model is None else quality_model)

    def quality(self, measures: dict[str, Any], attributes: dict[str, float]) -> float:
        if self.model is None:
            return quality_score(measures, attributes)
        return self.model.score(features(measures))

    def predict(self, photo: Photo, measures: dict[str, Any]) -> tuple[dict[str, float], SceneResult]:
        attrs = attribute_scores(measures)
        scores = {"quality": self.quality(measures, attrs), **attrs}
        cues = {o.name: measures[o.name] for o in MEASURE_GROUPS["scene_cues"].outputs}
        est = estimate_from_cues(cues)
        scene = SceneResult(label=est.label, probabilities=dict(est.probabilities), method=est.method,
                            confidence=float(est.confidence))
        return scores, scene
