"""The HTML report: one self-contained page for a shoot, and the page the web app serves.

`build_report` turns result rows (from `analyze -o`, or fresh) into one ``.html`` file that opens
offline: the CSS, the JavaScript that draws every chart (hand-written SVG, `assets/cards.js`) and
the data are inlined; thumbnails and overlay masks are embedded as ``data:`` URIs, or written into an
assets folder beside the page (``assets_dir``) for big shoots. A Content-Security-Policy meta tag
forbids every network request, so nothing can be fetched even by mistake.

`render_page` is the one page template both the report and ``picinspector serve`` use: the same
cards, summary, toolbar and scripts (`PAGE_SCRIPTS`), inlined (report) or linked (server).
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import time
import urllib.parse
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from string import Template
from typing import Any, Iterable, Iterator, Sequence

from .._version import __version__

#: Scripts of the page, in load order: the card renderer, then the page app. A feature that adds a
#: report section or card badges ships one more script that registers them (see cards.js) and is
#: listed here.
PAGE_SCRIPTS: tuple[str, ...] = ("cards.js", "report.js")
#: Style sheets of the page.
PAGE_STYLES: tuple[str, ...] = ("cards.css",)

#: The report's policy: inline code only, images from data: URIs or local files, no connection.
REPORT_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
              "img-src data: blob: file: 'self'; base-uri 'none'; form-action 'none'")


def asset_text(name: str) -> str:
    """The text of a file in ``picinspector/report/assets``."""
    return resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")


def _source(name: str) -> str:
    """An asset's text: a file name in the package's assets, or an absolute path (a feature's own script)."""
    if os.path.isabs(name):
        with open(name, encoding="utf-8") as fh:
            return fh.read()
    return asset_text(name)


def _script_json(data: Any) -> str:
    """JSON that is safe inside a ``<script>`` element: no ``</script>``, ``<!--`` or line separators
    can end it early (every "<" is escaped, which JSON allows)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def render_page(data: dict[str, Any], *, title: str, inline: bool = True, asset_url: str = "assets/",
                scripts: Sequence[str] = PAGE_SCRIPTS, styles: Sequence[str] = PAGE_STYLES,
                csp: str = REPORT_CSP) -> str:
    """The report page for ``data`` = ``{"meta": {...}, "rows": [...], "extra": {...}}``.

    Parameters
    ----------
    data : dict
        ``meta`` (``title``, ``units``, ``note``, ``upload``, ...), ``rows`` (result rows, each
        optionally with a ``view``: see cards.js) and ``extra`` (data of added sections).
    title : str
        The page title.
    inline : bool
        Inline the scripts and styles (a self-contained file); otherwise link them under
        ``asset_url`` (what the server does, so that its policy can forbid inline code).
    scripts, styles : sequence of str
        Asset file names (in ``picinspector/report/assets``) or absolute paths, in order.
    csp : str
        The Content-Security-Policy of the page (a meta tag).
    """
    if inline:
        style_html = "\n".join(f"<style>\n{_source(s)}</style>" for s in styles)
        # a script's text cannot contain "</script"; ours do not, and this keeps it so
        script_html = "\n".join("<script>\n" + _source(s).replace("</script", "<\\/script") + "</script>"
                                for s in scripts)
    else:
        style_html = "\n".join(f'<link rel="stylesheet" href="{html.escape(asset_url + s)}">' for s in styles)
        script_html = "\n".join(f'<script src="{html.escape(asset_url + s)}"></script>' for s in scripts)
    return Template(asset_text("page.html")).substitute(
        csp=html.escape(csp), version=html.escape(__version__), title=html.escape(title), styles=style_html,
        scripts=script_html, data=_script_json(data))


# --------------------------------------------------------------------------------------------------
# Building a report from result rows


@dataclass
class ReportSummary:
    """What `build_report` wrote."""

    output: str
    photos: int = 0          # analysed rows in the report
    errors: int = 0          # error rows (listed at the end of the page)
    missing: int = 0         # analysed rows whose photo could not be read for a preview
    html_bytes: int = 0      # size of the page
    asset_bytes: int = 0     # size of the files written into the assets folder
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)  # "path: reason" for the missing previews


def resolve_photo(path: str, bases: Iterable[str]) -> str | None:
    """Where the photo of a result row is: its path as stored (relative to the working directory),
    else relative to each of ``bases`` (e.g. the results file's folder); None if nowhere."""
    if os.path.isfile(path):
        return path
    if not os.path.isabs(path):
        for base in bases:
            candidate = os.path.join(base, path)
            if os.path.isfile(candidate):
                return candidate
    return None


_WORKER_OPTIONS: dict[str, Any] = {}


def _init_view_worker(options: dict[str, Any]) -> None:
    import signal

    import cv2

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(1)
    _WORKER_OPTIONS.update(options)


def _view_job(path: str | None, options: dict[str, Any] | None = None) -> tuple[Any, str | None]:
    """(PhotoView or None, problem or None) for one photo path."""
    from ..errors import PicInspectorError
    from ..io import load_photo
    from ._visuals import photo_view

    options = options if options is not None else _WORKER_OPTIONS
    if path is None:
        return None, "photo not found"
    try:
        photo = load_photo(path, max_pixels=options["max_pixels"])
        return photo_view(photo, options["long_side"], options["overlays"]), None
    except PicInspectorError as exc:
        return None, exc.reason
    except Exception as exc:  # noqa: BLE001 - a preview that fails leaves a card without a picture
        return None, f"{type(exc).__name__}: {exc}"


def _views(paths: Sequence[str | None], options: dict[str, Any], jobs: int) -> Iterator[tuple[Any, str | None]]:
    """Views of ``paths`` in order, in ``jobs`` processes."""
    if jobs <= 1 or len(paths) < 8:
        for path in paths:
            yield _view_job(path, options)
        return
    import multiprocessing

    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_view_worker, initargs=(options,)) as pool:
        try:
            yield from pool.map(_view_job, paths, chunksize=8)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _href(photo: str, page_dir: str) -> str:
    """A link from the page to the original photo: relative where possible."""
    absolute = os.path.abspath(photo)
    try:
        rel = os.path.relpath(absolute, page_dir)
    except ValueError:  # another drive (Windows)
        from pathlib import Path

        return Path(absolute).as_uri()
    return urllib.parse.quote(rel.replace(os.sep, "/"))


def card_row(row: dict[str, Any], view: dict[str, Any] | None) -> dict[str, Any]:
    """A result row as a card reads it: the row, with the focus map moved into ``view`` (the page
    shows the finer one from the photo when there is one) and the view attached."""
    out = dict(row)
    measures = dict(row.get("measures") or {})
    coarse = measures.pop("focus_map", None)
    out["measures"] = measures
    view = dict(view or {})
    if not view.get("focus") and coarse and any(v is not None for r in coarse for v in r):
        view["focus"] = {"rows": len(coarse), "cols": len(coarse[0]), "grid": coarse}
    out["view"] = view
    return out


def build_report(rows: Sequence[dict[str, Any]], output: str | os.PathLike[str], *,
                 assets_dir: str | os.PathLike[str] | None = None, title: str | None = None,
                 source: str | None = None, photo_bases: Sequence[str] = (), thumb_size: int | None = None,
                 overlays: bool = True, links: bool = True, jobs: int = 1, progress: bool = False,
                 max_pixels: int | None = None, note: str | None = None, extra: dict[str, Any] | None = None,
                 scripts: Sequence[str] = PAGE_SCRIPTS) -> ReportSummary:
    """Write the HTML report of ``rows`` to ``output``.

    Parameters
    ----------
    rows : sequence of dict
        Result rows (``Report.to_dict()`` or error rows), e.g. from `read_results`.
    output : str or path-like
        The ``.html`` file (its folder is created; written atomically).
    assets_dir : str or path-like, optional
        Write thumbnails and masks as files into this folder (created) and link them, instead of
        embedding them as data URIs: a smaller page for big shoots. Keep it beside the page.
    title, source, note : str, optional
        Page title; where the rows came from (shown in the header); a note shown under it.
    photo_bases : sequence of str
        Folders against which relative photo paths are also tried (see `resolve_photo`).
    thumb_size : int, optional
        Long side of the thumbnails (default `THUMB_LONG_SIDE`, 320).
    overlays : bool
        Compute the clipping mask and the fine focus map from each photo.
    links : bool
        Link each thumbnail to the original photo (a relative file link).
    jobs : int
        Processes that read the photos for previews.
    progress : bool
        A progress bar on stderr.
    max_pixels : int, optional
        Decompression-bomb limit when reading photos (default: the loader's).
    extra : dict, optional
        Data for sections that added scripts draw (the page's ``data.extra``), e.g. burst groups.
    scripts : sequence of str
        The page's scripts (`PAGE_SCRIPTS`, plus any that register sections or badges).

    Returns
    -------
    ReportSummary
    """
    from ..batch import progress_bar
    from ..io import MAX_PIXELS
    from ..measures import measure_units
    from ._visuals import THUMB_FORMAT, THUMB_LONG_SIDE, data_uri

    started = time.perf_counter()
    output = os.fspath(output)
    page_dir = os.path.dirname(os.path.abspath(output))
    os.makedirs(page_dir, exist_ok=True)
    summary = ReportSummary(output=output)
    analysed = [r for r in rows if "error" not in r]
    errors = [r for r in rows if "error" in r]
    summary.photos, summary.errors = len(analysed), len(errors)
    paths = [resolve_photo(r["path"], photo_bases) if isinstance(r.get("path"), str) else None for r in analysed]
    options = {"long_side": int(thumb_size or THUMB_LONG_SIDE), "overlays": bool(overlays),
               "max_pixels": int(max_pixels or MAX_PIXELS)}
    if assets_dir is not None:
        assets_dir = os.fspath(assets_dir)
        os.makedirs(assets_dir, exist_ok=True)
        assets_url = urllib.parse.quote(os.path.relpath(os.path.abspath(assets_dir), page_dir).replace(os.sep, "/"))

    cards: list[dict[str, Any]] = []
    with progress_bar(progress, len(analysed)) as bar:
        task = bar.add_task("previews", total=len(analysed))
        for row, photo, (view, problem) in zip(analysed, paths, _views(paths, options, jobs)):
            view_dict: dict[str, Any] = {}
            if view is not None:
                if assets_dir is None:
                    urls = {"thumb": data_uri(view.thumb, THUMB_FORMAT[1])}
                    if view.clip is not None:
                        urls["clip"] = data_uri(view.clip, "image/png")
                else:
                    stem = hashlib.sha1(os.path.abspath(photo).encode("utf-8", "surrogateescape")).hexdigest()[:16]
                    urls = {}
                    for key, data, ext in (("thumb", view.thumb, THUMB_FORMAT[2]), ("clip", view.clip, "-clip.png")):
                        if data is None:
                            continue
                        with open(os.path.join(assets_dir, stem + ext), "wb") as fh:
                            fh.write(data)
                        summary.asset_bytes += len(data)
                        urls[key] = f"{assets_url}/{stem}{ext}"
                view_dict = view.to_dict(urls)
                if links:
                    view_dict["href"] = _href(photo, page_dir)
            else:
                summary.missing += 1
                summary.problems.append(f"{row.get('path')}: {problem}")
                view_dict = {"missing": f"no preview: {problem}"}
            cards.append(card_row(row, view_dict))
            bar.advance(task)

    engines = sorted({str(r.get("engine")) for r in analysed if r.get("engine")})
    versions = sorted({str(r.get("version")) for r in analysed if r.get("version")})
    meta = {
        "title": title or "PicInspector report",
        "source": source, "generated": time.strftime("%Y-%m-%d %H:%M"),
        "engine": ", ".join(engines), "version": ", ".join(versions), "tool_version": __version__,
        "units": {k: list(v) for k, v in measure_units().items()},
        "note": note,
    }
    page = render_page({"meta": meta, "rows": [*cards, *errors], "extra": dict(extra or {})}, title=meta["title"],
                       scripts=scripts)
    data = page.encode("utf-8", "surrogateescape")
    tmp = f"{output}.tmp-{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, output)
    summary.html_bytes = len(data)
    summary.seconds = time.perf_counter() - started
    return summary
