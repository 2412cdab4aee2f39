"""`picinspector fit-quality` as a user runs it: a labelled folder in, a model file out, then used."""

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("sklearn", reason="fitting needs scikit-learn (the 'fit' extra)")
pytest.importorskip("skimage", reason="sample photos come from scikit-image (the 'samples' extra)")

import cv2  # noqa: E402
from PIL import Image  # noqa: E402

from picinspector.cli import app  # noqa: E402
from picinspector.samples import load_sample  # noqa: E402
from picinspector.scoring._model import QualityModel  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A generic-CSV dataset: 4 photos x 5 blur levels; MOS (1-5) falls with blur."""
    root = tmp_path_factory.mktemp("ds")
    rows = []
    for name in ("coffee", "chelsea", "china", "astronaut"):
        base = load_sample(name)
        for level, sigma in enumerate((0.0, 0.8, 1.6, 2.4, 3.2)):
            img = cv2.GaussianBlur(base, (0, 0), sigma) if sigma else base
            fname = f"{name}_{level}.png"
            Image.fromarray(img).save(root / fname)
            rows.append({"image": fname, "mos": 5.0 - level, "subset": name})
    with open(root / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["image", "mos", "subset"])
        writer.writeheader()
        writer.writerows(rows)
    return root


def test_fit_writes_a_model_that_analyze_and_eval_use(dataset, tmp_path):
    model = tmp_path / "model.npz"
    cache = tmp_path / "cache.jsonl"
    args = ["fit-quality", "--dataset", str(dataset), "--format", "csv", "--folds", "4", "--seed", "3",
            "--candidates", "ridge,svr", "--cache", str(cache), "-o", str(model), "--no-progress"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "chosen" in result.output and model.is_file()
    loaded = QualityModel.load(model)
    assert loaded.meta["trained_on"]["n"] == 20 and loaded.meta["cv"]["seed"] == 3
    assert set(loaded.meta["cv"]["results"]) == {"ridge", "svr"}
    assert len(cache.read_text().splitlines()) == 20
    # A refit reads the cache (no re-measuring) and, with the same seed, writes the same model.
    again = tmp_path / "again.npz"
    result = runner.invoke(app, args[:-3] + ["-o", str(again), "--no-progress"])
    assert result.exit_code == 0, result.output
    a, b = QualityModel.load(model), QualityModel.load(again)
    assert a.meta == b.meta and all(np.array_equal(a.arrays[k], b.arrays[k]) for k in a.arrays)

    result = runner.invoke(app, ["analyze", str(dataset / "coffee_0.png"), str(dataset / "coffee_4.png"),
                                 "--json", "--quality-model", str(model)])
    assert result.exit_code == 0, result.output
    sharp, blurred = (json.loads(line) for line in result.output.splitlines())
    assert sharp["scores"]["quality"] > blurred["scores"]["quality"]

    result = runner.invoke(app, ["eval", "--dataset", str(dataset), "--format", "csv", "--quality-model", str(model),
                                 "--json", "--no-progress"])
    assert result.exit_code == 0, result.output


def test_bad_arguments_exit_2(dataset, tmp_path):
    result = runner.invoke(app, ["fit-quality", "--dataset", str(dataset), "--candidates", "magic", "-o",
                                 str(tmp_path / "m.npz")])
    assert result.exit_code == 2 and "magic" in result.output
    result = runner.invoke(app, ["fit-quality", "--dataset", str(tmp_path / "nothing"), "-o", str(tmp_path / "m.npz")])
    assert result.exit_code == 2
    assert not (tmp_path / "m.npz").exists()


def test_effnet_fit_with_exposure_copies_makes_measures_and_reuses_them(dataset, tmp_path, monkeypatch):
    """`fit-quality --engine effnet` with a candidate that trains on exposure copies: the copies are
    written, measured and run through the network through the same caches as the photos, the CV and
    its report hold the real photos alone, and a rerun makes nothing again and gives the same head."""
    from picinspector.training import effnet as fit
    from picinspector.training.exposure_copies import ExposureCopies

    rule = ExposureCopies(evs=(-1.0, 1.0), fraction=0.5)
    cand = fit.QualityCandidate((384,), ("stage2.mean", "stage2.std", "head.mean"), True, pca=8, exposure=rule)
    monkeypatch.setitem(fit.QUALITY_CANDIDATES, "test+exposure", cand)
    cache, feats, report = tmp_path / "m.jsonl", tmp_path / "feat", tmp_path / "cv.json"
    args = ["fit-quality", "--engine", "effnet", "--dataset", str(dataset), "--format", "csv", "--folds", "4",
            "--candidates", "test+exposure", "--cache", str(cache), "--features-cache", str(feats),
            "--report", str(report), "--no-progress"]
    result = runner.invoke(app, [*args, "-o", str(tmp_path / "q.npz")])
    assert result.exit_code == 0, result.output
    picked = rule.picked([f"{n}_{lv}.png" for n in ("coffee", "chelsea", "china", "astronaut") for lv in range(5)])
    copies = sorted((feats / "exposure-copies").glob("*.jpg"))
    assert len(copies) == 2 * int(picked.sum()) > 0 and f"{len(copies)} exposure copies" in result.output
    assert len(cache.read_text().splitlines()) == 20 + len(copies)  # the copies' measures, in the same cache
    meta = QualityModel.load(tmp_path / "q.npz", known=lambda m: frozenset(m["features"])).meta
    assert meta["exposure_copies"]["n"] == len(copies) and meta["trained_on"]["n"] == 20
    oof = json.loads(report.read_text())["oof"]["test+exposure"]
    assert len(oof) == 20 and not any(".ev" in p for p in oof)
    stamps = [p.stat().st_mtime_ns for p in copies]
    result = runner.invoke(app, [*args, "-o", str(tmp_path / "again.npz")])
    assert result.exit_code == 0, result.output
    assert [p.stat().st_mtime_ns for p in copies] == stamps
    assert len(cache.read_text().splitlines()) == 20 + len(copies)
    a = QualityModel.load(tmp_path / "q.npz", known=lambda m: frozenset(m["features"]))
    b = QualityModel.load(tmp_path / "again.npz", known=lambda m: frozenset(m["features"]))
    assert all(np.array_equal(a.arrays[k], b.arrays[k]) for k in a.arrays)
