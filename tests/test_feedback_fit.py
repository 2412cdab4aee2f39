"""The feedback's agreement with people: the check in `eval`, the fitted calibration (`fit-feedback`),
and the training-data warning. Datasets are written by the tests: real photos with graded blur, noise
and darkening whose MOS is made to fall with the damage."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter
from typer.testing import CliRunner

from picinspector.cli import app
from picinspector.evaluation import feedback_agreement, fingerprint_overlap, names_fingerprint, training_overlap
from picinspector.feedback import rules
from picinspector.feedback.calibration import Calibration
from picinspector.report import SceneResult
from picinspector.scoring import attribute_scores

pytest.importorskip("sklearn", reason='fitting needs scikit-learn: pip install "picinspector[fit]"')

LEVELS = 6


def _invoke(*args):
    return CliRunner().invoke(app, list(map(str, args)), env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """48 JPEGs in the BIQ2021 layout: 4 photos x 2 damages (blur, darkening) x 6 levels, MOS falling
    with the level."""
    from skimage import data

    root = tmp_path_factory.mktemp("fb") / "mini"
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = ["image,mos,subset"]
    for name in ("astronaut", "chelsea", "coffee", "rocket"):
        base = Image.fromarray(getattr(data, name)()).convert("RGB")
        base = base.resize((256, round(256 * base.height / base.width)), Image.Resampling.LANCZOS)
        for damage in ("blur", "dark"):
            for level in range(LEVELS):
                if damage == "blur":
                    image = base.filter(ImageFilter.GaussianBlur(0.9 * level)) if level else base
                else:
                    image = ImageEnhance.Brightness(base).enhance(1.0 - 0.15 * level)
                file = f"{name}_{damage}_{level}.jpg"
                image.save(root / "images" / file, format="JPEG", quality=90)
                mos = 0.85 - 0.13 * level + rng.uniform(-0.03, 0.03)
                lines.append(f"{file},{mos:.4f},{damage}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root


# --- the agreement figures ----------------------------------------------------------------------


def _f(kind, severity):
    return {"kind": kind, "severity": severity, "message": "m", "suggestion": "s"}


def test_feedback_agreement_counts_false_alarms_and_misses():
    mos = np.arange(10, dtype=float)  # top 20% = 8, 9; bottom 20% = 0, 1
    findings = [[] for _ in range(10)]
    findings[9] = [_f("color_cast", "moderate")]  # a false alarm
    findings[8] = [_f("color_cast", "minor")]  # minor is not a flag
    findings[0] = [_f("soft", "severe"), _f("color_cast", "info")]  # a hit; photo 1 is a miss
    findings[5] = [_f("soft", "moderate")]
    a = feedback_agreement(findings, mos, ["a"] * 5 + ["b"] * 5)
    assert (a["n"], a["n_top"], a["n_bottom"]) == (10, 2, 2)
    assert a["false_alarms"] == 0.5 and a["misses"] == 0.5 and a["severe_false_alarms"] == 0.0
    assert a["flagged"] == pytest.approx(0.3)
    cast, soft = a["kinds"]["color_cast"], a["kinds"]["soft"]
    assert cast["fires"] == pytest.approx(0.3) and cast["flagged"] == pytest.approx(0.1)
    assert cast["false_alarms"] == 0.5 and cast["bottom"] == 0.0
    assert soft["bottom"] == 0.5 and soft["false_alarms"] == 0.0
    assert soft["mos_pct_fires"] == pytest.approx((5 + 55) / 2) and soft["mos_pct_flagged"] == soft["mos_pct_fires"]
    assert set(a["subsets"]) == {"a", "b"} and a["subsets"]["b"]["false_alarms"] == 0.5
    assert a["subsets"]["a"]["n_top"] == 0 and a["subsets"]["a"]["false_alarms"] is None
    assert a["subsets"]["a"]["misses"] == 0.5 and a["subsets"]["b"]["n_bottom"] == 0
    assert feedback_agreement([[]] * 3, [1, 2, 3]) is None  # too few to say


def test_names_fingerprint_and_overlap(tmp_path):
    names = [f"/data/x/img_{i:04d}.jpg" for i in range(300)]
    fp = names_fingerprint(names)
    assert len(fp) == 6 * 300 and fp == names_fingerprint(reversed(names))
    assert fingerprint_overlap([n.replace("/data/x", "/elsewhere") for n in names[:50]], fp) == 1.0
    assert fingerprint_overlap([f"/data/x/other_{i}.jpg" for i in range(200)], fp) < 0.02
    assert fingerprint_overlap(names, "") == 0.0


def test_training_overlap_warns_for_the_quality_model_and_the_calibration(tmp_path):
    from picinspector.scoring._model import QualityModel

    paths = [str(tmp_path / f"p{i}.jpg") for i in range(40)]
    model = QualityModel.load()
    model.meta = {**model.meta, "trained_on": {"dataset": "mine", "format": "csv", "n": 40,
                                               "names": names_fingerprint(paths)}}
    model.save(tmp_path / "q.npz")
    cal = Calibration(meta={"trained_on": {"dataset": "mine", "format": "csv", "n": 40,
                                           "names": names_fingerprint(paths[:20])}})
    notes = training_overlap(paths, {"quality_model": str(tmp_path / "q.npz"), "feedback_options": {"calibration": cal}})
    assert len(notes) == 2
    assert "100% of these photos" in notes[0] and "quality model" in notes[0] and "mine (csv, 40 photos)" in notes[0]
    assert "50% of these photos" in notes[1] and "feedback calibration" in notes[1]
    unseen = [str(tmp_path / f"new{i}.jpg") for i in range(40)]
    assert training_overlap(unseen, {"quality_model": str(tmp_path / "q.npz"),
                                     "feedback_options": {"calibration": cal}}) == []
    assert training_overlap(paths, {"quality_model": "handmade", "feedback_options": {"calibration": cal}})[0].startswith("50%")
    # A model file without a names fingerprint: matched by the dataset's folder name and format.
    model.meta["trained_on"] = {"dataset": "biq2021_train", "format": "biq2021", "n": 5000}
    model.save(tmp_path / "old.npz")
    old = {"quality_model": str(tmp_path / "old.npz"), "feedback_options": {"calibration": Calibration()}}
    assert "name and format" in training_overlap(paths, old, dataset="/x/biq2021_train", fmt="biq2021")[0]
    assert training_overlap(paths, old, dataset="/x/biq2021_test", fmt="biq2021") == []


# --- the check in eval ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def analysed(dataset, tmp_path_factory) -> dict:
    """The dataset analysed once: ``analyze -o rows.jsonl`` and ``eval --json -o preds.csv``."""
    out = tmp_path_factory.mktemp("analysed")
    rows, preds = out / "rows.jsonl", out / "preds.csv"
    assert _invoke("analyze", dataset / "images", "-o", rows, "--no-progress", "--engine", "classic").exit_code == 0
    result = _invoke("eval", "--dataset", dataset, "--json", "-o", preds, "--no-progress", "--engine", "classic")
    assert result.exit_code == 0, result.output
    return {"rows": rows, "preds": preds, "eval": json.loads(result.stdout)}


def test_eval_reports_feedback_agreement_beside_srcc(dataset, analysed):
    out = analysed["eval"]
    fb = out["feedback"]
    assert fb["n"] == 48 and fb["n_top"] >= 9 and fb["n_bottom"] >= 9
    assert set(fb["subsets"]) == {"blur", "dark"}
    assert out["quality"]["overall"]["srcc"] > 0.5
    # The figures follow from the per-image findings written to the predictions file.
    with open(analysed["preds"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    mos = np.array([float(r["mos"]) for r in rows])
    findings = [[{"kind": k, "severity": s} for k, s in (x.split(":") for x in r["findings"].split(";"))]
                if r["findings"] else [] for r in rows]
    again = feedback_agreement(findings, mos)
    assert again["false_alarms"] == fb["false_alarms"] and again["misses"] == fb["misses"]
    assert set(again["kinds"]) == set(fb["kinds"])
    # The blurred and darkened photos people rate worst are told about blur or exposure.
    worst = [f for f, m in zip(findings, mos) if m < np.quantile(mos, 0.2)]
    assert sum(any(x["severity"] in ("moderate", "severe") for x in fs) for fs in worst) >= len(worst) - 2
    table = _invoke("eval", "--dataset", dataset, "--rows", analysed["rows"])
    assert table.exit_code == 0, table.output
    text = " ".join(table.stdout.split())
    for words in ("Feedback vs people", "false alarms", "misses", "Findings by kind", "MOS pct where it fires",
                  "48 from stored rows"):
        assert words in text


def test_eval_over_stored_rows_matches_the_analysis_and_can_rescore(dataset, analysed, tmp_path):
    rows, fresh = analysed["rows"], analysed["eval"]
    reused = json.loads(_invoke("eval", "--dataset", dataset, "--json", "--rows", rows).stdout)
    assert reused["feedback"] == fresh["feedback"] and reused["quality"] == fresh["quality"]
    assert reused["counts"]["from_rows"] == 48 and "from_rows" not in fresh["counts"]
    # Stored rows from another quality model: --rescore recomputes the scores from the measures.
    hand = tmp_path / "hand.jsonl"
    lines = []
    for line in rows.read_text().splitlines():
        row = json.loads(line)
        row["scores"] = {**row["scores"], "quality": 50.0}  # as if another model had scored them
        lines.append(json.dumps(row))
    hand.write_text("\n".join(lines) + "\n")
    stale = json.loads(_invoke("eval", "--dataset", dataset, "--json", "--rows", hand).stdout)
    assert stale["quality"] != fresh["quality"]
    rescored = json.loads(_invoke("eval", "--dataset", dataset, "--json", "--rows", hand, "--rescore").stdout)
    assert rescored["quality"] == fresh["quality"] and rescored["feedback"] == fresh["feedback"]
    # The stored findings are kept on request (to measure the version that wrote them).
    row = json.loads(rows.read_text().splitlines()[0])
    row["findings"] = [{"kind": "test_kind", "severity": "severe", "message": "m", "suggestion": "s"}]
    edited = tmp_path / "edited.jsonl"
    edited.write_text(json.dumps(row) + "\n" + "\n".join(rows.read_text().splitlines()[1:]) + "\n")
    kept = json.loads(_invoke("eval", "--dataset", dataset, "--json", "--rows", edited, "--stored-findings").stdout)
    assert "test_kind" in kept["feedback"]["kinds"]
    assert _invoke("eval", "--dataset", dataset, "--rescore").exit_code == 2
    assert _invoke("eval", "--dataset", dataset, "--rows", tmp_path / "none.jsonl").exit_code == 2


# --- fit-feedback -----------------------------------------------------------------------------------


CLEAN = {
    "lightness_mean": 52.0, "highlights_clipped_pct": 0.2, "shadows_crushed_pct": 0.5, "exposure_ev": -0.6,
    "colorfulness": 45.0, "saturation_mean": 0.25, "cast_a": 0.5, "cast_b": 1.0, "cast_strength": 1.1,
    "cast_hue_deg": 63.0, "contrast_rms": 0.22, "contrast_range": 0.8, "contrast_local": 0.25, "noise_sigma": 0.9,
    "noise_chroma": 0.6, "noise_shadows": 1.0, "focus": 0.8, "edge_width_px": 1.6, "blur_kind": "sharp",
    "sharp_area_pct": 90.0, "jpeg_quality": 92, "blockiness": 1.0, "edge_density": 0.03, "sky_fraction": 0.0,
}


def _ctx(m, quality):
    return rules.Context(m, {"quality": quality, **attribute_scores(m)}, SceneResult("others", {}, "cues", 0.2),
                         1000, 800, {})


def test_fit_tables_recover_known_costs():
    """MOS falls 30 points with blur and 20 with darkness in flat frames only; the cast does nothing."""
    from picinspector.training.fit_feedback import fit_tables, term_data

    rng = np.random.default_rng(0)
    ctxs, mos = [], []
    for _ in range(3000):
        focus = float(rng.uniform(0.05, 1.0))
        L = float(rng.uniform(8, 70))
        rng_ = float(rng.choice([0.4, 0.9]))
        m = {**CLEAN, "focus": focus, "lightness_mean": L, "contrast_range": rng_,
             "cast_strength": float(rng.uniform(0, 30))}
        c = _ctx(m, 50.0)
        blur_cost = 30.0 * np.clip((c.scores["sharpness"] - 100.0) / -90.0, 0, 1) ** 2
        dark_cost = 20.0 * np.clip((40.0 - L) / 32.0, 0, 1) if rng_ < 0.6 else 0.0
        ctxs.append(c)
        mos.append(80.0 - blur_cost - dark_cost + rng.normal(0, 3))
    tables = fit_tables(term_data(ctxs), np.array(mos))
    blur = tables["blur"].tables["all"]
    assert list(blur.cost) == sorted(blur.cost)
    assert blur(max(blur.x)) > 20.0 and blur(tables["blur"].anchor) == 0.0
    dark = tables["dark"].tables
    assert dark["flat"](92.0) > 12.0 and dark["ranged"](92.0) < 4.0  # low-key costs nothing here
    assert max(tables["cast"].tables["all"].cost) < 3.0


def test_choose_reference_balances_false_alarms_and_misses():
    from picinspector.training.fit_feedback import choose_reference

    rng = np.random.default_rng(2)
    mos = rng.uniform(20, 90, 2000)
    quality = mos + rng.normal(0, 6, 2000)
    ref = choose_reference(quality, mos, 8.0)
    cut = ref - 8.0
    assert np.quantile(mos, 0.2) < cut < np.quantile(mos, 0.8)
    assert choose_reference(quality, mos, 8.0) == ref  # deterministic
    # Photos flagged anyway (a large measured cost) need no deficit: the reference need not rise.
    always = mos < np.quantile(mos, 0.1)
    assert choose_reference(quality, mos, 8.0, always) <= ref


def test_fit_feedback_command_is_cross_validated_and_deterministic(dataset, analysed, tmp_path):
    cache = tmp_path / "cache.jsonl"
    cache.write_text(analysed["rows"].read_text())  # report rows of the same version: nothing to measure again
    out1, out2 = tmp_path / "cal1.json", tmp_path / "cal2.json"
    first = _invoke("fit-feedback", "--dataset", dataset, "--cache", cache, "--folds", 2, "-o", out1, "--no-progress")
    assert first.exit_code == 0, first.output
    text = " ".join(first.stdout.split())
    for words in ("2-fold cross-validated feedback", "false alarms", "misses", "Findings by kind", "Per fold"):
        assert words in text
    assert (tmp_path / "cache.jsonl.oof-quality.json").is_file()
    second = _invoke("fit-feedback", "--dataset", dataset, "--cache", cache, "--folds", 2, "-o", out2, "--json",
                     "--no-progress")
    assert second.exit_code == 0, second.output
    assert out1.read_text() == out2.read_text()  # same data, same seed: the same file
    link = tmp_path / "link"
    link.symlink_to(dataset, target_is_directory=True)
    third = _invoke("fit-feedback", "--dataset", link, "--cache", cache, "--folds", 2, "-o", tmp_path / "cal3.json",
                    "--no-progress")
    assert third.exit_code == 0, third.output
    assert len(cache.read_text().splitlines()) == 48  # the cache is reused through the link, not re-measured
    cal = Calibration.load(out1)
    summary = json.loads(second.stdout)
    assert summary["n"] == 48 and 0 <= summary["cv"]["false_alarms"] <= 1 and len(summary["per_fold"]) == 2
    assert cal.meta["cv"]["misses"] == summary["cv"]["misses"] and cal.meta["folds"] == 2
    assert cal.meta["trained_on"]["n"] == 48 and cal.meta["quality"]["source"] == "oof"
    # eval with this calibration warns that the dataset is the one it was fitted on.
    result = _invoke("eval", "--dataset", dataset, "--feedback-calibration", out1, "--no-progress",
                     "--quality-model", "handmade")
    assert result.exit_code == 0, result.output
    assert "Warning: 100% of these photos are among the photos the feedback calibration was fitted on" in \
        " ".join(result.stdout.split())
    assert _invoke("fit-feedback", "--dataset", dataset, "--quality", "rows").exit_code == 2
    assert _invoke("fit-feedback", "--dataset", dataset, "--quality", "mos").exit_code == 2


def test_fit_feedback_reads_the_effnet_quality_from_a_fit_quality_report(dataset, analysed, tmp_path):
    """--quality report takes each photo's out-of-fold quality from `fit-quality --engine effnet --report`
    (times the guards): the calibration is then fitted with the default engine's quality."""
    cache = tmp_path / "cache.jsonl"
    cache.write_text(analysed["rows"].read_text())
    rows = [json.loads(line) for line in cache.read_text().splitlines()]
    labels = {line.split(",")[0]: float(line.split(",")[1])
              for line in (dataset / "labels.csv").read_text().splitlines()[1:]}
    # a report as fit-quality writes it, whose predictions are the MOS themselves: a perfect quality
    perfect = {r["path"]: labels[Path(r["path"]).name] for r in rows}
    report = tmp_path / "quality_cv.json"
    report.write_text(json.dumps({"chosen": "head", "cv": {}, "oof": {"head": perfect, "other": {}}}))
    out = tmp_path / "cal.json"
    result = _invoke("fit-feedback", "--dataset", dataset, "--cache", cache, "--folds", 2, "-o", out,
                     "--quality", "report", "--quality-report", report, "--json", "--no-progress")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    cal = Calibration.load(out)
    assert cal.meta["quality"]["source"] == "report" and cal.meta["quality"]["candidate"] == "head"
    assert summary["quality_srcc"]["overall"] > 0.95  # the guards barely touch these photos
    oof = _invoke("fit-feedback", "--dataset", dataset, "--cache", cache, "--folds", 2, "-o", tmp_path / "o.json",
                  "--json", "--no-progress")
    assert json.loads(oof.stdout)["quality_srcc"]["overall"] < summary["quality_srcc"]["overall"]
    # one photo missing from the report, a file that is no report, or the option alone: usage errors
    del perfect[rows[0]["path"]]
    report.write_text(json.dumps({"chosen": "head", "oof": {"head": perfect}}))
    bad = _invoke("fit-feedback", "--dataset", dataset, "--cache", cache, "--quality", "report",
                  "--quality-report", report, "--no-progress")
    assert bad.exit_code == 2 and "no out-of-fold prediction for 1 of the 48 photos" in " ".join(bad.output.split())
    report.write_text("[1, 2]")
    bad = _invoke("fit-feedback", "--dataset", dataset, "--cache", cache, "--quality", "report",
                  "--quality-report", report, "--no-progress")
    assert bad.exit_code == 2 and "not a report of" in " ".join(bad.output.split())
    assert _invoke("fit-feedback", "--dataset", dataset, "--quality-report", report).exit_code == 2
