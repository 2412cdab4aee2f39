"""Batch runner: input expansion, writers, resume after a killed run, parallel runs, retries."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from picinspector import batch
from picinspector.batch import (CSV_COLUMNS, CsvWriter, JsonlWriter, done_paths, iter_inputs, run_batch,
                                writer_for)
from picinspector.io import SUPPORTED_EXTENSIONS
from picinspector.report import SCORE_NAMES

OPTIONS = {"engine": "classic", "feedback": "rules"}


def _samples() -> list[np.ndarray]:
    from skimage import data

    return [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.camera()]


def _save(pixels: np.ndarray, path: Path, long_side: int = 320) -> Path:
    im = Image.fromarray(pixels)
    scale = long_side / max(im.size)
    im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.LANCZOS)
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"quality": 90} if path.suffix.lower() in (".jpg", ".jpeg") else {}
    im.save(path, **options)
    return path


@pytest.fixture(scope="module")
def five(tmp_path_factory) -> list[str]:
    """Five real photos (JPEG and PNG) in a folder, as sorted string paths."""
    folder = tmp_path_factory.mktemp("five")
    names = ["a_astronaut.jpg", "b_coffee.png", "c_chelsea.jpg", "d_rocket.jpg", "e_camera.png"]
    return [str(_save(px, folder / n)) for px, n in zip(_samples(), names)]


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------------------------------------
# Inputs


def test_iter_inputs_folders_globs_literals(tmp_path, monkeypatch):
    assert ".jpg" in SUPPORTED_EXTENSIONS and ".png" in SUPPORTED_EXTENSIONS
    for rel in ["b.jpg", "a.JPG", "sub/c.png", "sub/deeper/d.jpeg", ".hidden.jpg", ".cache/e.jpg",
                "notes.txt", "raw.xyz"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    monkeypatch.chdir(tmp_path)

    # A folder: recursive, sorted, case-insensitive extension, hidden and unsupported files skipped.
    assert iter_inputs(["."]) == [os.path.join(".", "a.JPG"), os.path.join(".", "b.jpg"),
                                  os.path.join(".", "sub", "c.png"),
                                  os.path.join(".", "sub", "deeper", "d.jpeg")]
    # Explicit files are kept whatever the extension; a missing literal path is kept (not_found row);
    # the same file given twice (relative and absolute) is kept once, in first-seen order.
    got = iter_inputs(["notes.txt", "missing.jpg", "b.jpg", str(tmp_path / "b.jpg"), "sub"])
    assert got == ["notes.txt", "missing.jpg", "b.jpg", os.path.join("sub", "c.png"),
                   os.path.join("sub", "deeper", "d.jpeg")]
    # Unexpanded glob patterns are expanded; one matching nothing contributes nothing.
    assert iter_inputs(["sub/**/*.jp*g"]) == [os.path.join("sub", "deeper", "d.jpeg")]
    assert iter_inputs(["*.gif"]) == []
    # "**" selects what the folder does (matched folders are searched, non-image files dropped).
    assert iter_inputs(["**"]) == ["a.JPG", "b.jpg", os.path.join("sub", "c.png"),
                                   os.path.join("sub", "deeper", "d.jpeg")]
    with pytest.raises(ValueError, match="empty"):
        iter_inputs([""])


def test_writer_for_extensions():
    assert writer_for("out.jsonl") is JsonlWriter
    assert writer_for("OUT.CSV") is CsvWriter
    for bad in ["out.json", "out", "out.txt"]:
        with pytest.raises(ValueError, match="unknown output extension"):
            writer_for(bad)


# --------------------------------------------------------------------------------------------------
# Writers and resume (hand-made rows: no analysis needed)


def _row(path: str, feedback: str = "Fine.\nReally.") -> dict:
    return {
        "path": path, "width": 10, "height": 8, "format": "PNG", "exif": {},
        "scores": {k: 50.0 + i for i, k in enumerate(SCORE_NAMES)},
        "scene": {"label": "portrait", "probabilities": {}, "method": "cues", "confidence": 0.51234},
        "findings": [{"kind": "noise", "severity": "minor", "message": "m", "suggestion": "s"},
                     {"kind": "soft", "severity": "info", "message": "m", "suggestion": "s"}],
        "feedback": feedback, "measures": {}, "engine": "classic", "version": "0",
    }


def test_csv_row_is_one_line_with_fixed_columns():
    line = CsvWriter.format_row(_row('we,ird "name".jpg', feedback="line one\r\nline two\nthree"))
    assert "\n" not in line and "\r" not in line
    cells = next(csv.reader([line]))
    row = dict(zip(CSV_COLUMNS, cells))
    assert len(cells) == len(CSV_COLUMNS)
    assert row["path"] == 'we,ird "name".jpg'
    assert row["findings"] == "noise;soft"
    assert row["feedback"] == "line one line two three"
    assert [float(row[k]) for k in SCORE_NAMES] == [50.0 + i for i in range(6)]
    assert row["scene"] == "portrait" and float(row["scene_confidence"]) == pytest.approx(0.512)
    assert row["error_kind"] == "" and CsvWriter.parse_line(line) == ('we,ird "name".jpg', False)

    err = CsvWriter.format_row({"path": "x.jpg", "error": {"kind": "corrupt", "message": "truncated\ndata"}})
    cells = dict(zip(CSV_COLUMNS, next(csv.reader([err]))))
    assert (cells["error_kind"], cells["error_message"], cells["quality"]) == ("corrupt", "truncated data", "")
    assert CsvWriter.parse_line(err) == ("x.jpg", True)


@pytest.mark.parametrize("writer", [JsonlWriter, CsvWriter])
def test_done_paths_cuts_a_half_written_line(tmp_path, writer):
    out = tmp_path / f"out{'.jsonl' if writer is JsonlWriter else '.csv'}"
    lines = [writer.format_row(_row("a.jpg")),
             writer.format_row({"path": "b.jpg", "error": {"kind": "corrupt", "message": "bad"}})]
    header = [writer.header] if writer.header else []
    complete = "".join(line + "\n" for line in header + lines)
    partial = writer.format_row(_row("c.jpg"))
    out.write_text(complete + partial[: len(partial) // 2], encoding="utf-8")

    assert done_paths(out) == {"a.jpg", "b.jpg"}
    assert out.read_text(encoding="utf-8") == complete  # the partial line is gone, the rest intact
    assert done_paths(out, include_errors=False) == {"a.jpg"}
    assert done_paths(tmp_path / "missing.jsonl") == set()


@pytest.mark.parametrize("content, name", [("hello world\n", "notes.jsonl"), ('{"a": 1}\n', "other.jsonl"),
                                           ("x,y\n1,2\n", "table.csv")])
def test_foreign_output_is_refused_and_untouched(tmp_path, content, name):
    out = tmp_path / name
    out.write_text(content + "tail without newline", encoding="utf-8")
    with pytest.raises(ValueError, match="not a PicInspector"):
        done_paths(out)
    with pytest.raises(ValueError, match="not a PicInspector"):
        run_batch(["whatever.jpg"], out, inspector_options=OPTIONS, progress=False)
    assert out.read_text(encoding="utf-8") == content + "tail without newline"


# --------------------------------------------------------------------------------------------------
# Real runs


def _check_report_rows(rows: list[dict], paths: list[str]) -> None:
    assert sorted(r["path"] for r in rows) == sorted(paths)
    for r in rows:
        assert "error" not in r, r
        assert set(r["scores"]) == set(SCORE_NAMES)
        assert all(0.0 <= r["scores"][k] <= 100.0 for k in SCORE_NAMES)


def test_run_batch_resumes_a_killed_jsonl_run(tmp_path, five):
    out = tmp_path / "out.jsonl"
    first = run_batch(five, out, inspector_options=OPTIONS, progress=False)
    assert (first.total, first.analysed, first.skipped, first.failed) == (5, 5, 0, 0)
    rows = _jsonl(out)
    _check_report_rows(rows, five)

    # Simulate a run killed while writing its third row: two rows and half of the third.
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
    out.write_text(lines[0] + lines[1] + lines[2][: len(lines[2]) // 2], encoding="utf-8")
    again = run_batch(five, out, inspector_options=OPTIONS, progress=False)
    assert (again.total, again.analysed, again.skipped, again.failed) == (5, 3, 2, 0)
    resumed = out.read_text(encoding="utf-8").splitlines(keepends=True)
    assert resumed[:2] == lines[:2]  # kept rows are untouched
    rows = _jsonl(out)  # every line parses: the partial line is gone
    _check_report_rows(rows, five)
    by_path = {r["path"]: r["scores"] for r in _jsonl(tmp_path / "out.jsonl")}
    assert by_path == {json.loads(line)["path"]: json.loads(line)["scores"] for line in lines}

    # Everything done: a rerun (with absolute and relative spellings) analyses nothing.
    rel = [os.path.relpath(p) for p in five]
    done = run_batch(rel, out, inspector_options=OPTIONS, progress=False)
    assert (done.analysed, done.skipped) == (0, 5)
    assert len(_jsonl(out)) == 5


def test_run_batch_resumes_a_killed_csv_run(tmp_path, five):
    out = tmp_path / "sub" / "out.csv"  # the folder is created
    run_batch(five[:3], out, inspector_options=OPTIONS, progress=False)
    text = out.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    assert lines[0].rstrip("\n") == ",".join(CSV_COLUMNS) and len(lines) == 4
    out.write_text("".join(lines[:3]) + lines[3][:25], encoding="utf-8")

    summary = run_batch(five, out, inspector_options=OPTIONS, progress=False)
    assert (summary.total, summary.analysed, summary.skipped) == (5, 3, 2)
    rows = _csv(out)
    assert sorted(r["path"] for r in rows) == sorted(five)
    assert out.read_text(encoding="utf-8").startswith("".join(lines[:3]))
    for r in rows:
        assert r["error_kind"] == "" and r["scene"]
        assert all(0.0 <= float(r[k]) <= 100.0 for k in SCORE_NAMES)


def test_parallel_run_gives_the_same_rows(tmp_path, five):
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    inputs = five + [str(tmp_path / "missing.jpg")]
    s1 = run_batch(inputs, one, jobs=1, inspector_options=OPTIONS, progress=False)
    s2 = run_batch(inputs, two, jobs=2, inspector_options=OPTIONS, progress=False)
    assert (s1.analysed, s1.failed) == (s2.analysed, s2.failed) == (5, 1)
    rows1 = {r["path"]: r for r in _jsonl(one)}
    rows2 = {r["path"]: r for r in _jsonl(two)}
    assert len(rows2) == len(_jsonl(two)) == 6
    assert rows1.keys() == rows2.keys()
    for path, r in rows1.items():
        if "error" in r:
            assert rows2[path]["error"]["kind"] == r["error"]["kind"] == "not_found"
            continue
        assert rows2[path]["scores"] == r["scores"]
        assert rows2[path]["scene"]["label"] == r["scene"]["label"]


def test_retry_errors_reprocesses_without_duplicates(tmp_path, five):
    folder = tmp_path / "imgs"
    folder.mkdir()
    good = _save(_samples()[0], folder / "good.jpg")
    bad = folder / "later.png"
    bad.write_bytes(b"not yet a picture")
    out = tmp_path / "out.jsonl"
    inputs = iter_inputs([str(folder)])
    s = run_batch(inputs, out, inspector_options=OPTIONS, progress=False)
    assert (s.analysed, s.failed) == (1, 1)
    assert {r["path"]: "error" in r for r in _jsonl(out)} == {str(good): False, str(bad): True}

    _save(_samples()[1], bad)  # the file is fixed
    plain = run_batch(inputs, out, inspector_options=OPTIONS, progress=False)
    assert (plain.analysed, plain.skipped) == (0, 2)  # a plain resume keeps the error row
    retried = run_batch(inputs, out, inspector_options=OPTIONS, retry_errors=True, progress=False)
    assert (retried.analysed, retried.skipped, retried.failed) == (1, 1, 0)
    rows = _jsonl(out)
    assert sorted(r["path"] for r in rows) == sorted([str(good), str(bad)])
    assert not any("error" in r for r in rows)


def test_any_exception_becomes_an_error_row_and_ctrl_c_stops_cleanly(tmp_path, five, monkeypatch):
    from picinspector.pipeline import Inspector

    real = Inspector.analyze

    def flaky(self, source):
        if str(source) == five[1]:
            raise ZeroDivisionError("boom")  # not a PicInspectorError
        if str(source) == five[3]:
            raise KeyboardInterrupt
        return real(self, source)

    monkeypatch.setattr(Inspector, "analyze", flaky)
    out = tmp_path / "out.jsonl"
    s = run_batch(five, out, inspector_options=OPTIONS, progress=False)
    assert s.interrupted and (s.analysed, s.failed) == (2, 1)
    rows = _jsonl(out)
    assert [r["path"] for r in rows] == five[:3]
    assert rows[1]["error"] == {"kind": "internal_error", "message": "ZeroDivisionError: boom"}

    monkeypatch.setattr(Inspector, "analyze", real)
    s = run_batch(five, out, inspector_options=OPTIONS, progress=False, retry_errors=True)
    assert not s.interrupted and (s.analysed, s.skipped, s.failed) == (3, 2, 0)
    assert sorted(r["path"] for r in _jsonl(out)) == sorted(five)


def test_bad_arguments_fail_before_any_work(tmp_path, five):
    out = tmp_path / "out.jsonl"
    for jobs in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="jobs"):
            run_batch(five, out, jobs=jobs, inspector_options=OPTIONS, progress=False)
    with pytest.raises(ValueError, match="engine"):
        run_batch(five, out, inspector_options={"engine": "nope"}, progress=False)
    with pytest.raises(ValueError, match="unknown output extension"):
        run_batch(five, tmp_path / "out.json", inspector_options=OPTIONS, progress=False)
    assert not (tmp_path / "out.json").exists()
    assert not out.exists()


class _Future:
    def __init__(self, pool, path=None):
        self.pool, self.path = pool, path

    def result(self):
        from concurrent.futures.process import BrokenProcessPool

        if self.pool.broken:
            raise BrokenProcessPool("a worker died")
        return True if self.path is None else {"path": self.path}


class _Pool:
    """Stands in for ProcessPoolExecutor: breaks (for every task in it) when given a path in ``crash_on``."""

    def __init__(self, crash_on=(), dead=False):
        self.crash_on, self.broken, self.live, self.peak = set(crash_on), dead, set(), 0

    def submit(self, fn, *args):
        from concurrent.futures.process import BrokenProcessPool

        if self.broken:
            raise BrokenProcessPool("a worker died")
        if fn is batch._ping:
            return _Future(self)
        (path,) = args
        self.broken = path in self.crash_on
        future = _Future(self, path)
        self.live.add(future)
        self.peak = max(self.peak, len(self.live))
        return future

    def shutdown(self, **kwargs):
        pass


def _fifo_wait(futures, return_when):
    first = next(iter(futures))
    first.pool.live.discard(first)
    return {first}, set(futures) - {first}


def test_pool_in_flight_is_bounded(monkeypatch):
    """The parallel runner never has more than 2 * jobs images submitted at once."""
    pool = _Pool()
    monkeypatch.setattr(batch, "_new_pool", lambda jobs, options, **spawn: pool)
    monkeypatch.setattr(batch, "wait", _fifo_wait)
    paths = [f"p{i}.jpg" for i in range(1000)]
    rows = list(batch._pool_rows(paths, 3, {}))
    assert [r["path"] for r in rows] == paths
    assert pool.peak == 6


def test_a_dead_worker_costs_only_its_own_image(monkeypatch):
    """When a worker dies, the images in flight are rerun alone; only the one that kills a worker fails."""
    pools = []

    def new_pool(jobs, options, **spawn):
        pools.append(_Pool(crash_on={"p3.jpg", "p7.jpg"}))
        return pools[-1]

    monkeypatch.setattr(batch, "_new_pool", new_pool)
    monkeypatch.setattr(batch, "wait", _fifo_wait)
    paths = [f"p{i}.jpg" for i in range(12)]
    rows = list(batch._pool_rows(paths, 2, {}))
    assert sorted(r["path"] for r in rows) == sorted(paths)  # every path exactly once
    failed = {r["path"]: r["error"]["kind"] for r in rows if "error" in r}
    assert failed == {"p3.jpg": "internal_error", "p7.jpg": "internal_error"}
    assert len(pools) >= 3

    # Workers that cannot even start stop the run with a clear error, and no rows.
    monkeypatch.setattr(batch, "_new_pool", lambda jobs, options, **spawn: _Pool(dead=True))
    with pytest.raises(RuntimeError, match="could not start"):
        list(batch._pool_rows(paths, 2, {}))


def test_a_folder_that_cannot_be_listed_becomes_an_input(tmp_path, monkeypatch):
    (tmp_path / "ok.jpg").write_bytes(b"x")
    locked = str(tmp_path / "locked")

    def walk(top, onerror=None):
        onerror(PermissionError(13, "Permission denied", locked))
        yield str(tmp_path), [], ["ok.jpg"]

    monkeypatch.setattr(batch.os, "walk", walk)
    assert iter_inputs([str(tmp_path)]) == [locked, str(tmp_path / "ok.jpg")]


def test_an_inspector_keeps_its_engine_options_in_worker_processes(tmp_path):
    """Workers built from an Inspector get all of its options (here: the hand-made quality)."""
    from skimage import data
    from PIL import Image

    from picinspector import Inspector
    from picinspector.batch import iter_rows

    paths = []
    for name in ("coffee", "chelsea"):
        path = tmp_path / f"{name}.png"
        Image.fromarray(getattr(data, name)()).save(path)
        paths.append(str(path))
    handmade = Inspector(quality_model="handmade")
    one = {r["path"]: r["scores"] for r in iter_rows(paths, jobs=1, inspector_options=handmade)}
    two = {r["path"]: r["scores"] for r in iter_rows(paths, jobs=2, inspector_options=handmade)}
    fitted = {r["path"]: r["scores"] for r in iter_rows(paths, jobs=1)}
    assert one == two
    assert any(one[p]["quality"] != fitted[p]["quality"] for p in paths)  # the option really changed something


def test_csv_cells_cannot_run_as_spreadsheet_formulas_and_resume_still_matches(tmp_path):
    """Text cells starting with = + - @ get a leading apostrophe (CSV injection); the path is read back
    unescaped, so a rerun still skips the image."""
    import csv as csv_module

    from PIL import Image

    from picinspector.batch import CsvWriter, run_batch, spreadsheet_safe

    assert spreadsheet_safe("=HYPERLINK(1)") == "'=HYPERLINK(1)" and spreadsheet_safe("@x") == "'@x"
    assert spreadsheet_safe("photo.jpg") == "photo.jpg" and spreadsheet_safe(-3.5) == -3.5
    photo = tmp_path / "=1+2.png"
    Image.new("RGB", (64, 48), (120, 90, 60)).save(photo)
    out = tmp_path / "out.csv"
    first = run_batch([str(photo)], out, progress=False)
    assert first.analysed == 1
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv_module.DictReader(fh))
    assert rows[0]["path"] == str(photo)  # absolute: starts with "/", nothing to escape
    line = out.read_text(encoding="utf-8").splitlines()[1]
    assert CsvWriter.parse_line(line)[0] == str(photo)
    row = {"path": "=cmd|' /C calc'!A0", "error": {"kind": "not_found", "message": "+SUM(1)"}}
    cells = next(csv_module.reader([CsvWriter.format_row(row)]))
    assert cells[0] == "'=cmd|' /C calc'!A0" and cells[-1] == "'+SUM(1)"
    assert CsvWriter.parse_line(CsvWriter.format_row(row)) == ("=cmd|' /C calc'!A0", True)
    again = run_batch([str(photo)], out, progress=False)
    assert again.analysed == 0 and again.skipped == 1
