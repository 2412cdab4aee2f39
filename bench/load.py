"""Load test of `picinspector serve` on loopback: N clients, M requests of real photos.

Starts the real server (a subprocess, `picinspector serve`), sends ``--requests`` POST /v1/analyze
requests, one photo each, from ``--clients`` concurrent clients (keep-alive connections), and
prints errors, latency p50/p95/max, throughput, and the server's RSS and CPU time before and
after. A reference in the same run (the same photos analysed in one process, one thread) tells how
loaded the machine was.

    .venv/bin/python bench/load.py --photos ../shared/data/biq2021_train/images --clients 8 --requests 500

Without --photos (or when the folder is missing) it uses the demo's sample photos.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _photos(folder: str | None, n: int) -> list[Path]:
    if folder and os.path.isdir(folder):
        paths = sorted(Path(p) for p in glob.glob(os.path.join(folder, "*.jpg")))
        if paths:
            step = max(1, len(paths) // n)
            return paths[::step][:n]
    from picinspector.samples import write_samples

    out = Path(tempfile.mkdtemp(prefix="picinspector-load-"))
    return write_samples(out)


def _rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def _cpu_s(pid: int) -> float:
    import psutil

    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", default=str(ROOT.parent / "shared/data/biq2021_train/images"))
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--distinct", type=int, default=100, help="distinct photos, cycled over the requests")
    ap.add_argument("--concurrency", type=int, default=None, help="the server's --concurrency")
    ap.add_argument("--overlays", action="store_true", help="ask for ?overlays=true (what the web page does)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args()

    import httpx

    photos = _photos(args.photos, args.distinct)
    blobs = [(p.name, p.read_bytes()) for p in photos]
    port = _free_port()
    cmd = [sys.executable, "-m", "picinspector", "serve", "--port", str(port), "--log-level", "warning",
           "--queue", str(max(32, args.clients * 2))]
    if args.concurrency:
        cmd += ["--concurrency", str(args.concurrency)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    server = subprocess.Popen(cmd, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                health = httpx.get(base + "/healthz", timeout=2).json()
                break
            except httpx.HTTPError:
                if time.time() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start")
                time.sleep(0.3)
        rss_before, cpu_before = _rss_mb(server.pid), _cpu_s(server.pid)

        # reference in the same run: the same photos, one process, one thread, no HTTP
        from picinspector import Inspector

        ref_photos = photos[:20]
        with Inspector(threads=1) as inspector:
            inspector.analyze(ref_photos[0])
            t0 = time.process_time()
            for p in ref_photos:
                inspector.analyze(p)
            ref_ms = (time.process_time() - t0) / len(ref_photos) * 1e3

        latencies: list[float] = []
        failures: list[str] = []
        counter = iter(range(args.requests))
        lock = threading.Lock()
        params = {"overlays": "true"} if args.overlays else {}

        def client() -> None:
            with httpx.Client(base_url=base, timeout=120) as http:
                while True:
                    with lock:
                        i = next(counter, None)
                    if i is None:
                        return
                    name, data = blobs[i % len(blobs)]
                    t = time.perf_counter()
                    try:
                        r = http.post("/v1/analyze", params=params, files={"files": (name, data, "image/jpeg")})
                        ok = r.status_code == 200 and "error" not in r.json()["results"][0]
                        why = None if ok else f"{r.status_code} {r.text[:200]}"
                    except httpx.HTTPError as exc:
                        why = f"{type(exc).__name__}: {exc}"
                    dt = time.perf_counter() - t
                    with lock:
                        latencies.append(dt)
                        if why:
                            failures.append(why)

        start = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        rss_after, cpu_after = _rss_mb(server.pid), _cpu_s(server.pid)
        health_after = httpx.get(base + "/healthz", timeout=5).json()
    finally:
        server.terminate()
        server.wait(30)

    figures = {
        "requests": len(latencies), "clients": args.clients, "errors": len(failures),
        "server_concurrency": health["limits"]["concurrency"], "distinct_photos": len(blobs),
        "photo_size": "x".join(map(str, __import__("PIL.Image", fromlist=["Image"]).open(photos[0]).size)),
        "overlays": args.overlays,
        "p50_ms": round(statistics.median(latencies) * 1e3), "p95_ms": round(_pct(latencies, 0.95) * 1e3),
        "max_ms": round(max(latencies) * 1e3), "throughput_rps": round(len(latencies) / wall, 2),
        "wall_s": round(wall, 1), "server_cpu_ms_per_request": round((cpu_after - cpu_before) / len(latencies) * 1e3),
        "reference_cpu_ms_per_photo": round(ref_ms), "rss_before_mb": round(rss_before), "rss_after_mb": round(rss_after),
        "in_flight_after": health_after["analyses"], "cpus": os.cpu_count(),
    }
    print("| requests | clients | errors | p50 | p95 | max | throughput | server CPU / request | reference CPU / photo "
          "| RSS before | RSS after |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    f = figures
    print(f"| {f['requests']} | {f['clients']} | {f['errors']} | {f['p50_ms']} ms | {f['p95_ms']} ms | {f['max_ms']} ms "
          f"| {f['throughput_rps']} req/s | {f['server_cpu_ms_per_request']} ms | {f['reference_cpu_ms_per_photo']} ms "
          f"| {f['rss_before_mb']} MB | {f['rss_after_mb']} MB |")
    print(json.dumps(figures))
    if failures:
        print("first failures:", *failures[:5], sep="\n  ")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
