"""Ray runs (``analyze --ray``): the same rows as the local batch, error rows, resume after a stop and
after a SIGKILL, manifests and URIs, the Parquet schema; plus the bytes loader they rely on.

The Ray tests share one local Ray (``ray.init(num_cpus=2)``) per test module in each xdist worker (they are
marked ``xdist_group("ray")`` so that ``--dist loadgroup`` would keep them in one worker; with the pytest and
xdist installed here that grouping does not take effect, so two workers may each start one); they skip, with
the reason, where Ray Data is not installed (``pip install "picinspector[ray]"``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from picinspector import batch

pa = pytest.importorskip("pyarrow", reason="pyarrow is part of the ray extra: pip install 'picinspector[ray]'")
import pyarrow.parquet as pq  # noqa: E402

from picinspector import distributed  # noqa: E402
from picinspector.distributed import (expand_inputs, read_manifest, read_results, read_source,  # noqa: E402
                                      rows_to_table, run_ray, table_to_rows)

OPTIONS = {"engine": "classic", "feedback": "rules"}
ROOT = Path(__file__).resolve().parents[1]


def _save(pixels: np.ndarray, path: Path, long_side: int = 256) -> str:
    im = Image.fromarray(pixels)
    scale = long_side / max(im.size)
    im = im.resize((max(16, round(im.width * scale)), max(16, round(im.height * scale))), Image.Resampling.LANCZOS)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, **({"quality": 88} if path.suffix == ".jpg" else {}))
    return str(path)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, list[str]]:
    """Real photos (JPEG, PNG, a nested folder) and bad files, written by the test."""
    from skimage import data

    folder = tmp_path_factory.mktemp("shoot")
    good = [
        _save(data.astronaut(), folder / "a_astronaut.jpg"),
        _save(data.coffee(), folder / "b_coffee.png"),
        _save(data.chelsea(), folder / "c_chelsea.jpg"),
        _save(data.rocket(), folder / "sub" / "d_rocket.jpg"),
        _save(data.camera(), folder / "sub" / "e_camera.png"),
    ]
    jpeg = Path(good[0]).read_bytes()
    (folder / "f_truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    (folder / "g_text.jpg").write_text("not a photo at all\n")
    (folder / "h_empty.png").write_bytes(b"")
    bad = [str(folder / n) for n in ("f_truncated.jpg", "g_text.jpg", "h_empty.png")]
    return {"folder": [str(folder)], "good": good, "bad": bad, "missing": [str(folder / "nope.jpg")]}


def _local_rows(paths: list[str], tmp: Path) -> dict[str, dict]:
    out = tmp / "local.jsonl"
    batch.run_batch(paths, out, inspector_options=OPTIONS, progress=False)
    return {row["path"]: row for row in map(json.loads, out.read_text(encoding="utf-8").splitlines())}


# --------------------------------------------------------------------------------------------------
# Reading bytes: paths and URIs fail alike (the bytes loader itself is tested in test_io_bytes.py)


def test_read_source_uris_and_paths_fail_alike(photos, tmp_path):
    from picinspector.errors import EmptyFile, FileNotFound, UnreadableFile

    good = photos["good"][0]
    assert read_source("file://" + os.path.abspath(good)) == Path(good).read_bytes() == read_source(good)
    for local, kind in ((photos["missing"][0], FileNotFound), (photos["bad"][2], EmptyFile),
                        (photos["folder"][0], UnreadableFile)):
        for source in (local, "file://" + os.path.abspath(local)):
            with pytest.raises(kind) as info:
                read_source(source)
            assert source in str(info.value)


# --------------------------------------------------------------------------------------------------
# Inputs: folders, globs, manifests, URIs


def test_expand_inputs_folders_globs_uris(photos):
    folder = photos["folder"][0]
    local = batch.iter_inputs([folder])
    assert expand_inputs([folder]) == local
    uri = "file://" + os.path.abspath(folder)
    assert expand_inputs([uri]) == ["file://" + os.path.abspath(p) for p in local]
    assert expand_inputs([uri + "/*.jpg"]) == ["file://" + os.path.abspath(p) for p in local
                                               if p.endswith(".jpg") and os.sep + "sub" + os.sep not in p]
    assert expand_inputs([uri + "/**/*.png"]) == ["file://" + os.path.abspath(p) for p in local if p.endswith(".png")]
    assert expand_inputs([folder, local[0], uri + "/nope.jpg"]) == [*local, uri + "/nope.jpg"]  # deduplicated


def test_manifests_csv_and_parquet(photos, tmp_path):
    rel = os.path.relpath(photos["good"][1], tmp_path)
    uri = "file://" + os.path.abspath(photos["good"][2])
    manifest = tmp_path / "list.csv"
    manifest.write_text(f"id,Path,mos\n1,{rel},3.5\n2,{uri},4\n3,{photos['good'][3]},1\n", encoding="utf-8")
    expected = [str(tmp_path / rel), uri, photos["good"][3]]  # relative to the manifest's folder
    assert read_manifest(manifest) == expected
    assert expand_inputs([str(manifest)]) == expected
    pq.write_table(pa.table({"image_uri": expected, "n": [1, 2, 3]}), tmp_path / "list.parquet")
    assert read_manifest(tmp_path / "list.parquet", column="image_uri") == expected
    with pytest.raises(ValueError, match="no path column"):
        read_manifest(tmp_path / "list.parquet")
    with pytest.raises(ValueError, match="no column 'nope'"):
        read_manifest(manifest, column="nope")
    (tmp_path / "holes.csv").write_text('path\nx.jpg\n""\n', encoding="utf-8")
    with pytest.raises(ValueError, match="line 3: empty 'path'"):
        read_manifest(tmp_path / "holes.csv")


# --------------------------------------------------------------------------------------------------
# The Parquet schema


def test_schema_round_trip_is_exact(photos, tmp_path):
    rows = list(_local_rows(photos["good"][:2] + photos["bad"] + photos["missing"], tmp_path).values())
    rows[0] = {**rows[0], "new_field": {"x": [1, 2.5, None]}}  # a key a later version adds is kept
    table = rows_to_table(rows)
    assert table.schema.field("scores").type.num_fields == 6
    pq.write_table(table, tmp_path / "t.parquet")
    back = table_to_rows(pq.read_table(tmp_path / "t.parquet"))
    assert back == rows
    assert json.loads(json.dumps(back)) == rows
    errors = pq.read_table(tmp_path / "t.parquet", columns=["error"]).column("error").to_pylist()
    assert [e["kind"] for e in errors if e] == ["corrupt", "not_an_image", "empty", "not_found"]


def test_schema_misfit_becomes_an_error_row():
    row = {"path": "x.jpg", "width": 1, "height": 1, "format": "JPEG", "exif": {}, "scores": {"quality": 1.0},
           "scene": None, "findings": [], "feedback": "", "measures": {}, "engine": "classic", "version": "0"}
    (back,) = table_to_rows(rows_to_table([row]))
    assert back["path"] == "x.jpg" and back["error"]["kind"] == "internal_error"
    assert "scores must have the keys" in back["error"]["message"]


# --------------------------------------------------------------------------------------------------
# Stores: atomic parts, foreign folders, locks


def test_parquet_store_refuses_foreign_folders_and_cleans_temporaries(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not PicInspector result parts"):
        distributed.ParquetStore(str(tmp_path))
    assert (tmp_path / "notes.txt").read_text() == "mine"
    out = tmp_path / "out"
    out.mkdir()
    (out / ".tmp-123-abc.parquet").write_bytes(b"PAR1 half a file")  # what a SIGKILL mid-write leaves
    store = distributed.ParquetStore(str(out))
    assert not (out / ".tmp-123-abc.parquet").exists() and store.existing() == []
    with pytest.raises(distributed.OutputLocked, match="another picinspector run"):
        distributed.ParquetStore(str(out))
    store.commit(rows_to_table([{"path": "a.jpg", "error": {"kind": "corrupt", "message": "m"}}]))
    store.close()
    (out / "part-bad.parquet").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="part-bad.parquet: cannot read"):
        distributed.ParquetStore(str(out)).existing()


# --------------------------------------------------------------------------------------------------
# Ray runs

ray = None


@pytest.fixture(scope="module")
def ray_address():
    global ray
    reason = distributed.ray_available()
    if reason is not None:
        pytest.skip(reason)
    import ray as _ray

    ray = _ray
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    _ray.init(num_cpus=2, include_dashboard=False, object_store_memory=150 * 1024**2, log_to_driver=False,
              configure_logging=False)
    yield _ray.get_runtime_context().gcs_address
    _ray.shutdown()


def _by_path(rows: list[dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for row in rows:
        assert row["path"] not in out, f"duplicate row for {row['path']}"
        out[row["path"]] = row
    return out


@pytest.mark.xdist_group("ray")
def test_ray_gives_the_local_batchs_rows(ray_address, photos, tmp_path):
    paths = expand_inputs(photos["folder"] + photos["missing"])
    local = _local_rows(paths, tmp_path)
    out = tmp_path / "ray_out"
    summary = run_ray(paths, out, inspector_options=OPTIONS, actors=2, batch_size=2, progress=False)
    assert (summary.analysed, summary.failed, summary.skipped, summary.total) == (5, 4, 0, 9)
    assert summary.actors == 2 and summary.parts >= 1 and summary.first_row_s > 0
    assert _by_path(read_results(out)) == local  # the same dicts, error rows included
    kinds = {p: r["error"]["kind"] for p, r in local.items() if "error" in r}
    assert sorted(kinds.values()) == ["corrupt", "empty", "not_an_image", "not_found"]
    # A second run has nothing to do (and does not start anything)
    again = run_ray(paths, out, inspector_options=OPTIONS, actors=2, progress=False)
    assert (again.analysed, again.failed, again.skipped, again.actors) == (0, 0, 9, 0)
    # --retry-errors redoes the error rows only, and leaves one row per path
    retried = run_ray(paths, out, inspector_options=OPTIONS, actors=2, retry_errors=True, progress=False)
    assert (retried.analysed, retried.failed, retried.skipped) == (0, 4, 5)
    assert _by_path(read_results(out)) == local


@pytest.mark.xdist_group("ray")
def test_ray_jsonl_output_is_the_local_batchs_lines(ray_address, photos, tmp_path):
    paths = photos["good"][:3] + photos["bad"][:1]
    local = tmp_path / "local.jsonl"
    batch.run_batch(paths, local, inspector_options=OPTIONS, progress=False)
    out = tmp_path / "ray.jsonl"
    summary = run_ray(paths, out, inspector_options=OPTIONS, actors=2, batch_size=1, progress=False)
    assert (summary.analysed, summary.failed) == (3, 1)
    assert sorted(out.read_text(encoding="utf-8").splitlines()) == sorted(local.read_text(encoding="utf-8")
                                                                          .splitlines())
    assert batch.done_paths(out) == set(paths)


@pytest.mark.xdist_group("ray")
def test_ray_resumes_after_a_stop_midway(ray_address, photos, tmp_path):
    paths = photos["good"] + photos["bad"]
    out = tmp_path / "out"

    def stop(committed: int) -> None:
        raise KeyboardInterrupt  # as Ctrl-C right after the first commit

    first = run_ray(paths, out, inspector_options=OPTIONS, actors=2, batch_size=1, part_rows=2, part_seconds=3600,
                    progress=False, on_commit=stop)
    assert first.interrupted and first.parts == 1
    done = first.analysed + first.failed
    assert 2 <= done < len(paths)
    assert len(read_results(out)) == done
    second = run_ray(paths, out, inspector_options=OPTIONS, actors=2, batch_size=1, progress=False)
    assert second.skipped == done and second.analysed + second.failed == len(paths) - done
    assert set(_by_path(read_results(out))) == set(paths)


_KILLED_RUN = textwrap.dedent("""
    import sys
    from picinspector.distributed import expand_inputs, run_ray
    run_ray(expand_inputs([sys.argv[1]]), sys.argv[2], inspector_options={"engine": "classic"},
            address=sys.argv[3], actors=2, batch_size=1, part_rows=1, progress=False)
""")


@pytest.mark.xdist_group("ray")
def test_ray_resumes_after_sigkill(ray_address, photos, tmp_path):
    """A driver killed with SIGKILL mid-run: what it committed is whole, and a rerun adds the rest once."""
    folder = tmp_path / "many"
    from skimage import data

    sources = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    paths = [_save(sources[i % 4], folder / f"{i:02d}.jpg", long_side=512 + 8 * i) for i in range(16)]
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, str(folder), str(out), ray_address], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if out.is_dir() and len([n for n in os.listdir(out) if n.startswith("part-")]) >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, proc.stderr.read().decode(errors="replace")[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    committed = read_results(out)
    assert 2 <= len(committed) < len(paths), "the run was not stopped midway"
    assert len(_by_path(committed)) == len(committed)
    summary = run_ray(expand_inputs([str(folder)]), out, inspector_options=OPTIONS, actors=2, progress=False)
    assert summary.skipped == len(committed)
    rows = _by_path(read_results(out))
    assert sorted(rows) == sorted(paths) and all("error" not in r for r in rows.values())


@pytest.mark.xdist_group("ray")
def test_ray_manifest_input_through_the_cli(ray_address, photos, tmp_path):
    from typer.testing import CliRunner

    from picinspector.cli import app

    manifest = tmp_path / "manifest.parquet"
    listed = [photos["good"][0], "file://" + os.path.abspath(photos["good"][4]), photos["bad"][1]]
    pq.write_table(pa.table({"uri": listed}), manifest)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["analyze", str(manifest), "--ray", "--ray-actors", "2", "--no-progress", "--engine", "classic",
                                      "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 analysed, 0 already done, 1 failed" in result.output
    rows = _by_path(read_results(out))
    assert sorted(rows) == sorted(listed)
    local = _local_rows([photos["good"][4]], tmp_path)[photos["good"][4]]
    uri_row = rows[listed[1]]
    assert {**uri_row, "path": photos["good"][4]} == local  # the URI's row is the local file's row
    assert rows[listed[2]]["error"]["kind"] == "not_an_image"


def test_cli_ray_usage_errors(tmp_path):
    from typer.testing import CliRunner

    from picinspector.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["analyze", str(tmp_path), "--ray"])
    assert result.exit_code == 2 and "--ray needs -o" in result.output
    result = runner.invoke(app, ["analyze", str(tmp_path), "--ray", "-j", "2", "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--ray-actors" in result.output
    result = runner.invoke(app, ["analyze", str(tmp_path), "--ray-actors", "2"])
    assert result.exit_code == 2 and "applies to --ray" in result.output


@pytest.mark.xdist_group("ray")
def test_a_dead_ray_worker_costs_only_its_own_photo(ray_address, photos, tmp_path, monkeypatch):
    """A photo that kills its worker process (a decoder crash, out of memory) gets an internal_error row once
    it has killed one alone; the photos that were in its batch get their normal rows."""
    from picinspector.distributed import _ray

    class Crashing(distributed.Analyser):
        def __call__(self, batch):
            if any(p.endswith("crash.jpg") for p in batch.column("path").to_pylist()):
                os._exit(3)
            return super().__call__(batch)

    monkeypatch.setattr(_ray, "TASK_RETRIES", 0)  # one death per try is enough here
    crash = tmp_path / "crash.jpg"
    crash.write_bytes(Path(photos["good"][0]).read_bytes())
    paths = [photos["good"][1], str(crash), photos["good"][2]]
    out = tmp_path / "out"
    summary = run_ray(paths, out, inspector_options=OPTIONS, actors=1, batch_size=3, progress=False,
                      actor_class=Crashing)
    assert (summary.analysed, summary.failed, summary.extra["lost_with_workers"]) == (2, 1, 3)
    rows = _by_path(read_results(out))
    assert rows[str(crash)]["error"]["kind"] == "internal_error"
    assert "died while analysing this file alone" in rows[str(crash)]["error"]["message"]
    assert rows[photos["good"][1]] == _local_rows([photos["good"][1]], tmp_path)[photos["good"][1]]


def test_a_local_run_and_a_ray_store_share_one_output_lock(tmp_path):
    from picinspector.batch import _OutputLock

    out = str(tmp_path / "out.jsonl")
    with _OutputLock(out):  # what a local `analyze -o out.jsonl` holds for its whole run
        with pytest.raises(distributed.OutputLocked, match=r"another picinspector run \(pid \d+"):
            distributed.JsonlStore(out)
    store = distributed.JsonlStore(out)
    with pytest.raises(distributed.OutputLocked, match="another picinspector run"):
        _OutputLock(out).__enter__()
    store.close()
    with _OutputLock(out):  # released on close
        pass
