"""The result types every engine returns, and their stable JSON schema.

Schema (``Report.to_dict()``; documented in README.md, "Result schema")::

    {"path": str | null, "width": int, "height": int, "format": str,
     "exif": {"make", "model", "iso", "exposure_time_s", "f_number", "focal_length_mm", "datetime", ...},
     "scores": {"quality", "brightness", "colorfulness", "contrast", "noisiness", "sharpness"},  # 0-100
     "scene": {"label", "probabilities": {9 SPAQ categories}, "method", "confidence"},
     "findings": [{"kind", "severity", "message", "suggestion"}],
     "feedback": str,
     "measures": {name: value},            # units: measure_units(); floats to 6 significant digits
     "engine": str, "version": str}

An image that could not be analysed becomes an error row: ``{"path", "error": {"kind", "message"}}``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import PicInspectorError

#: The six scores, in report order. All are 0-100, higher = better (noisiness: 100 = clean).
SCORE_NAMES = ("quality", "brightness", "colorfulness", "contrast", "noisiness", "sharpness")

#: Finding severities, mildest first.
SEVERITIES = ("info", "minor", "moderate", "severe")


@dataclass(frozen=True)
class Finding:
    """One thing the inspector noticed, with what to do about it."""

    kind: str
    severity: str
    message: str
    suggestion: str

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "severity": self.severity, "message": self.message,
                "suggestion": self.suggestion}


@dataclass(frozen=True)
class SceneResult:
    label: str
    probabilities: dict[str, float]
    method: str
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "probabilities": dict(self.probabilities), "method": self.method,
                "confidence": self.confidence}


@dataclass
class Report:
    """Everything PicInspector says about one photo."""

    path: str | None
    width: int
    height: int
    format: str
    exif: dict[str, Any]
    scores: dict[str, float]
    scene: SceneResult
    findings: list[Finding]
    feedback: str
    measures: dict[str, Any]
    engine: str
    version: str
    extras: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON schema, with plain Python types only (NaN becomes null)."""
        return {
            "path": self.path,
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "exif": json_safe(self.exif),
            "scores": {k: json_safe(self.scores[k]) for k in SCORE_NAMES},
            "scene": json_safe(self.scene.to_dict()),
            "findings": [f.to_dict() for f in self.findings],
            "feedback": self.feedback,
            "measures": json_safe(self.measures, digits=6),
            "engine": self.engine,
            "version": self.version,
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, **kwargs)


def error_row(path: str | None, error: PicInspectorError | BaseException) -> dict[str, Any]:
    """The row written for an image that could not be analysed."""
    if isinstance(error, PicInspectorError):
        return {"path": path, "error": error.to_dict()}
    return {"path": path, "error": {"kind": "internal_error", "message": f"{type(error).__name__}: {error}"}}


def json_safe(value: Any, digits: int | None = None) -> Any:
    """Convert numpy scalars/arrays and NaN into JSON-safe Python values, floats to ``digits``
    significant digits."""
    if isinstance(value, dict):
        return {str(k): json_safe(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, digits) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return json_safe(value.tolist(), digits)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None
        return value if digits is None else float(f"{value:.{digits}g}")
    return value
