"""Scene category estimate (SPAQ's nine classes).

``estimate_scene(photo)`` runs the default method; :data:`SCENE_METHODS` maps method names to
functions of a :class:`~picinspector.io.Photo` so that later engines can be added beside it.
"""

from ._estimate import (
    SCENES,
    TEMPERATURE,
    WEIGHTS,
    SceneEstimate,
    combine,
    estimate_from_cues,
    estimate_scene,
    estimate_scene_rgb,
    measure_cues,
    scene_evidence,
)

#: Method name -> ``func(photo) -> SceneEstimate``.
SCENE_METHODS = {"cues": estimate_scene}

__all__ = [
    "SCENES",
    "SCENE_METHODS",
    "TEMPERATURE",
    "WEIGHTS",
    "SceneEstimate",
    "combine",
    "estimate_from_cues",
    "estimate_scene",
    "estimate_scene_rgb",
    "measure_cues",
    "scene_evidence",
]
