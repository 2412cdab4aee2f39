"""Reliability: fuzzed files, kills and signals, hostile model files, exact name escaping, output locks,
library noise, reproducible results, and the defects a new user hit (issue 10).

The full versions (thousands of files, memory limits, many kill rounds) are in `bench/reliability.py`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _hostile import jpeg_claiming, mutate, png_with_idat_length, write_seeds
from _processes import TAG_VAR, left_behind, tagged
from picinspector import batch
from picinspector._text import csv_escape, csv_unescape, json_line, printable, shell_quote
from picinspector.batch import CsvWriter, iter_inputs, run_batch

SRC = Path(__file__).resolve().parents[1] / "src"
ENV = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""), "COLUMNS": "200"}
CLI = [sys.executable, "-m", "picinspector.cli"]
KINDS = {"not_found", "unreadable", "empty", "not_an_image", "unsupported", "corrupt", "decompression_bomb",
         "invalid_pixels", "analysis_error", "out_of_memory"}

psutil = pytest.importorskip("psutil")


def _photos(folder: Path, n: int, size: tuple[int, int] = (320, 240)) -> list[Path]:
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    sources = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    paths = []
    for i in range(n):
        path = folder / f"img{i:03d}.jpg"
        Image.fromarray(np.ascontiguousarray(np.rot90(sources[i % 4], k=i // 4))).resize(size).save(path, quality=88)
        paths.append(path)
    return paths


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _wait_for_rows(out: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= n:
            return
        time.sleep(0.01)


def _gone(processes: list, timeout: float = 10.0) -> list:
    """The processes among ``processes`` still running after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    alive = processes
    while time.monotonic() < deadline:
        alive = [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not alive:
            break
        time.sleep(0.05)
    return alive


def _env(tag: str) -> dict:
    return {**ENV, TAG_VAR: tag}


def _ctrl_c_reaches_it() -> None:
    """Popen ``preexec_fn``: Ctrl-C at its default in the child. The CLI keeps an inherited SIGINT
    ignore (a job started with ``&`` by a script), so a test run that was itself started in the
    background (nohup pytest ... &) would otherwise see Ctrl-C do nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _family(proc: subprocess.Popen, want: int, timeout: float = 60) -> list:
    """The descendants of ``proc`` once there are ``want`` of them (workers + resource tracker)."""
    deadline = time.monotonic() + timeout
    kids: list = []
    while time.monotonic() < deadline and proc.poll() is None:
        kids = psutil.Process(proc.pid).children(recursive=True)
        if len(kids) >= want:
            break
        time.sleep(0.01)
    return kids


# --------------------------------------------------------------------------------------------------
# Fuzz


def test_fuzzed_files_give_one_typed_row_each_and_a_quiet_terminal(tmp_path):
    """A few hundred mutated files of every format through a real `analyze -j 2`, each process under a
    3-GB address-space limit: one row per file, every failure a documented kind (no internal error, no
    worker death), and nothing on the terminal but the summary, while the libraries' own messages
    land in the log."""
    import resource

    seeds = write_seeds(tmp_path / "seeds")
    files = tmp_path / "files"
    files.mkdir()
    rng = np.random.default_rng(0)
    for i in range(300):
        seed = seeds[i % len(seeds)]
        (files / f"f{i:04d}{seed.suffix}").write_bytes(mutate(seed.read_bytes(), rng))
    out = tmp_path / "out.jsonl"

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    started = time.monotonic()
    res = subprocess.run([*CLI, "analyze", str(files), "-o", str(out), "-j", "2", "--no-progress"], env=ENV,
                         capture_output=True, text=True, timeout=240, preexec_fn=limit)
    assert res.returncode in (0, 1), res.stderr
    rows = _rows(out)
    assert sorted(r["path"] for r in rows) == sorted(str(p) for p in files.iterdir())
    kinds = Counter(r["error"]["kind"] for r in rows if "error" in r)
    assert set(kinds) <= KINDS, kinds
    assert sum(kinds.values()) < len(rows)  # some mutations leave a readable image
    assert res.stderr.strip().count("\n") == 0 and "analysed" in res.stderr, res.stderr  # the summary alone
    log = Path(str(out) + ".log").read_text(encoding="utf-8")
    assert "Decod" in log or "TIFF" in log or "libpng" in log, log[:2000]  # C libraries did print
    assert time.monotonic() - started < 200


def test_a_png_that_claims_a_huge_chunk_is_refused_before_any_decoder_allocates(tmp_path):
    from picinspector.errors import CorruptImage
    from picinspector.io import load_photo

    path = tmp_path / "claims.png"
    path.write_bytes(png_with_idat_length(4000, 3000))  # 25 KB whose IDAT claims 2 GB
    started = time.monotonic()
    with pytest.raises(CorruptImage, match="chunk IDAT declares 2,147,418,112 bytes"):
        load_photo(path)
    assert time.monotonic() - started < 2


def test_memory_errors_become_typed_rows(tmp_path, monkeypatch):
    from picinspector.io import _load

    photo = _photos(tmp_path, 1)[0]

    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(_load, "_to_float", exhausted)  # every decode path converts through it
    rows = list(batch.iter_rows([str(photo)]))
    assert rows[0]["error"]["kind"] == "out_of_memory"
    assert "not enough memory to decode this 320x240 JPEG image" in rows[0]["error"]["message"]


# --------------------------------------------------------------------------------------------------
# Kills and signals: a real `analyze -j 2`, and no process may outlive it


def test_kills_at_random_points_lose_nothing_and_leave_no_process(tmp_path):
    folder = tmp_path / "many"
    paths = _photos(folder, 12)
    out = tmp_path / "out.jsonl"
    cmd = [*CLI, "analyze", str(folder), "-o", str(out), "-j", "2", "--no-progress"]
    rng = np.random.default_rng(1)
    for round_ in range(2):
        done = out.read_bytes().count(b"\n") if out.exists() else 0
        tag = f"kill-{os.getpid()}-{round_}"
        proc = subprocess.Popen(cmd, env=_env(tag), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _wait_for_rows(out, done + int(rng.integers(1, 4)), proc)
        time.sleep(float(rng.uniform(0, 0.3)))
        assert len(tagged(tag)) >= 3  # the run, its two workers (and the resource tracker)
        proc.send_signal(signal.SIGKILL)
        stderr = proc.communicate(timeout=30)[1].decode(errors="replace")
        assert proc.returncode == -signal.SIGKILL, stderr
        assert not left_behind(tag), "worker processes outlived their killed parent"
        assert "Traceback" not in stderr and "Error" not in stderr, stderr
    rerun = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stderr
    rows = _rows(out)
    assert sorted(r["path"] for r in rows) == sorted(str(p) for p in paths)  # each exactly once
    assert not any("error" in r for r in rows)


@pytest.mark.parametrize("signals, code", [((signal.SIGINT, signal.SIGINT), 130), ((signal.SIGTERM,), 143)])
def test_double_ctrl_c_and_sigterm_stop_at_once_cleanly(tmp_path, signals, code):
    """A second Ctrl-C, or a SIGTERM, stops the run at once: the workers are terminated, the resume hint
    is printed, the exit code is 130 or 143, nothing outlives the run, and the rerun completes."""
    folder = tmp_path / "many"
    paths = _photos(folder, 14)
    out = tmp_path / "out.jsonl"
    cmd = [*CLI, "analyze", str(folder), "-o", str(out), "-j", "2", "--no-progress"]
    tag = f"stop-{os.getpid()}-{code}"
    proc = subprocess.Popen(cmd, env=_env(tag), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=_ctrl_c_reaches_it)
    _wait_for_rows(out, 1, proc)
    sent = time.monotonic()
    for sig in signals:
        proc.send_signal(sig)
        time.sleep(0.05)
    stderr = proc.communicate(timeout=60)[1].decode(errors="replace")
    assert time.monotonic() - sent < 15
    assert proc.returncode == code, stderr
    assert "Run the same command again to resume" in stderr and "Traceback" not in stderr, stderr
    assert not left_behind(tag), "a worker outlived the run"
    assert not Path(str(out) + ".lock").exists()
    rerun = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(r["path"] for r in _rows(out)) == sorted(str(p) for p in paths)


def test_signals_while_workers_start_print_no_traceback(tmp_path):
    """Ctrl-C, or SIGKILL of the parent, while the workers are starting: no traceback on the terminal
    (a worker that loses its parent there writes only to the log), no process left."""
    folder = tmp_path / "many"
    _photos(folder, 6)
    out = tmp_path / "out.jsonl"
    cmd = [*CLI, "analyze", str(folder), "-o", str(out), "-j", "2", "--no-progress"]
    for sig in (signal.SIGINT, signal.SIGKILL):
        tag = f"start-{os.getpid()}-{sig}"
        proc = subprocess.Popen(cmd, env=_env(tag), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=_ctrl_c_reaches_it)
        _family(proc, 1)  # the first process spawned: the workers are starting
        proc.send_signal(sig)
        stdout, stderr = (s.decode(errors="replace") for s in proc.communicate(timeout=60))
        assert "Traceback" not in stderr + stdout and "EOFError" not in stderr, stderr
        assert proc.returncode == (130 if sig == signal.SIGINT else -signal.SIGKILL), stderr
        assert not left_behind(tag)


# --------------------------------------------------------------------------------------------------
# Output lock


def test_a_second_run_on_the_same_output_is_refused_and_names_the_first(tmp_path):
    folder = tmp_path / "many"
    paths = _photos(folder, 12)
    out = tmp_path / "out.jsonl"
    cmd = [*CLI, "analyze", str(folder), "-o", str(out), "--no-progress"]

    # a run holding the output (this process): the CLI refuses, names it, exits 2, touches nothing
    with batch._OutputLock(str(out)):
        res = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=120)
        assert res.returncode == 2 and f"pid {os.getpid()} on " in res.stderr and "started" in res.stderr, res.stderr
        assert "Traceback" not in res.stderr and not out.exists()
        with pytest.raises(batch.OutputLocked, match=rf"pid {os.getpid()} on "):
            run_batch([str(p) for p in paths], out, progress=False)
    assert not Path(str(out) + ".lock").exists()

    # two real runs started together: every image exactly once, whichever wins
    runs = [subprocess.Popen([*cmd, "-j", "2"], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for _ in range(2)]
    errors = [r.communicate(timeout=240)[1].decode() for r in runs]
    codes = sorted(r.returncode for r in runs)
    assert codes in ([0, 0], [0, 2]), errors
    if codes == [0, 2]:
        assert any("is being written by another picinspector run (pid " in e for e in errors), errors
    assert sorted(r["path"] for r in _rows(out)) == sorted(str(p) for p in paths)


# --------------------------------------------------------------------------------------------------
# Names: exact round trips, valid UTF-8, safe terminal


NAMES = ["a\nb.png", "c\rd.png", "'=e.png", "=f.png", "''g.png", "100% h.png", "i%41j.png", "tab\tk.png",
         "\x1b[31mred.png", "c1\x85.png", "\u202egnp.txt.png"]
RAW = [b"caf\xe9.png", b"\xff\xfe.png"]


def _odd_names(folder: Path) -> list[str]:
    folder.mkdir()
    paths = []
    for name in [os.fsencode(n) for n in NAMES] + RAW:
        path = os.path.join(os.fsencode(folder), name)
        with open(path, "wb") as fh:
            Image.new("RGB", (64, 48), (120, 90, 60)).save(fh, "PNG")
        paths.append(os.fsdecode(path))
    return paths


@pytest.mark.parametrize("ext", [".jsonl", ".csv"])
def test_any_file_name_round_trips_and_the_output_stays_utf8(tmp_path, ext):
    paths = _odd_names(tmp_path / "odd")
    out = tmp_path / f"out{ext}"
    first = run_batch(paths, out, progress=False)
    assert (first.analysed, first.failed) == (len(paths), 0)
    text = out.read_bytes().decode("utf-8")  # strict: the whole file is valid UTF-8
    lines = text.splitlines()
    assert len(lines) == len(paths) + (1 if ext == ".csv" else 0)  # one line per row
    if ext == ".jsonl":
        stored = [json.loads(line)["path"] for line in lines]
    else:
        stored = [csv_unescape(row["path"]) for row in csv.DictReader(io.StringIO(text))]
    assert sorted(os.fsencode(p) for p in stored) == sorted(os.fsencode(p) for p in paths)  # exact bytes
    assert "\x1b" not in text and "\u202e" not in text
    again = run_batch(paths, out, progress=False)
    assert (again.analysed, again.skipped) == (0, len(paths))  # resume recognises every name
    assert out.read_bytes().decode("utf-8") == text


def test_escapes_are_exact_and_spreadsheet_safe():
    for name in [*NAMES, *(os.fsdecode(b) for b in RAW), "%", "%4", "%%41", "%C2%85", "-1", "@x", "'"]:
        cell = csv_escape(name)
        assert csv_unescape(cell) == name
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")) and "\n" not in cell and "\r" not in cell
        cell.encode("utf-8")
        assert json.loads(json_line({"p": name}))["p"] == name
        json_line({"p": name}).encode("utf-8")
        assert not any(c in printable(name) for c in "\x1b\n\r\x85\u202e")
    assert csv_escape("100% crop.jpg") == "100% crop.jpg" and csv_escape("a%41") == "a%2541"
    assert shell_quote("a\nb") == "$'a\\x0ab'" and shell_quote("plain.jpg") == "plain.jpg"
    assert CsvWriter.parse_line(CsvWriter.format_row({"path": "'=x", "error": {"kind": "corrupt", "message": ""}})) \
        == ("'=x", True)


def test_terminal_output_shows_control_characters_escaped(tmp_path):
    from typer.testing import CliRunner

    from picinspector.cli import app

    folder = tmp_path / "t"
    folder.mkdir()
    Image.new("RGB", (64, 48), (120, 90, 60)).save(folder / "\x1b[2Jclear.png")
    (folder / "\x1b]0;title\x07bad.png").write_bytes(b"not an image")
    res = CliRunner().invoke(app, ["analyze", str(folder)], env={"COLUMNS": "200"})
    output = res.output + (res.stderr if hasattr(res, "stderr") and res.stderr_bytes is not None else "")
    assert "\x1b" not in output and "\x07" not in output, repr(output)
    assert "\\x1b[2Jclear.png" in output and "\\x1b]0;title\\x07bad.png" in output


# --------------------------------------------------------------------------------------------------
# Hostile quality-model files


def _model_arrays() -> tuple[dict, dict]:
    from picinspector.scoring._model import DEFAULT_MODEL

    with np.load(DEFAULT_MODEL) as data:
        arrays = {k: data[k] for k in data.files}
    return json.loads(str(arrays.pop("meta"))), arrays


def _save_model(path: Path, meta, arrays: dict) -> Path:
    np.savez_compressed(path, meta=np.array(json.dumps(meta)), **arrays)
    return path


def _hostile_models(tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, a phrase its error must contain)."""
    meta, arrays = _model_arrays()
    out: dict[str, tuple[Path, str]] = {}
    good = _save_model(tmp / "good.npz", meta, arrays)
    data = good.read_bytes()
    (tmp / "truncated.npz").write_bytes(data[: len(data) // 2])
    out["damaged zip"] = (tmp / "truncated.npz", "not a readable .npz")
    out["meta is a list"] = (_save_model(tmp / "list.npz", [1, 2], arrays), "JSON list, not an object")
    out["missing member"] = (_save_model(tmp / "missing.npz", meta, {k: v for k, v in arrays.items() if k != "x_mean"}),
                             "'x_mean' is missing")
    out["mistyped member"] = (_save_model(tmp / "int.npz", meta, {**arrays, "x_scale": np.ones(138, np.int64)}),
                              "'x_scale' has dtype int64")
    out["wrong shape"] = (_save_model(tmp / "shape.npz", meta, {**arrays, "m0_dual_coef": arrays["m0_dual_coef"][:-1]}),
                          "'dual_coef' has shape")
    out["unknown feature"] = (_save_model(tmp / "feature.npz", {**meta, "features": ["nonsense", *meta["features"][1:]]},
                                          arrays), "this version does not compute (nonsense)")
    left = arrays["m1_left"].copy()
    left[0] = 0  # the first node is its own child: a walk that never ends
    out["cyclic tree"] = (_save_model(tmp / "cycle.npz", meta, {**arrays, "m1_left": left}), "not a later node")
    out["meta kind"] = (_save_model(tmp / "kind.npz", {**meta, "members": [{"kind": "pickle", "weight": 1, "prefix": "m0_"}]},
                                    arrays), "unknown member kind 'pickle'")
    # a .npy header that declares 4e9 float64 (30 GB) with a few bytes behind it
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1))
    header["shape"] = (4_000_000_000,)
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    with zipfile.ZipFile(tmp / "header.npz", "w") as zf:
        for name, value in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, value)
            zf.writestr(name + ".npy", member.getvalue())
        meta_buf = io.BytesIO()
        np.lib.format.write_array(meta_buf, np.array(json.dumps(meta)))
        zf.writestr("meta.npy", meta_buf.getvalue())
        zf.writestr("x_extra.npy", buf.getvalue() + bytes(64))
    out["header declares 30 GB"] = (tmp / "header.npz", "declares 32,000,000,000 bytes")
    # a small file that expands to more than any model (declared in the zip directory)
    with zipfile.ZipFile(tmp / "bomb.npz", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("meta.npy", bytes(80 << 20))
    out["expands to 80 MB"] = (tmp / "bomb.npz", "refused unread")
    return out


def test_hostile_model_files_are_refused_at_load_with_one_clear_error(tmp_path):
    from picinspector.scoring._model import ModelFileError, QualityModel

    for name, (path, phrase) in _hostile_models(tmp_path).items():
        started = time.monotonic()
        with pytest.raises(ModelFileError) as info:
            QualityModel.load(path)
        assert phrase in str(info.value), (name, str(info.value))
        assert str(path) in str(info.value)
        assert time.monotonic() - started < 2, name
    assert QualityModel.load(tmp_path / "good.npz").features  # the file the hostile ones came from loads


def test_analyze_with_a_hostile_model_exits_2_with_one_line(tmp_path):
    models = _hostile_models(tmp_path)
    photos = _photos(tmp_path / "p", 2)
    for jobs, name in (("1", "meta is a list"), ("2", "header declares 30 GB")):  # -j 2: checked in the parent
        path, phrase = models[name]
        res = subprocess.run([*CLI, "analyze", *map(str, photos), "--quality-model", str(path), "-j", jobs],
                             env=ENV, capture_output=True, text=True, timeout=120)
        assert res.returncode == 2, res.stderr
        assert "Traceback" not in res.stderr and phrase in res.stderr and res.stdout == "", res.stderr


# --------------------------------------------------------------------------------------------------
# Reproducible results


def test_the_same_photo_gives_identical_measures_across_calls_and_threads(tmp_path):
    """Same file, same options: the same raw measures, bit for bit, whatever the call or thread count
    (Intel IPP inside OpenCV summed in an order that depended on buffer addresses)."""
    from picinspector import Inspector

    path = _photos(tmp_path, 1, size=(1024, 768))[0]
    seen: dict[str, set] = {}
    for threads in (1, 2, 1, 2, 1, 2):
        with Inspector(threads=threads) as inspector:
            measures = inspector.analyze(path).measures
        for key, value in measures.items():
            seen.setdefault(key, set()).add(repr(value))
    assert {k: v for k, v in seen.items() if len(v) > 1} == {}


def test_pil_image_and_array_of_the_same_pixels_differ_only_by_the_jpeg_tables(tmp_path):
    """A PIL image opened from a JPEG carries the file's quantisation tables, so jpeg_quality is read from
    them; its array has none (documented). Everything else is the same; without the tables, all is."""
    from picinspector import Inspector

    path = _photos(tmp_path, 1)[0]
    with Inspector(threads=1) as inspector:
        opened = inspector.analyze(Image.open(path)).to_dict()
        array = inspector.analyze(np.asarray(Image.open(path).convert("RGB"))).to_dict()
        copied = inspector.analyze(Image.open(path).copy()).to_dict()  # a copy keeps no tables
    differ = {k for k in opened["measures"] if opened["measures"][k] != array["measures"][k]}
    assert differ == {"jpeg_quality"} and opened["measures"]["jpeg_quality"] == 88
    assert copied["measures"] == array["measures"] and copied["scores"] == array["scores"]


# --------------------------------------------------------------------------------------------------
# Issue 10: defects a new user hit


def test_a_glob_does_not_follow_a_symlink_loop(tmp_path, monkeypatch):
    (tmp_path / "L" / "a").mkdir(parents=True)
    Image.new("RGB", (32, 32)).save(tmp_path / "L" / "a" / "p.jpg")
    (tmp_path / "L" / "a" / "up").symlink_to("..")
    (tmp_path / "L" / "b").symlink_to("a")
    monkeypatch.chdir(tmp_path)
    walked = iter_inputs(["L"])
    assert walked == [os.path.join("L", "a", "p.jpg")]
    assert iter_inputs(["L/**/*.jpg"]) == walked
    assert iter_inputs(["L/**"]) == walked
    assert iter_inputs(["L/*/*.jpg"]) == walked  # a wildcard does not enter the link b -> a either
    assert iter_inputs(["L/b/*.jpg"]) == [os.path.join("L", "b", "p.jpg")]  # a link named literally is


def test_the_documented_200_mp_limit_is_the_real_one_with_our_message(tmp_path):
    from picinspector.errors import DecompressionBomb
    from picinspector.io import load_photo

    accepted = tmp_path / "180mp.jpg"  # above Pillow's own default (~179 MP), under ours
    accepted.write_bytes(jpeg_claiming(15000, 12000))
    photo = load_photo(accepted)  # accepted (libjpeg fills the missing rows); decoded at 1/8 scale
    assert (photo.width, photo.height) == (15000, 12000) and photo.detail.shape[:2] == (1500, 1875)
    for width, height in ((15000, 13400), (30000, 20000)):  # 201 MP, and 600 MP (over Pillow's limit too)
        path = tmp_path / f"{width}x{height}.jpg"
        path.write_bytes(jpeg_claiming(width, height))
        started = time.monotonic()
        with pytest.raises(DecompressionBomb, match="over the limit of 200,000,000") as info:
            load_photo(path)
        assert f"{width * height:,} pixels" in str(info.value) and "could be decompression bomb" not in str(info.value)
        assert time.monotonic() - started < 1


def test_a_missing_vlm_run_folder_is_not_taken_for_a_hub_id(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from picinspector.cli import app

    from picinspector.models import _weights

    def no_probe(*args, **kwargs):
        raise AssertionError("the Hub was probed for a local run folder")

    monkeypatch.setattr(_weights, "hub_reachable", no_probe)
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (64, 48)).save(tmp_path / "p.png")
    res = CliRunner().invoke(app, ["analyze", "p.png", "--feedback", "vlm", "--vlm-model", "runs/vlm"],
                             env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "runs/vlm is not a folder" in res.output and "hf download" not in res.output


def test_a_float32_rgb_tiff_loads_and_an_unlistable_folder_says_so(tmp_path, monkeypatch):
    tifffile = pytest.importorskip("tifffile")
    from picinspector.errors import UnreadableFile, UnsupportedFormat
    from picinspector.io import load_photo

    pixels = np.random.default_rng(0).random((48, 64, 3), dtype=np.float32)
    tifffile.imwrite(tmp_path / "f32.tif", pixels)
    photo = load_photo(tmp_path / "f32.tif")
    assert photo.format == "TIFF" and photo.bit_depth == 32
    np.testing.assert_array_equal(photo.rgb, pixels)
    tifffile.imwrite(tmp_path / "hdr.tif", pixels * 4)
    with pytest.raises(UnsupportedFormat, match="outside"):
        load_photo(tmp_path / "hdr.tif")

    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(locked))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(UnreadableFile, match="folder cannot be listed"):
        load_photo(locked)


def test_small_cli_items_help_flags_and_an_empty_resume(tmp_path, capfd):
    from typer.testing import CliRunner

    from picinspector.cli import app

    runner = CliRunner()
    for args in (["-h"], ["analyze", "-h"]):
        res = runner.invoke(app, args, env={"COLUMNS": "200"})
        assert res.exit_code == 0 and "Usage" in res.output
    res = runner.invoke(app, ["analyze", "--help"], env={"COLUMNS": "200"})
    assert "<bool>" not in res.output and "--native-detail" in res.output and "<int range>" in res.output

    photo = _photos(tmp_path, 1)[0]
    out = tmp_path / "o.jsonl"
    run_batch([str(photo)], out, progress=False)
    capfd.readouterr()
    again = run_batch([str(photo)], out, progress=True)
    assert again.skipped == 1
    assert "0/0" not in capfd.readouterr().err
