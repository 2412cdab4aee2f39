"""PicInspector: how good is this photo, and why.

>>> import picinspector
>>> report = picinspector.analyze("photo.jpg")          # doctest: +SKIP
>>> report.scores["quality"], report.scene.label, report.feedback   # doctest: +SKIP

The names below are imported on first use (PEP 562), so that the command line starts, and
handles Ctrl-C, before NumPy, OpenCV and Pillow are loaded.
"""

from ._version import __version__

#: Public name -> the module that defines it.
_LAZY = {
    "ENGINES": ".pipeline", "Inspector": ".pipeline", "analyze": ".pipeline",
    "LoadError": ".errors", "PicInspectorError": ".errors",
    "SCORE_NAMES": ".report", "Finding": ".report", "Report": ".report", "SceneResult": ".report",
    "error_row": ".report",
}

__all__ = [
    "__version__", "analyze", "Inspector", "Report", "Finding", "SceneResult", "SCORE_NAMES", "ENGINES",
    "PicInspectorError", "LoadError", "error_row",
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
