"""The classic engine: hand-made measures -> attribute scores, quality and a cue-based scene."""

from __future__ import annotations

from typing import Any

from ..io import Photo
from ..report import SceneResult
from ..measures import MEASURE_GROUPS
from ..scene import estimate_from_cues
from ._attributes import attribute_scores
from ._quality import quality_score


class ClassicEngine:
    """Training-free engine: no network, no GPU, no torch."""

    name = "classic"

    def predict(self, photo: Photo, measures: dict[str, Any]) -> tuple[dict[str, float], SceneResult]:
        attrs = attribute_scores(measures)
        scores = {"quality": quality_score(measures, attrs), **attrs}
        cues = {o.name: measures[o.name] for o in MEASURE_GROUPS["scene_cues"].outputs}
        est = estimate_from_cues(cues)
        scene = SceneResult(label=est.label, probabilities=dict(est.probabilities), method=est.method,
                            confidence=float(est.confidence))
        return scores, scene
