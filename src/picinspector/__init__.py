"""PicInspector: how good is this photo, and why.

>>> import picinspector
>>> report = picinspector.analyze("photo.jpg")          # doctest: +SKIP
>>> report.scores["quality"], report.scene.label, report.feedback   # doctest: +SKIP
"""

from ._version import __version__
from .errors import LoadError, PicInspectorError
from .pipeline import ENGINES, Inspector, analyze
from .report import SCORE_NAMES, Finding, Report, SceneResult, error_row

__all__ = [
    "__version__", "analyze", "Inspector", "Report", "Finding", "SceneResult", "SCORE_NAMES", "ENGINES",
    "PicInspectorError", "LoadError", "error_row",
]
