"""Score a labelled dataset with an `Inspector` and measure the agreement with people.

``evaluate(samples, ...)`` analyses every image (through `picinspector.batch.iter_rows`, so ``jobs``
worker processes and error rows work as in ``picinspector analyze``) and reports:

- quality: SRCC, KRCC, PLCC (raw and after the VQEG 4-parameter logistic) and RMSE, overall and per
  subset. RMSE is in points of PicInspector's 0-100 scale: the logistic maps our quality onto
  ``100 * mos01``;
- attributes (datasets that rate them, e.g. SPAQ): per attribute, the agreement of our score of
  the same name with the human score;
- scenes (datasets with scene labels): top-1-any-hit and mean average precision of the scene
  probabilities;
- how many images failed (error rows) and how many were skipped because the file is missing.

Not imported by ``picinspector.analyze``; scikit-learn is not needed.
"""

from __future__ import annotations

import csv
import math
import os
import time
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from .batch import spreadsheet_safe
from .datasets import Sample
from .report import SCORE_NAMES, json_safe
from .scene import SCENES
from .training.metrics import (krcc, mean_average_precision, per_class_average_precision, plcc, quality_metrics,
                               srcc, top1_any_hit)

__all__ = ["EvalResult", "PREDICTION_COLUMNS", "evaluate", "write_predictions"]

#: Columns of the per-image predictions CSV. ``true_scenes`` joins the labels with ";".
PREDICTION_COLUMNS = (
    "path", "subset", "mos", "mos01", *SCORE_NAMES, "scene", "scene_confidence", "true_scenes",
    "error_kind", "error_message",
)


@dataclass
class EvalResult:
    """What `evaluate` found.

    Attributes
    ----------
    counts : dict
        ``total`` samples, ``scored`` (analysed), ``failed`` (error rows), ``skipped`` (file missing).
    quality : dict
        ``{"overall": metrics, "subsets": {name: metrics}}`` with the keys of
        `picinspector.training.metrics.quality_metrics`; None when no scored sample has a MOS.
    attributes : dict or None
        Attribute name -> ``{"n", "srcc", "krcc", "plcc_raw"}`` (our score vs the human score).
    scenes : dict or None
        ``{"n", "top1_any_hit", "map", "per_class": {scene: {"n_positive", "ap"}}}``.
    failures : list of dict
        ``{"path", "kind", "message"}`` for each image that could not be analysed.
    skipped : list of str
        Paths of missing image files.
    seconds : float
        Wall time of the analysis.
    predictions : list of dict
        One row per sample, columns `PREDICTION_COLUMNS` (not part of `to_dict`).
    """

    counts: dict[str, int]
    quality: dict[str, Any] | None
    attributes: dict[str, dict[str, Any]] | None
    scenes: dict[str, Any] | None
    failures: list[dict[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    predictions: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (NaN becomes None; predictions left out)."""
        return json_safe({
            "counts": self.counts, "quality": self.quality, "attributes": self.attributes, "scenes": self.scenes,
            "failures": self.failures, "skipped": self.skipped, "seconds": round(self.seconds, 2),
            "images_per_second": round(self.counts["scored"] / self.seconds, 2) if self.seconds > 0 else None,
        })


# --------------------------------------------------------------------------------------------------
# Analysis


def _rows(paths: Sequence[str], inspector: Any, jobs: int) -> Iterator[dict[str, Any]]:
    """Rows from `picinspector.batch.iter_rows` (an `Inspector`, its options, or None)."""
    from .batch import iter_rows

    return iter_rows(paths, jobs=jobs, inspector_options=inspector)


def _analyse(paths: list[str], inspector: Any, jobs: int, progress: bool) -> dict[str, dict[str, Any]]:
    from .batch import progress_bar

    out: dict[str, dict[str, Any]] = {}
    rows = _rows(paths, inspector, jobs)
    failed = 0
    with closing(rows), progress_bar(progress, len(paths)) as bar:
        task = bar.add_task("evaluating", total=len(paths))
        for row in rows:
            out[row["path"]] = row
            if "error" in row:
                failed += 1
                bar.update(task, description=f"evaluating ({failed} failed)")
            bar.advance(task)
    return out


# --------------------------------------------------------------------------------------------------
# Metrics


def _quality(preds: list[dict[str, Any]]) -> dict[str, Any] | None:
    pairs = [(p["quality"], 100.0 * p["mos01"], p["subset"]) for p in preds
             if p["quality"] is not None and p["mos01"] is not None]
    if not pairs:
        return None
    q = np.array([a for a, _, _ in pairs], dtype=float)
    m = np.array([b for _, b, _ in pairs], dtype=float)
    subsets: dict[str, Any] = {}
    for name in sorted({s for _, _, s in pairs if s is not None}):
        keep = np.array([s == name for _, _, s in pairs])
        subsets[name] = quality_metrics(q[keep], m[keep])
    return {"overall": quality_metrics(q, m), "subsets": subsets}


def _attributes(samples: Sequence[Sample], preds: list[dict[str, Any]]) -> dict[str, dict[str, Any]] | None:
    names = [n for n in SCORE_NAMES if any(n in s.attributes for s in samples)]
    out = {}
    for name in names:
        pairs = [(p[name], s.attributes[name]) for s, p in zip(samples, preds)
                 if p[name] is not None and name in s.attributes]
        ours = np.array([a for a, _ in pairs], dtype=float)
        human = np.array([b for _, b in pairs], dtype=float)
        out[name] = {"n": len(pairs), "srcc": srcc(ours, human), "krcc": krcc(ours, human),
                     "plcc_raw": plcc(ours, human)}
    return out or None


def _scenes(samples: Sequence[Sample], rows: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    probs, labels = [], []
    for sample, row in zip(samples, rows):
        if not sample.scenes or row is None or "error" in row:
            continue
        given = (row.get("scene") or {}).get("probabilities") or {}
        probs.append([float(given.get(s, 0.0)) for s in SCENES])
        labels.append(list(sample.scenes))
    if not probs:
        return None
    ap = per_class_average_precision(probs, labels, SCENES)
    return {
        "n": len(probs),
        "top1_any_hit": top1_any_hit(probs, labels, SCENES),
        "map": mean_average_precision(probs, labels, SCENES),
        "per_class": {s: {"n_positive": sum(s in ls for ls in labels), "ap": ap[s]} for s in SCENES},
    }


def _prediction(sample: Sample, row: dict[str, Any] | None, missing: bool) -> dict[str, Any]:
    pred: dict[str, Any] = {c: None for c in PREDICTION_COLUMNS}
    pred.update(path=sample.path, subset=sample.subset, mos=sample.mos, mos01=sample.mos01,
                true_scenes=";".join(sample.scenes) or None)
    if missing:
        pred.update(error_kind="not_found", error_message="skipped: the image file does not exist")
    elif row is not None and "error" in row:
        pred.update(error_kind=row["error"].get("kind"), error_message=row["error"].get("message"))
    elif row is not None:
        scores = row.get("scores") or {}
        pred.update({n: scores.get(n) for n in SCORE_NAMES})
        scene = row.get("scene") or {}
        pred.update(scene=scene.get("label"), scene_confidence=scene.get("confidence"))
    return pred


def write_predictions(predictions: Iterable[Mapping[str, Any]], path: str | os.PathLike[str]) -> None:
    """Write per-image predictions as CSV with the columns `PREDICTION_COLUMNS` (folders created).

    Parameters
    ----------
    predictions : iterable of mapping
        Rows as in `EvalResult.predictions`.
    path : str or path-like
        Output ``.csv`` file (overwritten).
    """
    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(PREDICTION_COLUMNS)
        for p in predictions:
            writer.writerow(["" if p.get(c) is None else spreadsheet_safe(p.get(c)) for c in PREDICTION_COLUMNS])


def evaluate(samples: Sequence[Sample], inspector: Any = None, *, jobs: int = 1, progress: bool = True,
             predictions_out: str | os.PathLike[str] | None = None) -> EvalResult:
    """Analyse every sample's image and compare the results with the human annotations.

    Parameters
    ----------
    samples : sequence of Sample
        From a loader in `picinspector.datasets`.
    inspector : Inspector, dict or None
        A `picinspector.Inspector`, or the keyword arguments to build one (``{"engine": "classic"}``);
        None uses the defaults. With ``jobs > 1`` each worker process builds its own inspector
        (from an `Inspector`: its engine name, feedback writer, native_detail and max_pixels).
    jobs : int
        Worker processes (see `picinspector.batch.iter_rows`).
    progress : bool
        Show a progress bar on stderr.
    predictions_out : str or path-like, optional
        Also write the per-image predictions to this CSV (`write_predictions`).

    Returns
    -------
    EvalResult

    Raises
    ------
    ValueError
        ``jobs < 1`` or invalid inspector options (before any image is read).

    Notes
    -----
    A sample whose image file does not exist is *skipped* and counted, not analysed. An image that
    cannot be analysed becomes an error row and is counted as *failed*. Neither enters the metrics.
    Each distinct path is analysed once even if several samples list it.

    Quality metrics compare the ``quality`` score with ``100 * mos01``: SRCC and KRCC are rank
    statistics; PLCC and RMSE are computed after the VQEG 4-parameter logistic fit (see
    `picinspector.training.metrics.quality_metrics`), so RMSE is in points of the 0-100 scale.

    References
    ----------
    VQEG, "Final report from the Video Quality Experts Group on the validation of objective models
    of video quality assessment, phase II", 2003.
    """
    missing = [not os.path.isfile(s.path) for s in samples]
    paths = list(dict.fromkeys(s.path for s, gone in zip(samples, missing) if not gone))
    start = time.perf_counter()
    by_path = _analyse(paths, inspector, jobs, progress) if paths else {}
    seconds = time.perf_counter() - start

    rows = [None if gone else by_path.get(s.path) for s, gone in zip(samples, missing)]
    preds = [_prediction(s, r, gone) for s, r, gone in zip(samples, rows, missing)]
    failures = [{"path": p, "kind": r["error"].get("kind"), "message": r["error"].get("message")}
                for p, r in by_path.items() if "error" in r]
    counts = {
        "total": len(samples),
        "scored": sum(r is not None and "error" not in r for r in rows),
        "failed": sum(r is not None and "error" in r for r in rows),
        "skipped": sum(missing),
    }
    result = EvalResult(counts=counts, quality=_quality(preds), attributes=_attributes(samples, preds),
                        scenes=_scenes(samples, rows), failures=failures,
                        skipped=[s.path for s, gone in zip(samples, missing) if gone], seconds=seconds,
                        predictions=preds)
    if predictions_out is not None:
        write_predictions(preds, predictions_out)
    return result


# --------------------------------------------------------------------------------------------------
# Rendering (for the command line)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def render_tables(result: EvalResult, title: str) -> list[Any]:
    """Rich renderables for a result: the quality table (overall + per subset), then the attribute
    and scene tables when the dataset has those annotations, then the counts line."""
    from rich.table import Table
    from rich.text import Text

    out: list[Any] = []
    if result.quality is not None:
        table = Table(title=title, title_justify="left")
        table.add_column("set", style="bold", overflow="fold")
        for name in ("n", "SRCC", "PLCC", "PLCC raw", "KRCC", "RMSE"):
            table.add_column(name, justify="right")
        rows = [("overall", result.quality["overall"]), *result.quality["subsets"].items()]
        for name, m in rows:
            mark = "" if m["fit"] == "logistic4" else "*"
            table.add_row(name, str(m["n"]), _fmt(m["srcc"]), _fmt(m["plcc"]) + mark, _fmt(m["plcc_raw"]),
                          _fmt(m["krcc"]), _fmt(m["rmse"], 2) + mark)
        table.caption = ("PLCC and RMSE after a 4-parameter logistic from quality to 100 x MOS (RMSE in points "
                         "of 0-100)")
        if any(m["fit"] != "logistic4" for _, m in rows):
            table.caption += "; * no fit (under 10 images, or it failed): raw scores"
        out.append(table)
    if result.attributes:
        table = Table(title="Attributes: our score vs the human score", title_justify="left")
        table.add_column("attribute", style="bold")
        for name in ("n", "SRCC", "KRCC", "PLCC raw"):
            table.add_column(name, justify="right")
        for name, m in result.attributes.items():
            table.add_row(name, str(m["n"]), _fmt(m["srcc"]), _fmt(m["krcc"]), _fmt(m["plcc_raw"]))
        out.append(table)
    if result.scenes:
        s = result.scenes
        table = Table(title=f"Scenes: {s['n']} labelled images, top-1 any-hit {_fmt(s['top1_any_hit'])}, "
                            f"mAP {_fmt(s['map'])}", title_justify="left")
        table.add_column("scene", style="bold")
        table.add_column("images", justify="right")
        table.add_column("AP", justify="right")
        for name, m in s["per_class"].items():
            table.add_row(name, str(m["n_positive"]), _fmt(m["ap"]))
        out.append(table)
    c = result.counts
    rate = f", {c['scored'] / result.seconds:.1f} images/s" if result.seconds > 0 and c["scored"] else ""
    out.append(Text(f"{c['total']} images: {c['scored']} scored, {c['failed']} failed, {c['skipped']} skipped "
                    f"(file missing); {result.seconds:.1f} s{rate}"))
    return out
