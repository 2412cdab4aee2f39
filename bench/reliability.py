"""Reliability, the full version of tests/test_reliability.py: fuzzed files under a memory limit, peak
memory of images near the pixel limit, bombs, kills at random points, stop signals, two runs on one
output, and reproducibility. Prints the figures for docs/reliability.md (markdown) and writes them to
bench/_work/reliability.json.

    .venv/bin/python bench/reliability.py                       # everything (about 30-60 min on 2 cores)
    .venv/bin/python bench/reliability.py --only fuzz --fuzz 7000 --limit-gb 4
    .venv/bin/python bench/reliability.py --only memory --limit-gb 2.5
    .venv/bin/python bench/reliability.py --only kills --kills 20

Every run of `picinspector` here is a real subprocess (`python -m picinspector.cli`); "left behind"
counts processes that carried the run's tag in their environment and were still alive 10 s after it
ended (workers, the resource tracker).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the hostile-file makers the tests use
sys.path.insert(0, str(ROOT / "src"))

from _hostile import (gif_bytes, jpeg_claiming, mutate, png_header, png_with_idat_length, tiff_header,  # noqa: E402
                      write_png, write_seeds, write_tiff)

import psutil  # noqa: E402
from _processes import left_behind, tagged  # noqa: E402
from PIL import Image  # noqa: E402

Image.MAX_IMAGE_PIXELS = None  # this script makes images near the limit on purpose

WORK = ROOT / "bench" / "_work" / "reliability"
CLI = [sys.executable, "-m", "picinspector.cli"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
       "COLUMNS": "200"}


def _limit(gb: float | None):
    if not gb:
        return None
    size = int(gb * (1 << 30))
    return lambda: resource.setrlimit(resource.RLIMIT_AS, (size, size))


#: The environment variable that marks a benchmark run and the processes it starts.
BENCH_TAG = "PICINSPECTOR_BENCH_TAG"


def _tagged(tag: str) -> list:
    return tagged(tag, BENCH_TAG)


def _left_behind(tag: str, timeout: float = 10.0) -> int:
    """How many processes of a tagged run outlived it; they are killed, so as not to disturb the next round."""
    alive = left_behind(tag, timeout, BENCH_TAG, poll=0.1)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            pass
    return len(alive)


def _rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    data = path.read_bytes()
    return [json.loads(line) for line in data[: data.rfind(b"\n") + 1].decode("utf-8").splitlines()]


def _photos(folder: Path, n: int, size=(480, 360)) -> list[Path]:
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    sources = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    out = []
    for i in range(n):
        path = folder / f"img{i:04d}.jpg"
        if not path.exists():
            Image.fromarray(np.ascontiguousarray(np.rot90(sources[i % 4], k=(i // 4) % 4))).resize(size).save(path, quality=88)
        out.append(path)
    return out


# --------------------------------------------------------------------------------------------------


def bench_fuzz(n: int, jobs: int, limit_gb: float | None, seed: int) -> dict:
    folder = WORK / f"fuzz_{n}_{seed}"
    files = folder / "files"
    if not files.exists():
        seeds = write_seeds(folder / "seeds")
        files.mkdir(parents=True)
        rng = np.random.default_rng(seed)
        for i in range(n):
            source = seeds[i % len(seeds)]
            (files / f"f{i:05d}{source.suffix}").write_bytes(mutate(source.read_bytes(), rng))
    formats = Counter(p.suffix for p in files.iterdir())
    out = folder / "out.jsonl"
    for extra in (out, Path(f"{out}.log"), Path(f"{out}.lock")):
        extra.unlink(missing_ok=True)
    tag = f"fuzz-{os.getpid()}"
    started = time.monotonic()
    proc = subprocess.Popen([*CLI, "analyze", str(files), "-o", str(out), "-j", str(jobs), "--no-progress"],
                            env={**ENV, BENCH_TAG: tag}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=_limit(limit_gb))
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, max((p.memory_info().rss for p in _tagged(tag)), default=0))
        except psutil.Error:
            pass
        time.sleep(0.2)
    stdout, stderr = proc.communicate()
    wall = time.monotonic() - started
    rows = _rows(out)
    kinds = Counter(r["error"]["kind"] if "error" in r else "ok" for r in rows)
    died = sum(1 for r in rows if "error" in r and "worker process died" in r["error"]["message"])
    stderr_lines = [line for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    log = Path(f"{out}.log")
    result = {
        "files": n, "formats": dict(formats), "jobs": jobs, "limit_gb": limit_gb, "exit_code": proc.returncode,
        "rows": len(rows), "unique_paths": len({r["path"] for r in rows}), "outcomes": dict(kinds),
        "internal_errors": kinds.get("internal_error", 0), "worker_deaths": died,
        "stderr_lines": len(stderr_lines), "stderr_tracebacks": stderr.count(b"Traceback"),
        "log_lines": log.read_text(encoding="utf-8").count("\n") if log.exists() else 0,
        "wall_s": round(wall, 1), "files_per_s": round(n / wall, 1), "peak_rss_mb_any_process": round(peak / 2**20),
        "left_behind": _left_behind(tag),
    }
    print("fuzz:", json.dumps(result))
    return result


# --------------------------------------------------------------------------------------------------

_MEASURE = ("import sys, time; from picinspector import Inspector\n"
            "native = sys.argv[2] == '1'\n"
            "ins = Inspector(threads=1, native_detail=native)\n"
            "t = time.monotonic()\n"
            "try:\n"
            "    r = ins.analyze(sys.argv[1]); out = 'ok'\n"
            "except Exception as e:\n"
            "    out = getattr(e, 'kind', type(e).__name__)\n"
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')]\n"
            "print(out, round(time.monotonic() - t, 3), int(hwm[0].split()[1]) // 1024 if hwm else -1)\n")


def _measure(path: Path, native: bool, limit_gb: float | None) -> dict:
    proc = subprocess.Popen([sys.executable, "-c", _MEASURE, str(path), "1" if native else "0"], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_limit(limit_gb))
    stdout, stderr = proc.communicate()
    out = stdout.decode().split()
    # VmHWM: the peak resident set of this process's own address space (ru_maxrss would count the
    # parent's pages at fork time, before exec)
    return {"peak_rss_mb": int(out[2]) if len(out) > 2 else None,
            "result": out[0] if out else f"died ({proc.returncode})",
            "analyse_s": float(out[1]) if len(out) > 1 else None, "traceback": b"Traceback" in stderr}


def _big_files() -> list[tuple[str, Path, bool]]:
    """(label, file, native_detail) near the 200-MP limit, made once and kept in bench/_work."""
    folder = WORK / "big"
    folder.mkdir(parents=True, exist_ok=True)
    made = []

    def want(name: str, make) -> Path:
        path = folder / name
        if not path.exists():
            started = time.monotonic()
            make(path)
            print(f"  made {name} in {time.monotonic() - started:.0f} s", flush=True)
        return path

    made.append(("PNG 8-bit RGB 13000x13000 (169 MP)", want("png8_169mp.png", lambda p: write_png(p, 13000, 13000)), False))
    made.append(("PNG 16-bit RGB 7000x7000 (49 MP, full precision)",
                 want("png16_49mp.png", lambda p: write_png(p, 7000, 7000, depth=16)), False))
    made.append(("PNG 16-bit RGB 12000x12000 (144 MP)", want("png16_144mp.png", lambda p: write_png(p, 12000, 12000, depth=16)), False))
    made.append(("PNG 8-bit RGBA 10000x10000 (100 MP)", want("png8a_100mp.png", lambda p: write_png(p, 10000, 10000, channels=4)), False))
    made.append(("TIFF 8-bit RGB deflate 14000x14000 (196 MP)", want("tif8_196mp.tif", lambda p: write_tiff(p, 14000, 14000)), False))

    def jpeg(path: Path) -> None:
        Image.open(folder / "tif8_196mp.tif").convert("RGB").save(path, quality=90)

    big_jpeg = want("jpeg_196mp.jpg", jpeg)
    made.append(("JPEG 14000x14000 (196 MP)", big_jpeg, False))
    made.append(("JPEG 14000x14000 (196 MP), --native-detail", big_jpeg, True))

    def gif(path: Path) -> None:
        img = Image.new("P", (13376, 13376), 0)
        img.putpalette([0, 0, 0, 255, 255, 255] * 128)
        img.paste(1, (0, 0, 6688, 6688))
        img.save(path)

    made.append(("GIF 13376x13376 (179 MP)", want("gif_179mp.gif", gif), False))

    def webp(path: Path) -> None:
        Image.open(folder / "tif8_196mp.tif").convert("RGB").resize((12000, 12000)).save(path, quality=80)

    made.append(("WebP 12000x12000 (144 MP)", want("webp_144mp.webp", webp), False))
    def heif(size: tuple[int, int], fmt: str):
        def make(path: Path) -> None:
            import pillow_heif

            pillow_heif.register_heif_opener()
            Image.open(folder / "tif8_196mp.tif").convert("RGB").resize(size).save(path, format=fmt, quality=60)
        return make

    made.append(("HEIC 8000x6000 (48 MP)", want("heic_48mp.heic", heif((8000, 6000), "HEIF")), False))
    made.append(("AVIF 6000x4000 (24 MP)", want("avif_24mp.avif", heif((6000, 4000), "AVIF")), False))
    made.append(("PNG claiming a 2-GB IDAT (25 KB)", want("idat_claim.png", lambda p: p.write_bytes(png_with_idat_length(4000, 3000))), False))
    made.append(("GIF 62 bytes claiming 13376x13376", want("gif62.gif", lambda p: p.write_bytes(gif_bytes(13376, 13376))), False))
    return made


def bench_memory(limit_gb: float | None) -> list[dict]:
    results = []
    for label, path, native in _big_files():
        free = _measure(path, native, None)
        limited = _measure(path, native, limit_gb) if limit_gb else None
        row = {"file": label, "bytes": path.stat().st_size, **free,
               "under_limit": None if limited is None else limited["result"], "limit_gb": limit_gb}
        print("memory:", json.dumps(row), flush=True)
        results.append(row)
    return results


def bench_bombs() -> list[dict]:
    folder = WORK / "bombs"
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "PNG header 20000x20000 (400 MP)": ("png400.png", png_header(20000, 20000)),
        "PNG header 65535x65535": ("png4g.png", png_header(65535, 65535)),
        "TIFF header 30000x30000": ("tif900.tif", tiff_header(30000, 30000)),
        "GIF 65535x65535": ("gif4g.gif", gif_bytes(65535, 65535)),
    }
    files["JPEG SOF 30000x20000 (600 MP)"] = ("jpeg600.jpg", jpeg_claiming(30000, 20000))
    files["JPEG SOF 15000x13400 (201 MP)"] = ("jpeg201.jpg", jpeg_claiming(15000, 13400))
    files["JPEG SOF 15000x12000 (180 MP, accepted)"] = ("jpeg180.jpg", jpeg_claiming(15000, 12000))
    from picinspector.io import load_photo

    results = []
    for label, (name, data) in files.items():
        path = folder / name
        path.write_bytes(data)
        times = []
        for _ in range(3):  # the first call also imports Pillow's plugins: the fastest of three
            started = time.perf_counter()
            try:
                load_photo(path)
                kind = "accepted"
            except Exception as exc:  # noqa: BLE001
                kind = getattr(exc, "kind", type(exc).__name__)
            times.append(time.perf_counter() - started)
        row = {"file": label, "result": kind, "ms": round(1000 * min(times), 1)}
        print("bomb:", json.dumps(row))
        results.append(row)
    return results


# --------------------------------------------------------------------------------------------------


def bench_kills(rounds: int, n: int, jobs: int, seed: int) -> dict:
    folder = WORK / "kills"
    paths = _photos(folder / "photos", n)
    out = folder / "out.jsonl"
    out.unlink(missing_ok=True)
    cmd = [*CLI, "analyze", str(folder / "photos"), "-o", str(out), "-j", str(jobs), "--no-progress"]
    rng = np.random.default_rng(seed)
    left, tracebacks, killed_at = 0, 0, []
    for round_ in range(rounds):
        if len(_rows(out)) >= n:
            out.unlink()
        tag = f"kill-{os.getpid()}-{round_}"
        proc = subprocess.Popen(cmd, env={**ENV, BENCH_TAG: tag}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        started = time.monotonic()
        if rng.random() < 0.3:  # during start-up: imports, options, workers starting
            time.sleep(float(rng.uniform(0.1, 3.0)))
            where = "start-up"
        else:  # mid-run: after a random number of new rows, at a random moment of the next image
            target = len(_rows(out)) + int(rng.integers(1, max(2, n // 4)))
            while proc.poll() is None and len(_rows(out)) < target and time.monotonic() - started < 300:
                time.sleep(0.005)
            time.sleep(float(rng.uniform(0, 0.5)))
            where = "mid-run"
        if len(_rows(out)) == 0 and where == "mid-run":
            where = "start-up"
        proc.send_signal(signal.SIGKILL)
        stderr = proc.communicate(timeout=60)[1]
        killed_at.append([where, round(time.monotonic() - started, 2), len(_rows(out))])
        left += _left_behind(tag)
        tracebacks += stderr.count(b"Traceback")
    before = _rows(out)
    final = subprocess.run(cmd, env=ENV, capture_output=True, timeout=1200)
    rows = _rows(out)
    counts = Counter(r["path"] for r in rows)
    result = {"rounds": rounds, "photos": n, "jobs": jobs, "rows_before_final_resume": len(before),
              "final_exit": final.returncode, "rows": len(rows), "lost": len(set(map(str, paths)) - set(counts)),
              "duplicated": sum(c - 1 for c in counts.values()), "error_rows": sum(1 for r in rows if "error" in r),
              "left_behind": left, "tracebacks": tracebacks,
              "kills": dict(Counter(k[0] for k in killed_at)), "kill_points": killed_at}
    print("kills:", json.dumps(result))
    return result


def bench_signals(rounds: int, jobs: int) -> list[dict]:
    folder = WORK / "signals"
    paths = _photos(folder / "photos", 30)
    results = []
    cases = {"Ctrl-C": (signal.SIGINT,), "Ctrl-C twice": (signal.SIGINT, signal.SIGINT), "SIGTERM": (signal.SIGTERM,),
             "SIGHUP": (signal.SIGHUP,)}
    for label, sigs in cases.items():
        times, codes, left, tracebacks, hints, lost = [], Counter(), 0, 0, 0, 0
        for round_ in range(rounds):
            out = folder / f"out_{round_}.jsonl"
            out.unlink(missing_ok=True)
            tag = f"sig-{os.getpid()}-{label}-{round_}"
            cmd = [*CLI, "analyze", str(folder / "photos"), "-o", str(out), "-j", str(jobs), "--no-progress"]
            proc = subprocess.Popen(cmd, env={**ENV, BENCH_TAG: tag}, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
            while proc.poll() is None and len(_rows(out)) < 2:
                time.sleep(0.01)
            sent = time.monotonic()
            for sig in sigs:
                proc.send_signal(sig)
                time.sleep(0.1)
            stderr = proc.communicate(timeout=600)[1]
            times.append(time.monotonic() - sent)
            codes[proc.returncode] += 1
            left += _left_behind(tag)
            tracebacks += stderr.count(b"Traceback")
            hints += b"Run the same command again to resume" in stderr
            subprocess.run(cmd, env=ENV, capture_output=True, timeout=600)
            got = Counter(r["path"] for r in _rows(out))
            lost += len(set(map(str, paths)) - set(got)) + sum(c - 1 for c in got.values())
        row = {"signal": label, "rounds": rounds, "exit_codes": dict(codes), "median_s_to_exit": round(float(np.median(times)), 2),
               "max_s_to_exit": round(max(times), 2), "left_behind": left, "tracebacks": tracebacks,
               "resume_hints": hints, "lost_or_duplicated_after_resume": lost}
        print("signals:", json.dumps(row))
        results.append(row)
    return results


def bench_two_runs(rounds: int, jobs: int) -> dict:
    folder = WORK / "two"
    paths = _photos(folder / "photos", 40)
    outcomes, mismatched = Counter(), 0
    for round_ in range(rounds):
        out = folder / f"out_{round_}.jsonl"
        out.unlink(missing_ok=True)
        cmd = [*CLI, "analyze", str(folder / "photos"), "-o", str(out), "-j", str(jobs), "--no-progress"]
        first = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0 if round_ % 2 == 0 else 3)  # together, or 3 s apart
        second = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for proc in (first, second):
            proc.communicate(timeout=900)
        outcomes[tuple(sorted((first.returncode, second.returncode)))] += 1
        got = Counter(r["path"] for r in _rows(out))
        mismatched += got != Counter(map(str, paths))
    result = {"rounds": rounds, "exit_codes": {str(k): v for k, v in outcomes.items()}, "rounds_not_exactly_once": mismatched}
    print("two runs:", json.dumps(result))
    return result


def bench_reproducible(n: int) -> dict:
    from picinspector import Inspector

    shared = ROOT.parent / "shared" / "data" / "biq2021_train" / "images"
    paths = sorted(shared.glob("*.jpg"))[:n] if shared.is_dir() else _photos(WORK / "repro", n, size=(1024, 768))
    differing, compared = 0, 0
    runs = []
    for threads in (1, 2, 1, 2):
        with Inspector(threads=threads) as inspector:
            runs.append([inspector.analyze(p).measures for p in paths])
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            compared += len(a)
            differing += sum(1 for k in a if repr(a[k]) != repr(b[k]))
    result = {"photos": len(paths), "source": "BIQ2021" if shared.is_dir() else "samples", "values_compared": compared,
              "values_differing": differing}
    print("reproducible:", json.dumps(result))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["fuzz", "memory", "bombs", "kills", "signals", "two", "repro"], action="append")
    parser.add_argument("--fuzz", type=int, default=5000, help="mutated files")
    parser.add_argument("--kills", type=int, default=20, help="SIGKILL rounds")
    parser.add_argument("--signals", type=int, default=5, help="rounds per signal")
    parser.add_argument("--two", type=int, default=6, help="rounds of two runs on one output")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--limit-gb", type=float, default=2.5, help="address-space limit per process (RLIMIT_AS)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    only = set(args.only or ["fuzz", "memory", "bombs", "kills", "signals", "two", "repro"])
    report = {"date": datetime.date.today().isoformat(), "python": platform.python_version(),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "command": " ".join(sys.argv)}
    if "bombs" in only:
        report["bombs"] = bench_bombs()
    if "repro" in only:
        report["reproducible"] = bench_reproducible(40)
    if "fuzz" in only:
        report["fuzz"] = bench_fuzz(args.fuzz, args.jobs, args.limit_gb, args.seed)
    if "memory" in only:
        report["memory"] = bench_memory(args.limit_gb)
    if "kills" in only:
        report["kills"] = bench_kills(args.kills, 60, args.jobs, args.seed)
    if "signals" in only:
        report["signals"] = bench_signals(args.signals, args.jobs)
    if "two" in only:
        report["two_runs"] = bench_two_runs(args.two, args.jobs)
    out = WORK / "reliability.json"
    previous = json.loads(out.read_text()) if out.exists() else {}
    out.write_text(json.dumps({**previous, **report}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
