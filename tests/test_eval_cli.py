"""`picinspector eval` end to end: tiny datasets in every format, made of real photos with graded blur
whose MOS is made to fall with the blur, so the real engine must rank them."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter
from typer.testing import CliRunner

from picinspector.cli import app
from picinspector.datasets import Sample, load_dataset
from picinspector.evaluation import PREDICTION_COLUMNS, evaluate
from picinspector.report import SCORE_NAMES

openpyxl = pytest.importorskip("openpyxl", reason='the SPAQ layout needs openpyxl: pip install "picinspector[eval]"')

PHOTOS = {"astronaut": "human", "chelsea": "animal", "coffee": "still_life"}
LEVELS = 5  # Gaussian blur sigma 0, 0.8, 1.6, 2.4, 3.2 at 256 px wide


def _invoke(*args):
    return CliRunner().invoke(app, ["eval", *map(str, args)], env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def photos() -> list[dict]:
    """15 JPEGs (3 photos x 5 blur levels) with a MOS that falls with the blur, plus human attributes."""
    from skimage import data

    rng = np.random.default_rng(0)
    out = []
    for name, scene in PHOTOS.items():
        base = Image.fromarray(getattr(data, name)()).convert("RGB")
        base = base.resize((256, round(256 * base.height / base.width)), Image.Resampling.LANCZOS)
        for level in range(LEVELS):
            image = base.filter(ImageFilter.GaussianBlur(0.8 * level)) if level else base
            buf = io.BytesIO()
            image.save(buf, format="JPEG", quality=92)
            out.append({"name": f"{name}_{level}.jpg", "bytes": buf.getvalue(), "scene": scene,
                        "mos01": 0.9 - 0.18 * level + rng.uniform(-0.02, 0.02),
                        "sharpness": 90.0 - 18.0 * level + rng.uniform(-2, 2),
                        "brightness": rng.uniform(30, 70), "subset": "first" if level % 2 else "second"})
    return out


def _write(folder: Path, photos: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for p in photos:
        (folder / p["name"]).write_bytes(p["bytes"])


def _spaq(root: Path, photos: list[dict]) -> Path:
    _write(root / "TestImage", photos)
    book = openpyxl.Workbook()
    book.active.append(["Image name", "MOS", "Brightness", "Colorfulness", "Contrast", "Noisiness", "Sharpness"])
    for p in photos:
        book.active.append([p["name"], 100 * p["mos01"], p["brightness"], None, None, None, p["sharpness"]])
    (root / "Annotations").mkdir()
    book.save(root / "Annotations" / "MOS and Image attribute scores.xlsx")
    book = openpyxl.Workbook()
    scenes = ["Animal", "Cityscape", "Human", "Indoor scene", "Landscape", "Night scene", "Plant", "Still-life", "Others"]
    ours = ["animal", "cityscape", "human", "indoor", "landscape", "night", "plant", "still_life", "others"]
    book.active.append(["Image name", *scenes])
    for p in photos:
        book.active.append([p["name"], *[1.0 if s == p["scene"] else 0.0 for s in ours]])
    book.save(root / "Annotations" / "Scene category labels.xlsx")
    return root


def _koniq(root: Path, photos: list[dict]) -> Path:
    _write(root / "512x384", photos)
    lines = ['"image_name","c1","c2","c3","c4","c5","c_total","MOS","SD","MOS_zscore"']
    lines += [f'"{p["name"]}",0,0,0,0,0,100,{1 + 4 * p["mos01"]:.4f},0.5,{100 * p["mos01"]:.3f}' for p in photos]
    (root / "koniq10k_scores_and_distributions.csv").write_text("\n".join(lines) + "\n")
    return root


def _biq_labels(root: Path, photos: list[dict]) -> Path:
    _write(root / "images", photos)
    rows = "".join(f'{p["name"]},{p["mos01"]:.4f},{p["subset"]}\n' for p in photos)
    (root / "labels.csv").write_text("image,mos,subset\n" + rows)
    return root


def _biq_original(root: Path, photos: list[dict]) -> Path:
    renamed = [{**p, "name": f"ss0{1 + i % 3} ({i + 1}).jpg"} for i, p in enumerate(photos)]
    _write(root / "Images", renamed)
    rows = "".join(f'{p["name"]},{p["mos01"]:.4f},,\n' for p in renamed)
    (root / "Train (Images and MOS).csv").write_text("Image Name,MOS,,\n" + rows)
    return root


def _generic(root: Path, photos: list[dict]) -> Path:
    _write(root / "pics", photos)
    rows = "".join(f'pics/{p["name"]},{1 + 9 * p["mos01"]:.3f},{p["sharpness"]:.1f},{p["scene"]}\n' for p in photos)
    (root / "mine.csv").write_text("image,mos,sharpness,scene\n" + rows)
    return root


LAYOUTS = {"spaq": _spaq, "koniq": _koniq, "biq2021-labels": _biq_labels, "biq2021-original": _biq_original,
           "csv": _generic}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_eval_json_in_every_format(tmp_path, photos, layout):
    root = LAYOUTS[layout](tmp_path / layout, photos)
    fmt = layout.split("-")[0]
    result = _invoke("--dataset", root, "--format", fmt, "--engine", "classic", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)  # nothing but one JSON object on stdout
    assert set(out) == {"dataset", "counts", "quality", "attributes", "scenes", "feedback", "warnings", "failures",
                        "skipped", "seconds", "images_per_second"}
    assert out["feedback"]["n"] == 15 and out["feedback"]["n_top"] == 3 and out["warnings"] == []
    assert out["dataset"]["format"] == fmt and out["dataset"]["engine"] == "classic"
    assert out["counts"] == {"total": 15, "scored": 15, "failed": 0, "skipped": 0}
    overall = out["quality"]["overall"]
    assert set(overall) == {"n", "srcc", "krcc", "plcc_raw", "plcc", "rmse", "fit", "params"}
    assert overall["n"] == 15 and overall["fit"] in ("logistic4", "raw")
    assert overall["srcc"] > 0.8 and overall["krcc"] > 0.6 and overall["plcc"] > 0.8
    assert 0 < overall["rmse"] < 20  # points of 0-100, after the fit
    if layout == "spaq":
        assert out["dataset"]["citation"].endswith("doi:10.1109/CVPR42600.2020.00373")
        assert set(out["attributes"]) == {"brightness", "sharpness"}  # the attributes the file rates
        assert out["attributes"]["sharpness"]["srcc"] > 0.8 and out["attributes"]["sharpness"]["n"] == 15
        scenes = out["scenes"]
        assert scenes["n"] == 15 and 0 <= scenes["top1_any_hit"] <= 1 and 0 < scenes["map"] <= 1
        assert scenes["per_class"]["animal"]["n_positive"] == 5 and scenes["per_class"]["night"]["ap"] is None
    elif layout == "biq2021-labels":
        assert set(out["quality"]["subsets"]) == {"first", "second"}
        assert out["quality"]["subsets"]["second"]["n"] == 9
        assert out["attributes"] is None and out["scenes"] is None
    elif layout == "biq2021-original":
        assert set(out["quality"]["subsets"]) == {"author_gallery", "intentional_capture_distortions", "unsplash"}


def test_eval_table_predictions_and_limit(tmp_path, photos):
    root = _biq_labels(tmp_path / "biq", photos)
    preds = tmp_path / "out" / "predictions.csv"
    result = _invoke("--dataset", root, "-o", preds, "--limit", 8, "--seed", 3, "--no-progress")
    assert result.exit_code == 0, result.output
    for word in ("SRCC", "PLCC raw", "KRCC", "RMSE", "overall", "first", "second", "8 scored", "doi:10.1117/1.JEI"):
        assert word in result.stdout
    with open(preds, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == PREDICTION_COLUMNS
    assert len(rows) == 8
    for row in rows:
        assert Path(row["path"]).is_file() and row["error_kind"] == ""
        assert all(0 <= float(row[s]) <= 100 for s in SCORE_NAMES)
        assert row["scene"] and 0 <= float(row["scene_confidence"]) <= 1
    again = tmp_path / "again.csv"
    assert _invoke("--dataset", root, "-o", again, "--limit", 8, "--seed", 3, "--json").exit_code == 0
    assert [r["path"] for r in csv.DictReader(open(again, newline=""))] == [r["path"] for r in rows]


def test_missing_and_broken_images_are_counted(tmp_path, photos):
    root = _biq_labels(tmp_path / "biq", photos[:4])
    (root / "images" / photos[0]["name"]).unlink()
    (root / "images" / photos[1]["name"]).write_bytes(photos[1]["bytes"][:200])  # truncated JPEG
    result = _invoke("--dataset", root, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["counts"] == {"total": 4, "scored": 2, "failed": 1, "skipped": 1}
    assert out["skipped"] == [str(root / "images" / photos[0]["name"])]
    assert out["failures"][0]["path"].endswith(photos[1]["name"]) and out["failures"][0]["kind"]
    assert out["quality"]["overall"]["n"] == 2


def test_bad_arguments_and_missing_annotations_exit_2(tmp_path, photos):
    root = _spaq(tmp_path / "spaq", photos[:2])
    (root / "Annotations" / "MOS and Image attribute scores.xlsx").unlink()
    result = _invoke("--dataset", root, "--format", "spaq")
    assert result.exit_code == 2
    assert "MOS and Image attribute scores.xlsx" in result.output
    result = _invoke("--dataset", root, "--format", "tid2013")
    assert result.exit_code == 2 and "unknown dataset format 'tid2013'" in result.output
    result = _invoke("--dataset", tmp_path / "nowhere")
    assert result.exit_code == 2 and "does not exist" in result.output
    biq = _biq_labels(tmp_path / "biq", photos[:2])
    assert _invoke("--dataset", biq, "-o", tmp_path / "p.jsonl").exit_code == 2
    assert _invoke("--dataset", biq, "--engine", "nope").exit_code == 2
    assert _invoke("--dataset", biq, "--limit", 0).exit_code == 2


def test_every_image_failing_exits_1(tmp_path, photos):
    root = _biq_labels(tmp_path / "biq", photos[:2])
    for p in photos[:2]:
        (root / "images" / p["name"]).write_text("not a picture")
    result = _invoke("--dataset", root, "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["counts"]["failed"] == 2


def test_evaluate_api_with_an_inspector_and_duplicates(tmp_path, photos):
    from picinspector import Inspector

    _write(tmp_path, photos[:3])
    samples = [Sample(path=str(tmp_path / p["name"]), mos=p["mos01"], mos01=p["mos01"]) for p in photos[:3]]
    samples.append(samples[0])  # the same image listed twice is analysed once, counted twice
    with Inspector(engine="classic", threads=1) as inspector:
        result = evaluate(samples, inspector, progress=False)
    assert result.counts == {"total": 4, "scored": 4, "failed": 0, "skipped": 0}
    assert result.predictions[0]["quality"] == result.predictions[3]["quality"]
    assert result.quality["overall"]["n"] == 4 and result.quality["subsets"] == {}
    assert result.quality["overall"]["fit"] == "raw"  # too few points for the logistic, and it says so
    assert json.loads(json.dumps(result.to_dict()))["counts"]["scored"] == 4


def test_loader_and_evaluate_agree_on_paths(tmp_path, photos):
    root = _koniq(tmp_path / "k", photos[:3])
    shutil.copytree(root / "512x384", root / "1024x768")
    fmt, samples = load_dataset(root)
    assert fmt == "koniq" and all("1024x768" in s.path for s in samples)
