"""The numbers behind the rule findings' severities, fitted to opinion scores (``fit-feedback``).

A calibration file (JSON, shipped as ``feedback/calibration.json``) holds, for every *term* of the
rules (`picinspector.feedback.rules.TERMS`: one measured value each, larger = worse), a monotone
cost table: how many MOS points (on 0-100) people take off a photo for that value, compared with a
photo where the value is typical. The tables come from an additive model fitted to opinion scores
by ``picinspector fit-feedback`` (`picinspector.training.fit_feedback`); the same command measures
the feedback's agreement with people by cross-validation and stores it in ``meta``.

Layout::

    {"format": "picinspector-feedback-calibration", "format_version": 1,
     "severity_points": {"minor": 4, "moderate": 8, "severe": 15},   # MOS points (0-100)
     "reference_quality": 71.3,      # quality of a photo with no fault (0-100)
     "max_scale": 2.0,               # attribution: at most this many points per measured point
     "measured_floor": 0.5,          # ... and at least this many
     "terms": {name: {"anchor": x0, "tables": {context: {"x": [...], "cost": [...]}},
                      "good": [11 quantiles of the value among the top-rated photos]}},
     "meta": {"trained_on": {...}, "seed", "folds", "cv": {...}, "picinspector_version", ...}}

Loaded with the standard library and NumPy only.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..report import SEVERITIES

FORMAT = "picinspector-feedback-calibration"
FORMAT_VERSION = 1

#: The calibration shipped in the package (fitted by ``picinspector fit-feedback``; docs/feedback.md).
DEFAULT_CALIBRATION = Path(__file__).with_name("calibration.json")

#: Severity thresholds in MOS points (0-100) used when a file does not give its own: what people
#: take off a photo for the fault. They mean the same for every kind of finding.
SEVERITY_POINTS = {"minor": 4.0, "moderate": 8.0, "severe": 15.0}


class CalibrationError(ValueError):
    """A feedback calibration file that cannot be used, with the reason."""


@dataclass(frozen=True)
class CostTable:
    """A monotone piecewise-linear map from a measured value to MOS points lost (>= 0).

    Constant beyond the first and last knots: the table says nothing about values it was not
    fitted on, and never extrapolates.
    """

    x: tuple[float, ...]
    cost: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.x) != len(self.cost) or not self.x:
            raise CalibrationError(f"a cost table needs as many costs as knots, got {len(self.x)} and "
                                   f"{len(self.cost)}")
        if any(b < a for a, b in zip(self.x, self.x[1:])):
            raise CalibrationError("cost-table knots must increase")

    def __call__(self, value: float) -> float:
        return max(0.0, float(np.interp(value, self.x, self.cost)))

    def to_dict(self) -> dict[str, list[float]]:
        return {"x": [round(v, 6) for v in self.x], "cost": [round(v, 4) for v in self.cost]}


@dataclass(frozen=True)
class TermCalibration:
    """One term's cost tables (one per context the term distinguishes) and its typical values
    among the photos people rate highest."""

    tables: dict[str, CostTable]
    anchor: float | None = None
    good: tuple[float, ...] = ()

    def cost(self, value: float, context: str) -> float:
        table = self.tables.get(context) or self.tables.get("all")
        return 0.0 if table is None else table(value)

    def good_percentile(self, value: float) -> float | None:
        """Percent of top-rated photos with a value no worse than ``value`` (0-100), or None."""
        if len(self.good) < 2:
            return None
        ranks = np.linspace(0.0, 100.0, len(self.good))
        return float(np.interp(value, self.good, ranks))

    def to_dict(self) -> dict[str, Any]:
        return {"anchor": self.anchor, "tables": {c: t.to_dict() for c, t in self.tables.items()},
                "good": [round(v, 6) for v in self.good]}


@dataclass
class Calibration:
    """Cost tables per term, the severity thresholds, and how the quality deficit is attributed.

    Attributes
    ----------
    terms : dict
        Term name -> `TermCalibration`. A term without an entry costs nothing.
    severity_points : dict
        ``minor``, ``moderate``, ``severe`` -> the MOS points from which a finding has that severity.
    reference_quality : float
        The quality (0-100) of a photo without a fault; the deficit ``reference_quality - quality``
        is what the findings share among themselves.
    max_scale : float
        Attribution limit: a finding's points are its measured cost times ``deficit / total cost``,
        at most ``max_scale`` times its measured cost.
    measured_floor : float
        ... and at least ``measured_floor`` times it: a fault whose measured cost is large is
        reported even when the quality (another estimate of the same opinion) does not drop.
    meta : dict
        Provenance (``trained_on``, ``seed``, ``folds``, ``cv``, version).
    """

    terms: dict[str, TermCalibration] = field(default_factory=dict)
    severity_points: dict[str, float] = field(default_factory=lambda: dict(SEVERITY_POINTS))
    reference_quality: float = 70.0
    max_scale: float = 2.0
    measured_floor: float = 0.5
    meta: dict[str, Any] = field(default_factory=dict)

    def cost(self, term: str, value: float | None, context: str = "all") -> float:
        """MOS points a photo loses for ``value`` of ``term`` (0 for a missing value or term)."""
        if value is None or not math.isfinite(value) or term not in self.terms:
            return 0.0
        return self.terms[term].cost(float(value), context)

    def grade(self, points: float) -> str | None:
        """The severity for a loss of ``points`` MOS points; None below ``minor``."""
        for severity in reversed(SEVERITIES[1:]):
            if points >= self.severity_points[severity]:
                return severity
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION,
                "severity_points": dict(self.severity_points), "reference_quality": round(self.reference_quality, 4),
                "max_scale": self.max_scale, "measured_floor": self.measured_floor, "terms": {n: t.to_dict() for n, t in sorted(self.terms.items())},
                "meta": self.meta}

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=False) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "calibration") -> "Calibration":
        if data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
            raise CalibrationError(f"{source}: not a {FORMAT} v{FORMAT_VERSION} file")
        try:
            terms = {
                name: TermCalibration(
                    tables={ctx: CostTable(tuple(map(float, t["x"])), tuple(map(float, t["cost"])))
                            for ctx, t in entry["tables"].items()},
                    anchor=entry.get("anchor"), good=tuple(map(float, entry.get("good") or ())))
                for name, entry in data["terms"].items()
            }
            points = {k: float(data["severity_points"][k]) for k in SEVERITIES[1:]}
        except (KeyError, TypeError, ValueError) as exc:
            raise CalibrationError(f"{source}: malformed calibration ({exc})") from exc
        if not points["minor"] <= points["moderate"] <= points["severe"]:
            raise CalibrationError(f"{source}: severity points must rise from minor to severe, got {points}")
        return cls(terms=terms, severity_points=points, reference_quality=float(data["reference_quality"]),
                   max_scale=float(data.get("max_scale", 2.0)), measured_floor=float(data.get("measured_floor", 0.5)),
                   meta=dict(data.get("meta") or {}))

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Calibration":
        """Read a calibration file (the shipped one by default)."""
        path = Path(DEFAULT_CALIBRATION if path is None else path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CalibrationError(f"{path}: feedback calibration not found; refit it with `picinspector "
                                   "fit-feedback --dataset DIR -o PATH` (docs/feedback.md)") from None
        except (OSError, ValueError) as exc:
            raise CalibrationError(f"{path}: not a readable feedback calibration ({exc})") from exc
        return cls.from_dict(data, str(path))


@lru_cache(maxsize=4)
def _cached(path: str, mtime_ns: int) -> Calibration:
    return Calibration.load(path)


def default_calibration() -> Calibration:
    """The shipped calibration, read once per process (again if the file changes).

    Without the file (a broken install) the findings still work, uncalibrated: every measured cost
    is zero except the quality guards', and a low quality gives a ``weak_aspects`` finding. A
    warning says so once.
    """
    path = DEFAULT_CALIBRATION.resolve()
    if not path.is_file():
        return _missing(str(path))
    return _cached(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=1)
def _missing(path: str) -> Calibration:
    import warnings

    warnings.warn(f"{path} is missing: the findings are not calibrated; reinstall PicInspector or run "
                  "`picinspector fit-feedback` (docs/feedback.md)", RuntimeWarning, stacklevel=3)
    return Calibration()


def quantiles(values: Sequence[float], n: int = 11) -> tuple[float, ...]:
    """``n`` evenly spaced quantiles (0 to 100%) of the finite ``values``; () when there are none."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    return tuple(float(q) for q in np.quantile(v, np.linspace(0, 1, n))) if v.size else ()
