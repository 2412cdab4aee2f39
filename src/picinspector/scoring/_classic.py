"""The classic engine: hand-made measures -> attribute scores, quality and a cue-based scene."""

from __future__ import annotations

from typing import Any

from ..io import Photo
from ..report import SceneResult
from ..scene import estimate_scene
from ._attributes import attribute_scores
from ._quality import quality_score


class ClassicEngine:
    """Training-free engine: no network, no GPU, no torch."""

    name = "classic"

    def predict(self, photo: Photo, measures: dict[str, Any]) -> tuple[dict[str, float], SceneResult]:
        attrs = attribute_scores(measures)
        scores = {"quality": quality_score(measures, attrs), **attrs}
        est = estimate_scene(photo)
        scene = SceneResult(label=est.label, probabilities=dict(est.probabilities), method=est.method,
                            confidence=float(est.confidence))
        return scores, scene
