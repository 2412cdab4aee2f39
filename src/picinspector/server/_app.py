"""The FastAPI application of ``picinspector serve``: the REST API and the web page."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import tempfile
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Optional

from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .._version import __version__
from ..report import error_row
from ._errors import STATUS_FOR_KIND, ApiError
from ._limits import BodyLimit
from ._pool import AnalysisPool
from ._schema import AnalyzeResponse, ErrorResponse, HealthResponse, MeasuresResponse
from ._settings import ServerSettings

log = logging.getLogger("picinspector.server")

#: The web page's strict policy: scripts and styles only from this server, images from it or data:.
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
            "connect-src 'self'; base-uri 'none'; form-action 'none'")
#: Sent as a header only (a meta tag cannot carry it): no other site may frame the page.
HEADER_CSP = PAGE_CSP + "; frame-ancestors 'none'"

#: Files under /assets/: the report's card scripts and styles, and the upload script.
_ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

_SAFE_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,8}$")


def _display_name(filename: str | None, index: int) -> str:
    """The name a result row carries: the client's file name without folders or control characters."""
    name = os.path.basename((filename or "").replace("\\", "/")).strip()
    name = "".join(ch for ch in name if ch.isprintable())[:255]
    return name or f"upload-{index + 1}"


def _suffix(name: str) -> str:
    """A safe file suffix for the temporary copy (RAW files are recognised by it)."""
    suffix = os.path.splitext(name)[1].lower()
    return suffix if _SAFE_SUFFIX.match(suffix) else ".img"


def _error_response(err: ApiError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


def _asset_path(name: str) -> str | None:
    from importlib import resources

    if "/" in name or "\\" in name or os.path.splitext(name)[1] not in _ASSET_TYPES:
        return None
    for package in ("picinspector.report", "picinspector.server"):
        path = resources.files(package).joinpath("assets", name)
        if path.is_file():
            return str(path)
    return None


def create_app(settings: ServerSettings | None = None, inspector: Any = None) -> FastAPI:
    """The application, with one `Inspector` built now (or ``inspector``, already built).

    Raises
    ------
    ValueError, ImportError, picinspector.models.WeightsNotFound
        Bad inspector options, as `picinspector.Inspector` raises them.
    """
    from ..io import load_photo
    from ..measures import measure_units
    from ..pipeline import Inspector
    from ..report.html import PAGE_SCRIPTS, PAGE_STYLES, render_page
    from ..report._visuals import THUMB_FORMAT, data_uri, photo_view

    settings = settings or ServerSettings()
    if inspector is None:
        options = dict(settings.inspector_options)
        options.setdefault("threads", 1 if settings.concurrency > 1 else None)
        inspector = Inspector(**options)
    pool = AnalysisPool(settings.concurrency, settings.queue)
    units = {k: {"unit": u, "description": d} for k, (u, d) in measure_units().items()}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        pool.shutdown()

    app = _new_app(
        lifespan=lifespan,
        title="PicInspector",
        version=__version__,
        summary="Six quality scores, the scene and plain-language feedback for photos.",
        description=("Upload photos to `POST /v1/analyze`; each result has the schema of `picinspector analyze "
                     "--json`. Every refused request gets `{\"error\": {\"kind\", \"message\"}}` with a 4xx "
                     "status (503 when the server is busy or an analysis timed out)."),
    )
    app.state.settings, app.state.inspector, app.state.pool = settings, inspector, pool

    # ---------------------------------------------------------------------------------- errors

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not_found", 405: "method_not_allowed", 413: "upload_too_large",
                415: "unsupported_media_type"}.get(exc.status_code, "invalid_request")
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404:
            message = "no such path; see /docs for the API"
        status = exc.status_code if 400 <= exc.status_code < 500 else 400
        return JSONResponse({"error": {"kind": kind, "message": message}}, status_code=status,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        content_type = request.headers.get("content-type", "")
        if request.url.path == "/v1/analyze" and not content_type.startswith("multipart/form-data"):
            return _error_response(ApiError(415, "unsupported_media_type",
                                            "send the photos as multipart/form-data, one `files` part per photo "
                                            f"(got {content_type or 'no content type'})"))
        parts = []
        for e in exc.errors():
            where = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "query"))
            parts.append(f"{where}: {e.get('msg')}" if where else str(e.get("msg")))
        return _error_response(ApiError(400, "invalid_request", "; ".join(parts) or "invalid request"))

    @app.exception_handler(Exception)
    async def _internal(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error")
        return _error_response(ApiError(500, "internal_error", f"{type(exc).__name__}: {exc}"))

    # ---------------------------------------------------------------------------------- analysis

    def analyse(path: str, name: str, native_detail: bool, overlays: bool) -> dict[str, Any]:
        """One photo -> its result row (with a ``view`` when ``overlays``), or an error row."""
        try:
            photo = load_photo(path, native_detail=native_detail, max_pixels=settings.max_pixels)
            row = inspector.analyze_photo(photo).to_dict()
            row["path"] = name
            if overlays:
                view = photo_view(photo, settings.thumb_size)
                urls = {"thumb": data_uri(view.thumb, THUMB_FORMAT[1])}
                if view.clip is not None:
                    urls["clip"] = data_uri(view.clip, "image/png")
                row["view"] = view.to_dict(urls)
            return row
        except Exception as exc:  # noqa: BLE001 - one bad photo becomes an error row
            from ..errors import PicInspectorError

            if not isinstance(exc, PicInspectorError):
                log.exception("analysis of %s failed", name)
            row = error_row(name, exc)
            return row

    def check_choice(field: str, asked: Optional[str], running: str) -> None:
        if asked is not None and asked != running:
            raise ApiError(400, "unsupported_option",
                           f"this server runs {field} {running!r}, not {asked!r}; start another with "
                           f"`picinspector serve --{field} {asked}`")

    @app.post("/v1/analyze", tags=["analysis"], response_model=None,
              responses={200: {"model": AnalyzeResponse, "description": "One result per photo, in upload order"},
                         400: {"model": ErrorResponse}, 413: {"model": ErrorResponse},
                         415: {"model": ErrorResponse}, 422: {"model": ErrorResponse},
                         503: {"model": ErrorResponse}})
    async def analyze(
        files: list[UploadFile] = File(..., description="One or more photos (any format `analyze` reads)."),
        overlays: bool = Query(False, description="Add `view` to each result: a thumbnail, the clipping mask "
                                                  "and a fine focus map (what the web page shows)."),
        native_detail: bool = Query(False, description="As `analyze --native-detail`."),
        engine: Optional[str] = Query(None, description="Must be the engine this server runs, if given."),
        feedback: Optional[str] = Query(None, description="Must be the feedback writer this server runs."),
    ) -> JSONResponse:
        """Analyse photos: six scores, scene, findings, feedback and measures, as `analyze --json`.

        When every photo fails, the status is that of the first failure (415 not an image, 422 corrupt,
        413 over the pixel limit, ...) with its `error`; otherwise 200, and a photo that failed is an
        error row `{"path", "error": {"kind", "message"}}` among the results.
        """
        check_choice("engine", engine, inspector.engine_name)
        check_choice("feedback", feedback, inspector.feedback_name)
        if not files:
            raise ApiError(400, "invalid_request", "no photo: send at least one `files` part")
        if len(files) > settings.max_files:
            raise ApiError(413, "too_many_files",
                           f"{len(files)} photos in one request, over the limit of {settings.max_files} (--max-files)")
        folder = tempfile.mkdtemp(prefix="picinspector-upload-")
        try:
            calls = []
            for i, upload in enumerate(files):
                name = _display_name(upload.filename, i)
                path = os.path.join(folder, f"{i:03d}{_suffix(name)}")
                with open(path, "wb") as fh:
                    await asyncio.to_thread(shutil.copyfileobj, upload.file, fh, 1 << 20)
                calls.append((analyse, (path, name, native_detail, overlays)))
            futures = pool.submit_all(calls)
            if futures is None:
                stats = pool.stats()
                raise ApiError(503, "busy", f"{stats['running']} analyses running and {stats['waiting']} waiting "
                                            f"(the limit is {settings.concurrency} + {settings.queue}); retry shortly",
                               headers={"Retry-After": "1"})
            waiting = [asyncio.wrap_future(f) for f in futures]
            try:
                rows = await asyncio.wait_for(asyncio.gather(*waiting), settings.timeout_s)
            except asyncio.TimeoutError:
                for f in futures:
                    f.cancel()
                raise ApiError(503, "timeout", f"the analyses took longer than {settings.timeout_s:g} s (--timeout)",
                               headers={"Retry-After": "5"}) from None
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)
        rows = list(rows)
        if all("error" in r for r in rows):
            first = rows[0]["error"]
            status = STATUS_FOR_KIND.get(first.get("kind"), 422)
            return JSONResponse({"error": first, "results": rows}, status_code=status)
        return JSONResponse({"results": rows})

    # ---------------------------------------------------------------------------------- the rest

    @app.get("/healthz", tags=["service"], response_model=HealthResponse)
    async def healthz() -> dict[str, Any]:
        """Liveness, what this server runs, its limits and how busy it is."""
        return {"status": "ok", "version": __version__, "engine": inspector.engine_name,
                "feedback": inspector.feedback_name, "limits": settings.limits(), "analyses": pool.stats()}

    @app.get("/v1/measures", tags=["analysis"], response_model=MeasuresResponse)
    async def measures() -> dict[str, Any]:
        """Every measure in a result's `measures`, with its unit and meaning (as `picinspector measures`)."""
        return {"measures": units}

    page_data = {"meta": {"title": "PicInspector", "upload": True, "source": "drop photos to analyse them",
                          "engine": inspector.engine_name, "version": __version__,
                          "units": {k: [v["unit"], v["description"]] for k, v in units.items()},
                          "limits": settings.limits()},
                 "rows": [], "extra": {}}
    page = render_page(page_data, title="PicInspector", inline=False, asset_url="/assets/",
                       scripts=(*PAGE_SCRIPTS, "upload.js"), styles=PAGE_STYLES, csp=PAGE_CSP)

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": HEADER_CSP, "X-Content-Type-Options": "nosniff",
                                           "Referrer-Policy": "no-referrer"})

    @app.get("/assets/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        path = _asset_path(name)
        if path is None:
            raise ApiError(404, "not_found", f"no asset {name!r}")
        return FileResponse(path, media_type=_ASSET_TYPES[os.path.splitext(name)[1]],
                            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"})

    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes)
    return app


def _new_app(**kwargs: Any) -> FastAPI:
    """A FastAPI application whose /docs (Swagger UI) and /redoc load their scripts from this server
    (fastapi-offline ships them), so the docs work without a network; plain FastAPI (docs from a
    CDN) when that package is missing."""
    try:
        from fastapi_offline import FastAPIOffline
    except ImportError:
        return FastAPI(**kwargs)
    return FastAPIOffline(**kwargs)
