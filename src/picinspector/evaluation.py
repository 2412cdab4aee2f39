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
- feedback: do the written findings agree with people? The share of the top-20% photos (by MOS)
  with a moderate or severe finding (false alarms), of the bottom-20% with none (misses), overall,
  per subset and per finding kind (`feedback_agreement`);
- how many images failed (error rows) and how many were skipped because the file is missing;
- warnings, e.g. when the dataset holds the photos the quality model or the feedback calibration was
  fitted on (`training_overlap`): the figures then measure the fit, not generalisation.

The analysis can be skipped: ``rows`` takes the reports of an earlier ``picinspector analyze -o
rows.jsonl`` run, whose findings are re-derived with the current rules from the stored measures,
scores and scene (and, with ``rescore``, the classic scores from the stored measures), which takes
seconds for thousands of photos.

Not imported by ``picinspector.analyze``; scikit-learn is not needed.
"""

from __future__ import annotations

import csv
import hashlib
import json
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

__all__ = ["AGREEMENT_SHARE", "EvalResult", "FLAGGED", "PREDICTION_COLUMNS", "evaluate", "feedback_agreement",
           "fingerprint_overlap", "names_fingerprint", "read_rows", "training_overlap", "write_predictions"]

#: Columns of the per-image predictions CSV. ``true_scenes`` joins the labels with ";", ``findings``
#: the findings as ``kind:severity`` with ";".
PREDICTION_COLUMNS = (
    "path", "subset", "mos", "mos01", *SCORE_NAMES, "scene", "scene_confidence", "true_scenes", "findings",
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
    feedback : dict or None
        `feedback_agreement` of the findings with the MOS; None without MOS.
    failures : list of dict
        ``{"path", "kind", "message"}`` for each image that could not be analysed.
    skipped : list of str
        Paths of missing image files.
    seconds : float
        Wall time of the analysis.
    predictions : list of dict
        One row per sample, columns `PREDICTION_COLUMNS` (not part of `to_dict`).
    warnings : list of str
        Things the reader of the figures must know (see `training_overlap`).
    """

    counts: dict[str, int]
    quality: dict[str, Any] | None
    attributes: dict[str, dict[str, Any]] | None
    scenes: dict[str, Any] | None
    feedback: dict[str, Any] | None = None
    failures: list[dict[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    predictions: list[dict[str, Any]] = field(default_factory=list, repr=False)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (NaN becomes None; predictions left out)."""
        return json_safe({
            "counts": self.counts, "quality": self.quality, "attributes": self.attributes, "scenes": self.scenes,
            "feedback": self.feedback, "warnings": self.warnings, "failures": self.failures, "skipped": self.skipped,
            "seconds": round(self.seconds, 2),
            "images_per_second": round(self.counts["scored"] / self.seconds, 2) if self.seconds > 0 else None,
        })


# --------------------------------------------------------------------------------------------------
# Feedback agreement: do the findings agree with the people who rated the photos?

#: Severities that count as "the photo has a problem" in `feedback_agreement`.
FLAGGED = ("moderate", "severe")

#: The share of photos, by MOS, that counts as the top (and the bottom) in `feedback_agreement`.
AGREEMENT_SHARE = 0.2


def _percentiles(values: np.ndarray) -> np.ndarray:
    """Mid-rank percentile of each value in 0-100 (ties share their mean rank)."""
    from scipy.stats import rankdata

    return 100.0 * (rankdata(values) - 0.5) / len(values)


def _top_bottom(mos: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the photos in the top and bottom ``share`` by MOS (by rank; ties at the border in)."""
    pct = _percentiles(mos) / 100.0
    return pct >= 1.0 - share, pct <= share


def _rate(mask: np.ndarray, within: np.ndarray) -> float | None:
    return float(mask[within].mean()) if within.any() else None


def _mean(values: np.ndarray, within: np.ndarray) -> float | None:
    return float(values[within].mean()) if within.any() else None


def feedback_agreement(findings: Sequence[Sequence[Mapping[str, Any]]], mos: Sequence[float],
                       subsets: Sequence[str | None] | None = None, *, share: float = AGREEMENT_SHARE,
                       flagged: Sequence[str] = FLAGGED) -> dict[str, Any] | None:
    """How well the written findings agree with the people who rated the photos.

    Parameters
    ----------
    findings : sequence of sequences of mappings
        Per photo, its findings as in the JSON report (``{"kind", "severity", ...}``).
    mos : sequence of float
        Per photo, the mean opinion score (any scale; only ranks are used).
    subsets : sequence of str or None, optional
        Per photo, the dataset's subset: the figures are also given per subset, for its photos among
        the overall top and bottom.
    share : float
        The top and bottom share of photos by MOS (0.2: the top and bottom 20%).
    flagged : sequence of str
        The severities that count as "the feedback says something is wrong".

    Returns
    -------
    dict or None
        None for fewer than 5 photos. Otherwise ``n``, ``share``, ``n_top``, ``n_bottom``;
        ``false_alarms``: the share of the top photos with a flagged finding; ``severe_false_alarms``:
        with a severe one; ``misses``: the share of the bottom photos with no flagged finding;
        ``flagged``: the share of all photos with one; ``kinds``: per finding kind, ``fires`` (share
        of photos where it is reported at any severity), ``flagged`` (at a flagged severity),
        ``false_alarms`` (share of the top photos with it flagged), ``bottom`` (share of the bottom
        photos with it flagged), ``mos_pct_fires`` / ``mos_pct_not`` (mean MOS percentile, 0-100, of
        the photos where it is reported / is not) and ``mos_pct_flagged``; ``subsets``: the overall
        figures per subset.

    Notes
    -----
    A false alarm is a photo people rate among their best that the feedback calls faulty; a miss
    is a photo people rate among their worst that the feedback lets pass. Both come from ranks, so
    the MOS scale does not matter.
    """
    y = np.asarray(mos, dtype=float)
    keep = np.isfinite(y)
    if keep.sum() < 5:
        return None
    idx = np.flatnonzero(keep)
    y = y[idx]
    lists = [list(findings[i] or []) for i in idx]
    flag_set = set(flagged)
    top, bottom = _top_bottom(y, share)
    pct = _percentiles(y)
    any_flag = np.array([any(f["severity"] in flag_set for f in fs) for fs in lists])
    any_severe = np.array([any(f["severity"] == "severe" for f in fs) for fs in lists])
    kinds: dict[str, Any] = {}
    for kind in sorted({f["kind"] for fs in lists for f in fs}):
        fires = np.array([any(f["kind"] == kind for f in fs) for fs in lists])
        flag = np.array([any(f["kind"] == kind and f["severity"] in flag_set for f in fs) for fs in lists])
        kinds[kind] = {
            "fires": float(fires.mean()), "flagged": float(flag.mean()),
            "false_alarms": _rate(flag, top), "bottom": _rate(flag, bottom),
            "mos_pct_fires": _mean(pct, fires), "mos_pct_not": _mean(pct, ~fires),
            "mos_pct_flagged": _mean(pct, flag),
        }
    out: dict[str, Any] = {
        "n": int(len(y)), "share": share, "n_top": int(top.sum()), "n_bottom": int(bottom.sum()),
        "false_alarms": _rate(any_flag, top), "severe_false_alarms": _rate(any_severe, top),
        "misses": _rate(~any_flag, bottom), "flagged": float(any_flag.mean()), "kinds": kinds,
    }
    if subsets is not None:
        names = np.array([subsets[i] for i in idx], dtype=object)
        out["subsets"] = {}
        for name in sorted({s for s in names if s is not None}):
            sel = names == name
            out["subsets"][str(name)] = {
                "n": int(sel.sum()), "n_top": int((top & sel).sum()), "n_bottom": int((bottom & sel).sum()),
                "false_alarms": _rate(any_flag, top & sel), "severe_false_alarms": _rate(any_severe, top & sel),
                "misses": _rate(~any_flag, bottom & sel), "flagged": float(any_flag[sel].mean()),
            }
    return out



# --------------------------------------------------------------------------------------------------
# Is this the data a model was fitted on?

#: Hex digits kept per image name in `names_fingerprint` (24 bits: one chance in ~3,000 that an
#: unseen name matches one of 5,000 fitted names).
_FINGERPRINT_DIGITS = 6


def _name_hash(path: str) -> str:
    name = os.path.basename(os.fspath(path)).lower()
    return hashlib.sha1(name.encode("utf-8")).hexdigest()[:_FINGERPRINT_DIGITS]


def names_fingerprint(paths: Iterable[str]) -> str:
    """A compact fingerprint of a set of image names (not paths, so a moved dataset still matches):
    the sorted short SHA-1 prefixes of the lower-case file names, concatenated."""
    return "".join(sorted({_name_hash(p) for p in paths}))


def fingerprint_overlap(paths: Sequence[str], fingerprint: str) -> float:
    """The share of ``paths`` whose file name is in ``fingerprint`` (`names_fingerprint`)."""
    if not paths or not fingerprint:
        return 0.0
    d = _FINGERPRINT_DIGITS
    known = {fingerprint[i:i + d] for i in range(0, len(fingerprint), d)}
    return sum(_name_hash(p) in known for p in paths) / len(paths)


#: From this share of the evaluated photos among a model's training photos on, `training_overlap` warns.
OVERLAP_WARNING = 0.05


def _overlap_note(what: str, trained_on: Mapping[str, Any] | None, paths: Sequence[str], dataset: str | None,
                  fmt: str | None) -> str | None:
    if not trained_on:
        return None
    fitted = f"{trained_on.get('dataset')} ({trained_on.get('format')}, {trained_on.get('n')} photos)"
    names = trained_on.get("names")
    if names:
        share = fingerprint_overlap(paths, names)
        if share < OVERLAP_WARNING:
            return None
        said = f"{share:.0%} of these photos are among the photos {what} was fitted on ({fitted})"
    else:  # an older file without a names fingerprint: go by the dataset's name and format
        base = os.path.basename(os.path.normpath(dataset)) if dataset else None
        if base is None or base != trained_on.get("dataset") or (fmt and fmt != trained_on.get("format")):
            return None
        said = f"this dataset has the name and format of the one {what} was fitted on ({fitted})"
    return (f"{said}: the figures measure the fit, not how well it does on unseen photos. Use the cross-validated "
            "figures (docs/feedback.md, README) or photos it has not seen.")


def training_overlap(paths: Sequence[str], inspector: Any = None, *, dataset: str | None = None,
                     fmt: str | None = None, quality: bool = True, feedback: bool = True) -> list[str]:
    """Warnings when the evaluated photos are those the quality model or the feedback calibration
    was fitted on.

    Parameters
    ----------
    paths : sequence of str
        The evaluated images.
    inspector : Inspector, dict or None
        What `evaluate` is given: the classic engine's quality model is read from its options.
    dataset, fmt : str, optional
        The dataset folder and format, for model files without a names fingerprint (matched by the
        folder's name and the format in their ``trained_on``).
    quality, feedback : bool
        Check the quality model, the feedback calibration (False where the figures do not come from
        it, e.g. scores or findings read back from stored rows).
    """
    from .feedback.calibration import Calibration, CalibrationError, default_calibration

    options = dict(getattr(inspector, "options", None) or inspector or {})
    notes = []
    if quality and options.get("engine", "classic") == "classic" and options.get("quality_model") != "handmade":
        from .scoring._model import DEFAULT_MODEL, ModelFileError, QualityModel

        try:
            meta = QualityModel.load(options.get("quality_model") or DEFAULT_MODEL).meta
        except (ModelFileError, OSError):
            meta = {}
        notes.append(_overlap_note("the quality model", meta.get("trained_on"), paths, dataset, fmt))
    if feedback and options.get("feedback", "rules") == "rules":
        given = (options.get("feedback_options") or {}).get("calibration")
        try:
            cal_meta = (default_calibration() if given is None else given if isinstance(given, Calibration)
                        else Calibration.load(given)).meta
        except (CalibrationError, OSError):
            cal_meta = {}
        notes.append(_overlap_note("the feedback calibration", cal_meta.get("trained_on"), paths, dataset, fmt))
    return [n for n in notes if n]


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


def read_rows(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Report rows of a batch-runner JSONL file by absolute path (error rows left out)."""
    rows: dict[str, dict[str, Any]] = {}
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path} line {number}: not a JSON row ({exc})") from None
            if "error" in row or "measures" not in row:
                continue
            rows[os.path.abspath(row["path"])] = row
    return rows


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
        pred.update(scene=scene.get("label"), scene_confidence=scene.get("confidence"),
                    findings=";".join(f"{f['kind']}:{f['severity']}" for f in row.get("findings") or []) or None)
    return pred


def _feedback(samples: Sequence[Sample], rows: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    pairs = [(row.get("findings") or [], s.mos01, s.subset) for s, row in zip(samples, rows)
             if row is not None and "error" not in row and s.mos01 is not None]
    if not pairs:
        return None
    return feedback_agreement([f for f, _, _ in pairs], [m for _, m, _ in pairs], [sub for _, _, sub in pairs])


#: Inspector options that are not the engine's own.
_NOT_ENGINE_OPTIONS = ("engine", "feedback", "feedback_options", "native_detail", "max_pixels", "threads")


def _reuse(rows: Mapping[str, dict[str, Any]], inspector: Any, rescore: bool,
           stored_findings: bool) -> dict[str, dict[str, Any]]:
    """Stored report rows, their classic scores recomputed from the measures (``rescore``) and their
    findings re-derived with the current rules (unless ``stored_findings``)."""
    from .feedback import rules
    from .feedback.calibration import Calibration

    options = dict(getattr(inspector, "options", None) or inspector or {})
    given = (options.get("feedback_options") or {}).get("calibration")
    cal = None if given is None else given if isinstance(given, Calibration) else Calibration.load(given)
    engine = None
    if rescore:
        if options.get("engine", "classic") != "classic":
            raise ValueError("rescoring stored rows needs the classic engine: the other engines read pixels")
        engine = getattr(inspector, "engine", None)
        if engine is None:
            from .scoring import ClassicEngine

            engine = ClassicEngine(**{k: v for k, v in options.items() if k not in _NOT_ENGINE_OPTIONS})
    out = {}
    for path, row in rows.items():
        if "error" in row or "measures" not in row:
            out[path] = row
            continue
        row = dict(row)
        if engine is not None:
            scores, scene = engine.predict(None, row["measures"])
            row["scores"] = {k: round(float(v), 1) for k, v in scores.items()}
            row["scene"] = json_safe(scene.to_dict())
        if not stored_findings:
            found = rules.findings_from_row(row, cal=cal)
            row["findings"] = [f.to_dict() for f in found]
            row["feedback"] = rules.paragraph(float(row["scores"]["quality"]), found)
        out[path] = row
    return out


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
             predictions_out: str | os.PathLike[str] | None = None,
             rows: Mapping[str, dict[str, Any]] | None = None, rescore: bool = False, stored_findings: bool = False,
             dataset: str | None = None, fmt: str | None = None) -> EvalResult:
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
    rows : mapping, optional
        Report rows of an earlier run (``picinspector analyze -o rows.jsonl``) by path: samples with
        a row are not analysed again; their findings are re-derived with the current rules from the
        stored measures, scores and scene. Samples without one are analysed.
    rescore : bool
        With ``rows``: recompute the classic engine's scores and scene from the stored measures
        (with the inspector's quality model) before the findings.
    stored_findings : bool
        With ``rows``: keep the findings as they were stored (to measure an older version's).
    dataset, fmt : str, optional
        The dataset folder and format, named in the training-overlap warnings.

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
    given = {os.path.abspath(p): r for p, r in (rows or {}).items()}
    stored = {s.path for s in samples if os.path.abspath(s.path) in given}
    missing = [s.path not in stored and not os.path.isfile(s.path) for s in samples]
    paths = list(dict.fromkeys(s.path for s, gone in zip(samples, missing) if not gone))
    start = time.perf_counter()
    by_path = _reuse({p: given[os.path.abspath(p)] for p in paths if p in stored}, inspector, rescore,
                     stored_findings) if stored else {}
    todo = [p for p in paths if p not in stored]
    by_path.update(_analyse(todo, inspector, jobs, progress) if todo else {})
    seconds = time.perf_counter() - start

    found = [None if gone else by_path.get(s.path) for s, gone in zip(samples, missing)]
    preds = [_prediction(s, r, gone) for s, r, gone in zip(samples, found, missing)]
    failures = [{"path": p, "kind": r["error"].get("kind"), "message": r["error"].get("message")}
                for p, r in by_path.items() if "error" in r]
    counts = {
        "total": len(samples),
        "scored": sum(r is not None and "error" not in r for r in found),
        "failed": sum(r is not None and "error" in r for r in found),
        "skipped": sum(missing),
    }
    if rows is not None:
        counts["from_rows"] = len(stored)
    result = EvalResult(counts=counts, quality=_quality(preds), attributes=_attributes(samples, preds),
                        scenes=_scenes(samples, found), feedback=_feedback(samples, found), failures=failures,
                        skipped=[s.path for s, gone in zip(samples, missing) if gone], seconds=seconds,
                        predictions=preds,
                        warnings=training_overlap([s.path for s in samples], inspector, dataset=dataset, fmt=fmt,
                                                  feedback=bool(todo) or not stored_findings)
                        if any(s.mos is not None for s in samples) else [])
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
    if result.feedback:
        q = result.quality or {}
        srcc = {"overall": q["overall"]["srcc"], **{k: v["srcc"] for k, v in q["subsets"].items()}} if q else None
        out.extend(feedback_tables(result.feedback, srcc=srcc))
    c = result.counts
    rate = f", {c['scored'] / result.seconds:.1f} images/s" if result.seconds > 0 and c["scored"] else ""
    reused = f" ({c['from_rows']} from stored rows)" if c.get("from_rows") else ""
    out.append(Text(f"{c['total']} images: {c['scored']} scored{reused}, {c['failed']} failed, {c['skipped']} skipped "
                    f"(file missing); {result.seconds:.1f} s{rate if not reused else ''}"))
    for warning in result.warnings:
        out.append(Text(f"Warning: {warning}", style="yellow"))
    return out


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def feedback_tables(agreement: Mapping[str, Any], srcc: Mapping[str, float] | None = None,
                    title: str | None = None) -> list[Any]:
    """Rich tables for a `feedback_agreement` result: overall and per subset (beside the quality's
    SRCC per set, when given), then per finding kind."""
    from rich.table import Table

    share = round(100 * agreement["share"])
    table = Table(title=title or f"Feedback vs people: top and bottom {share}% of photos by MOS", title_justify="left")
    table.add_column("set", style="bold", no_wrap=True)
    for name in ("n", f"top {share}%", f"bottom {share}%", "false alarms", "severe false alarms", "misses",
                 "flagged") + (("SRCC",) if srcc else ()):
        table.add_column(name, justify="right")
    sets = [("overall", agreement), *(agreement.get("subsets") or {}).items()]
    for name, a in sets:
        row = [name, str(a["n"]), str(a["n_top"]), str(a["n_bottom"]), _pct(a["false_alarms"]),
               _pct(a["severe_false_alarms"]), _pct(a["misses"]), _pct(a["flagged"])]
        if srcc:
            row.append(_fmt(srcc.get(name)))
        table.add_row(*row)
    table.caption = (f"false alarms: top-{share}% photos with a moderate or severe finding; misses: bottom-{share}% "
                     "photos with none; flagged: all photos with one")
    kinds = Table(title="Findings by kind", title_justify="left")
    kinds.add_column("kind", style="bold", no_wrap=True)
    for name in ("fires", "moderate+", f"in top {share}%", f"in bottom {share}%", "MOS pct where it fires",
                 "where not"):
        kinds.add_column(name, justify="right")
    for kind, k in sorted(agreement["kinds"].items(), key=lambda kv: -kv[1]["fires"]):
        kinds.add_row(kind, _pct(k["fires"]), _pct(k["flagged"]), _pct(k["false_alarms"]), _pct(k["bottom"]),
                      _fmt(k["mos_pct_fires"], 0), _fmt(k["mos_pct_not"], 0))
    kinds.caption = (f"fires: photos with it at any severity; moderate+: at moderate or severe; in top/bottom {share}%: "
                     "share of those photos with it at moderate or severe; MOS percentile 0-100")
    return [table, kinds]
