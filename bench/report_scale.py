"""Size and load time of a big HTML report (default 2,000 photos), in headless Chromium.

1. Analyses N photos of a folder with `picinspector analyze ... -o RESULTS.jsonl -j 2` (resumable:
   a rerun reuses the results).
2. Builds the report twice with `picinspector report`: photos embedded (data URIs) and with
   ``--assets`` (files beside the page); times both and measures their sizes.
3. Opens each page in Debian's Chromium (tests/_browser.py) ``--loads`` times and reports, as the
   median: the load event, the moment the page is ready (data parsed, 2,000 cards placed, summary
   drawn), the JS heap, and the time to re-sort and to filter the whole gallery.

    .venv/bin/python bench/report_scale.py --photos ../shared/data/biq2021_train/images --n 2000
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

_SORT = """
const t = performance.now();
const s = document.getElementById('sort'); s.value = arguments[0]; s.dispatchEvent(new Event('change'));
return performance.now() - t;
"""
_FILTER = """
const s = document.getElementById('filter-scene');
const t = performance.now();
s.value = s.options[1].value; s.dispatchEvent(new Event('change'));
const dt = performance.now() - t;
s.value = ''; s.dispatchEvent(new Event('change'));
return dt;
"""


def _run(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and all its worker processes)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return round(wall, 1), round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1)


def _browser_figures(page: Path, loads: int) -> dict:
    from _browser import chromium, console_errors, wait_ready

    runs = []
    with chromium() as driver:
        for _ in range(loads):
            driver.get("about:blank")
            driver.get(page.as_uri())
            wait_ready(driver, 300)
            nav = driver.execute_script("const t = performance.timing; return t.loadEventEnd - t.navigationStart;")
            ready = float(driver.find_element("tag name", "body").get_attribute("data-ready-ms"))
            cards = driver.execute_script("return document.querySelectorAll('#gallery > .card').length")
            filled = driver.execute_script("return document.querySelectorAll('#gallery > .card:not(.shell)').length")
            heap = driver.execute_script("return performance.memory ? performance.memory.usedJSHeapSize : null")
            sort_ms = driver.execute_script(_SORT, "quality")
            filter_ms = driver.execute_script(_FILTER)
            driver.execute_script(_SORT, "order")
            runs.append({"load_event_ms": nav, "ready_ms": ready, "cards": cards, "filled_at_start": filled,
                         "js_heap_mb": heap / 2**20 if heap else None, "sort_ms": sort_ms, "filter_ms": filter_ms})
        errors = console_errors(driver)
    out = {k: round(statistics.median(r[k] for r in runs), 1) for k in runs[0] if runs[0][k] is not None}
    out["console_errors"] = len(errors)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", default=str(ROOT.parent / "shared/data/biq2021_train/images"))
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--work", default=str(ROOT / "bench/_work/report_scale"))
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--loads", type=int, default=3, help="page loads per report (median)")
    args = ap.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    paths = sorted(glob.glob(os.path.join(args.photos, "*.jpg")))
    if len(paths) < args.n:
        raise SystemExit(f"need {args.n} photos in {args.photos}, found {len(paths)}")
    step = len(paths) / args.n
    chosen = [paths[int(i * step)] for i in range(args.n)]
    results = work / f"results_{args.n}.jsonl"
    cli = [sys.executable, "-m", "picinspector"]
    analyse = _run([*cli, "analyze", *chosen, "-o", str(results), "-j", str(args.jobs), "--no-progress"])

    figures: dict = {"photos": args.n, "analyse_wall_cpu_s": analyse, "jobs": args.jobs}
    embedded = work / f"report_{args.n}.html"
    figures["build_embedded_wall_cpu_s"] = _run([*cli, "report", str(results), "-o", str(embedded), "-j",
                                                 str(args.jobs), "--no-progress"])
    figures["embedded_mb"] = round(embedded.stat().st_size / 1e6, 1)
    assets = work / f"report_{args.n}_assets"
    linked = work / f"report_{args.n}_linked.html"
    figures["build_assets_wall_cpu_s"] = _run([*cli, "report", str(results), "-o", str(linked), "--assets",
                                               str(assets), "-j", str(args.jobs), "--no-progress"])
    figures["linked_html_mb"] = round(linked.stat().st_size / 1e6, 1)
    figures["assets_mb"] = round(sum(p.stat().st_size for p in assets.iterdir()) / 1e6, 1)
    figures["embedded_page"] = _browser_figures(embedded, args.loads)
    figures["linked_page"] = _browser_figures(linked, args.loads)
    print(json.dumps(figures, indent=1))
    (work / f"figures_{args.n}.json").write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
