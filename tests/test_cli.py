"""The command line, on real photos written by the tests: JSON lines, panels, batch files, exit codes."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from picinspector import __version__
from picinspector.cli import app
from picinspector.report import SCORE_NAMES

SRC = Path(__file__).resolve().parents[1] / "src"
TOP_KEYS = {"path", "width", "height", "format", "exif", "scores", "scene", "findings", "feedback", "measures",
            "engine", "version"}


def _invoke(*args: str, env: dict | None = None):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200", **(env or {})})


def _jpeg_bytes(pixels: np.ndarray, long_side: int) -> bytes:
    im = Image.fromarray(pixels)
    scale = long_side / max(im.size)
    im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=88)
    return buf.getvalue()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """A folder with three real photos (two JPEG, one PNG), a truncated JPEG and a text file named .jpg."""
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    (folder / "astronaut.jpg").write_bytes(_jpeg_bytes(data.astronaut(), 384))
    (folder / "chelsea.jpg").write_bytes(_jpeg_bytes(data.chelsea(), 320))
    Image.fromarray(data.coffee()).resize((300, 200)).save(folder / "coffee.png")
    whole = _jpeg_bytes(data.rocket(), 384)
    (folder / "truncated.jpg").write_bytes(whole[: len(whole) // 3])
    (folder / "letter.jpg").write_text("Dear reader, this is not a picture.\n", encoding="utf-8")
    return folder


GOOD = ("astronaut.jpg", "chelsea.jpg", "coffee.png")


def test_version():
    result = _invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"picinspector {__version__}"


def test_json_lines_schema_and_errors(photos):
    result = _invoke("analyze", photos, "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]  # nothing but JSON on stdout
    by_name = {Path(r["path"]).name: r for r in rows}
    assert sorted(by_name) == sorted([*GOOD, "truncated.jpg", "letter.jpg"])
    for name in GOOD:
        row = by_name[name]
        assert set(row) == TOP_KEYS
        assert row["path"] == str(photos / name)
        assert set(row["scores"]) == set(SCORE_NAMES)
        assert all(isinstance(v, float) and 0.0 <= v <= 100.0 for v in row["scores"].values())
        scene = row["scene"]
        assert set(scene) == {"label", "probabilities", "method", "confidence"}
        assert len(scene["probabilities"]) == 9
        assert scene["label"] in scene["probabilities"]
        assert sum(scene["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
        assert all(set(f) == {"kind", "severity", "message", "suggestion"} for f in row["findings"])
        assert isinstance(row["feedback"], str) and row["feedback"]
    assert by_name["letter.jpg"]["error"]["kind"] == "not_an_image"
    assert by_name["truncated.jpg"]["error"]["kind"] == "corrupt"
    for name in ("letter.jpg", "truncated.jpg"):
        row = by_name[name]
        assert set(row) == {"path", "error"} and row["error"]["message"]
        # The user sees which file failed and why, on stderr.
        assert f"{photos / name}: {row['error']['message']}" in result.stderr.replace("\n", "")


def test_human_panel_names_path_scene_and_scores(photos):
    result = _invoke("analyze", photos / "astronaut.jpg", photos / "letter.jpg")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert str(photos / "astronaut.jpg") in out
    for name in SCORE_NAMES:
        assert name in out
    row = json.loads(_invoke("analyze", photos / "astronaut.jpg", "--json").stdout)
    assert f"scene  {row['scene']['label']}" in out
    assert ("(weak guess)" in out) == (row["scene"]["confidence"] < 0.4)
    for finding in row["findings"]:
        assert finding["message"][:30] in out
    # The bad file is reported on stderr, not as a panel.
    assert str(photos / "letter.jpg") not in out and str(photos / "letter.jpg") in result.stderr


def test_exit_codes(photos, tmp_path):
    bad_only = _invoke("analyze", photos / "letter.jpg", photos / "truncated.jpg", tmp_path / "missing.jpg")
    assert bad_only.exit_code == 1
    assert str(tmp_path / "missing.jpg") in bad_only.stderr

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no photos here")
    assert _invoke("analyze", empty).exit_code == 2
    assert _invoke("analyze", str(tmp_path / "*.gif")).exit_code == 2
    assert _invoke("analyze").exit_code == 2
    assert _invoke("analyze", photos, "-o", tmp_path / "out.json").exit_code == 2
    assert not (tmp_path / "out.json").exists()
    assert _invoke("analyze", photos, "-j", "0").exit_code == 2
    assert _invoke("analyze", photos, "--engine", "nope").exit_code == 2
    assert _invoke("analyze", photos, "--retry-errors").exit_code == 2

    out = tmp_path / "bad.jsonl"
    assert _invoke("analyze", photos / "letter.jpg", "-o", out, "--no-progress").exit_code == 1
    # Nothing left to do is a success, even though the only row is an error.
    assert _invoke("analyze", photos / "letter.jpg", "-o", out, "--no-progress").exit_code == 0


def test_batch_output_with_bad_files_and_retry(photos, tmp_path):
    out = tmp_path / "out.csv"
    result = _invoke("analyze", photos, "-o", out, "--no-progress")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "3 analysed" in result.stderr and "2 failed" in result.stderr and str(out) in result.stderr
    import csv

    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 5
    kinds = {Path(r["path"]).name: r["error_kind"] for r in rows}
    assert kinds == {"astronaut.jpg": "", "chelsea.jpg": "", "coffee.png": "", "truncated.jpg": "corrupt",
                     "letter.jpg": "not_an_image"}

    again = _invoke("analyze", photos, "-o", out, "--retry-errors", "--no-progress")
    assert again.exit_code == 0 and "0 analysed, 3 already done, 2 failed" in again.stderr
    with open(out, newline="", encoding="utf-8") as fh:
        assert sorted(r["path"] for r in csv.DictReader(fh)) == sorted(r["path"] for r in rows)


def test_measures_lists_every_measure():
    from picinspector.measures import measure_units

    result = _invoke("measures")
    assert result.exit_code == 0
    units = measure_units()
    assert len(units) >= 10
    for name in units:
        assert name in result.stdout


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_killed_run_resumes_without_duplicates_or_losses(tmp_path):
    """SIGKILL a real batch run mid-way, run it again: every image exactly once."""
    from skimage import data

    folder = tmp_path / "many"
    folder.mkdir()
    sources = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    for i in range(8):
        pixels = np.ascontiguousarray(np.rot90(sources[i % 4], k=i // 4))
        (folder / f"img{i}.jpg").write_bytes(_jpeg_bytes(pixels, 1024))
    out = tmp_path / "out.jsonl"
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "picinspector.cli", "analyze", str(folder), "-o", str(out), "--no-progress"]

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= 1:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    stderr = proc.communicate(timeout=30)[1].decode(errors="replace")
    assert proc.returncode == -signal.SIGKILL, f"the run ended before it could be killed: {stderr}"
    written = out.read_bytes()
    kept = written[: written.rfind(b"\n") + 1].decode("utf-8").splitlines()
    assert 1 <= len(kept) < 8

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{8 - len(kept)} analysed, {len(kept)} already done, 0 failed" in rerun.stderr
    rows = _rows(out)
    paths = [r["path"] for r in rows]
    assert sorted(paths) == sorted(str(p) for p in folder.iterdir())  # each image exactly once
    assert out.read_text(encoding="utf-8").splitlines()[: len(kept)] == kept  # earlier rows untouched
    assert all("error" not in r for r in rows)


def test_deep_commands_without_torch_say_what_to_install(tmp_path):
    """On a core install (no torch), the deep commands end with one line saying what to install. A fresh
    interpreter whose import system refuses torch stands in for that install."""
    from _processes import cli_without_torch
    from PIL import Image

    photo = tmp_path / "p.png"
    Image.new("RGB", (64, 48), (90, 120, 150)).save(photo)
    for args in (["analyze", str(photo), "--engine", "dinov2", "--model", str(tmp_path)],
                 ["analyze", str(photo), "--feedback", "vlm", "--vlm-model", str(tmp_path)],
                 ["train", "--engine", "dinov2", "--dataset", str(tmp_path)],
                 ["train", "--engine", "vlm", "--captions", str(tmp_path / "c.jsonl")],
                 ["eval", "--engine", "vlm", "--captions", str(tmp_path / "c.jsonl"), "--model", str(tmp_path)]):
        res = cli_without_torch(*args, COLUMNS="400")
        out = res.stdout + res.stderr
        assert res.returncode == 2, (args, out)
        assert "pip install torch==2.13.0" in out and "Traceback" not in out, (args, out)
