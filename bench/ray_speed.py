"""Ray against the local pool: photos/s for ``-j 2`` and for Ray with 2 actors on the same photos, in one run,
and Ray's fixed start-up cost. Target: Ray within 15% of the local pool's throughput once started.

    .venv/bin/python bench/ray_speed.py [--n 2000] [--jobs 2] [--actors 2] [--order local,ray]

Photos: ``--n`` BIQ2021 photos (../shared/data/biq2021_train, chosen with a fixed seed), or ``--data FOLDER``.
For each side it records the time to the first row (start-up: worker processes or Ray, actors and their
models, one batch), the time to the last, and the throughput once started,
``(rows - rows of the first batch) / (time of the last - time of the first)``. Ray's start-up cost is its
whole wall time less ``n / its throughput once started``. Each side also runs first on ``--small`` (10%) of
the photos: the slope between the two wall times is the throughput free of any start-up, and its
intercept the start-up (the fairer pair of figures; Ray returns rows in blocks, so its first row comes late). It also times what the driver does per row
(Arrow conversion and a Parquet commit), the ceiling of one driver on a large cluster. Results go to
bench/_work/ray_speed.json; the table is printed as Markdown.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import time

from _common import WORK, biq_images

OPTIONS = {"engine": "classic", "feedback": "rules"}


def local_pool(paths: list[str], jobs: int) -> dict:
    from contextlib import closing

    from picinspector.batch import iter_rows

    start = time.perf_counter()
    first = last = None
    failed = 0
    with closing(iter_rows(paths, jobs=jobs, inspector_options=OPTIONS)) as rows:
        for row in rows:
            last = time.perf_counter() - start
            first = first if first is not None else last
            failed += "error" in row
    n = len(paths)
    return {"side": f"local pool -j {jobs}", "n": n, "failed": failed, "wall_s": last, "first_row_s": first,
            "steady_per_s": (n - 1) / (last - first), "end_to_end_per_s": n / last}


def ray_run(paths: list[str], actors: int, out: str) -> dict:
    from picinspector.distributed import run_ray

    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    summary = run_ray(paths, out, inspector_options=OPTIONS, actors=actors, num_cpus=actors, progress=False)
    wall = time.perf_counter() - start  # with ray.shutdown()
    n = summary.analysed + summary.failed
    last = summary.elapsed_s
    steady = (n - summary.first_rows) / (last - summary.first_row_s)
    return {"side": f"Ray, {actors} actors", "n": n, "failed": summary.failed, "wall_s": wall,
            "init_s": summary.init_s, "first_row_s": summary.first_row_s, "first_rows": summary.first_rows,
            "steady_per_s": steady, "end_to_end_per_s": n / wall, "startup_cost_s": wall - n / steady,
            "parts": summary.parts}


def driver_cost(out: str) -> dict:
    """Seconds per row the driver spends: rows -> Arrow -> one Parquet part (what it does for every row)."""
    from picinspector.distributed import ParquetStore, read_results, rows_to_table

    rows = read_results(out)
    start = time.perf_counter()
    table = rows_to_table(rows)
    convert = time.perf_counter() - start
    folder = os.path.join(WORK, "ray_driver_cost")
    shutil.rmtree(folder, ignore_errors=True)
    store = ParquetStore(folder)
    start = time.perf_counter()
    store.commit(table)
    commit = time.perf_counter() - start
    store.close()
    size = sum(os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder) if n.startswith("part-"))
    return {"rows": len(rows), "arrow_us_per_row": 1e6 * convert / len(rows),
            "commit_us_per_row": 1e6 * commit / len(rows), "bytes_per_row": size / len(rows)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--data", help="a folder of photos instead of BIQ2021")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--actors", type=int, default=2)
    ap.add_argument("--order", default="local,ray", help="which side runs first (both run in this process)")
    ap.add_argument("--small", type=float, default=0.1,
                    help="also run each side on this fraction of the photos first: throughput from the slope "
                         "between the two sizes, start-up from its intercept (0: skip)")
    args = ap.parse_args()
    if args.data:
        from picinspector.batch import iter_inputs

        paths = iter_inputs([args.data])[: args.n]
    else:
        paths = [str(p) for p in biq_images(args.n)]
    if not paths:
        raise SystemExit("no photos: ../shared/data/biq2021_train is missing; pass --data FOLDER")
    os.makedirs(WORK, exist_ok=True)
    out = os.path.join(WORK, "ray_speed_out")
    load_before = os.getloadavg()
    results = []
    small = max(2, int(len(paths) * args.small))
    for side in args.order.split(","):
        run = (lambda p: local_pool(p, args.jobs)) if side == "local" else (lambda p: ray_run(p, args.actors, out))
        short = run(paths[:small]) if args.small > 0 else None
        full = run(paths)
        if short is not None:  # the slope between two sizes: free of any start-up, whatever Ray buffers
            full["slope_per_s"] = (len(paths) - small) / (full["wall_s"] - short["wall_s"])
            full["slope_startup_s"] = short["wall_s"] - small / full["slope_per_s"]
            full["small_n"], full["small_wall_s"] = small, short["wall_s"]
        results.append(full)
        print(json.dumps(results[-1]), flush=True)
    local = next(r for r in results if r["side"].startswith("local"))
    ray = next(r for r in results if r["side"].startswith("Ray"))
    report = {
        "date": datetime.date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "python": platform.python_version(), "n": len(paths), "load_avg_before": load_before,
        "load_avg_after": os.getloadavg(), "results": results,
        "ray_over_local_steady": ray["steady_per_s"] / local["steady_per_s"],
        "ray_over_local_slope": (ray["slope_per_s"] / local["slope_per_s"]) if "slope_per_s" in ray else None,
        "ray_per_actor_per_s": ray["steady_per_s"] / args.actors, "driver": driver_cost(out),
    }
    import ray as _ray

    report["ray_version"] = _ray.__version__
    with open(os.path.join(WORK, "ray_speed.json"), "w") as fh:
        json.dump(report, fh, indent=2)
    print(f"\n{len(paths)} photos, {report['machine']}, load average {load_before[0]:.1f} -> "
          f"{report['load_avg_after'][0]:.1f}, ray {report['ray_version']}\n")
    print("| run | photos/s once started | photos/s end to end | first row (s) | wall (s) | start-up cost (s) |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['side']} | {r['steady_per_s']:.2f} | {r['end_to_end_per_s']:.2f} | {r['first_row_s']:.1f} | "
              f"{r['wall_s']:.1f} | {r.get('startup_cost_s', float('nan')):.1f} |")
    if report["ray_over_local_slope"] is not None:
        print(f"\nslope between {local['small_n']} and {len(paths)} photos: local {local['slope_per_s']:.2f} photos/s "
              f"(start-up {local['slope_startup_s']:.1f} s), Ray {ray['slope_per_s']:.2f} photos/s (start-up "
              f"{ray['slope_startup_s']:.1f} s); Ray / local {report['ray_over_local_slope']:.3f}")
    d = report["driver"]
    print(f"\nRay / local once started: {report['ray_over_local_steady']:.3f} (target >= 0.85); "
          f"per actor {report['ray_per_actor_per_s']:.2f} photos/s; ray.init {ray['init_s']:.1f} s")
    print(f"driver per row: Arrow {d['arrow_us_per_row']:.0f} us + Parquet commit {d['commit_us_per_row']:.0f} us, "
          f"{d['bytes_per_row']:.0f} bytes/row on disk")


if __name__ == "__main__":
    main()
