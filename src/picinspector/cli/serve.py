"""``picinspector serve``: the REST API and the web page (FastAPI on uvicorn; the ``server`` extra)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.text import Text

from ._app import EXIT_USAGE, app
from ._common import (
    Bf16Opt,
    CropsOpt,
    DeviceOpt,
    EngineOpt,
    FeedbackOpt,
    GroundedOpt,
    ModelOpt,
    QualityModelOpt,
    VlmModelOpt,
    _inspector_options,
    _inspector_or_exit,
    _usage,
)

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on. The default answers this machine only; "
                                                      "for other machines put a reverse proxy in front (see docs).")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port (0: any free port).")] = 8000,
    concurrency: Annotated[Optional[int], typer.Option(
        "--concurrency", min=1, help="Analyses at once, sharing one model (default: CPU cores, at most 4).")] = None,
    queue: Annotated[int, typer.Option("--queue", min=0,
                                       help="Photos that may wait for a slot; beyond that: 503 busy.")] = 32,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds a request may take (queue "
                                                                        "included); then 503 timeout.")] = 60.0,
    max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", min=0.001,
                                                 help="Largest request body, all photos together (MiB).")] = 64.0,
    max_files: Annotated[int, typer.Option("--max-files", min=1, help="Photos per request.")] = 16,
    max_megapixels: Annotated[float, typer.Option(
        "--max-megapixels", min=0.001, help="Decompression-bomb guard: larger photos are refused from their header.")
    ] = 100.0,
    engine: EngineOpt = None,
    quality_model: QualityModelOpt = None,
    model: ModelOpt = None,
    device: DeviceOpt = None,
    crops: CropsOpt = None,
    bf16: Bf16Opt = None,
    feedback: FeedbackOpt = "rules",
    vlm_model: VlmModelOpt = None,
    grounded: GroundedOpt = None,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
) -> None:
    """Serve the REST API (POST /v1/analyze, /healthz, /v1/measures, /docs) and the web page at /."""
    err = Console(stderr=True)
    try:
        import uvicorn

        from ..server import ServerSettings
        from ..server._app import create_app
    except ImportError as exc:
        err.print(Text(f"Error: {exc}. `serve` needs the server extra: pip install \"picinspector[server]\"",
                       style="red"), soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None

    options = _inspector_options(engine, feedback, vlm_model, grounded, device, False,
                                 quality_model=quality_model, model=model, crops=crops, bf16=bf16)
    options.pop("native_detail")  # a per-request choice (?native_detail=true)
    try:
        settings = ServerSettings(
            max_upload_bytes=int(max_upload_mb * (1 << 20)), max_files=max_files,
            max_pixels=int(max_megapixels * 1e6), queue=queue, timeout_s=timeout, inspector_options=options,
            **({"concurrency": concurrency} if concurrency else {}))
    except ValueError as exc:
        raise _usage(str(exc)) from None
    inspector_options = {**options, "threads": 1 if settings.concurrency > 1 else None}
    inspector = _inspector_or_exit(inspector_options, err)  # the model loads once, here
    application = create_app(settings, inspector=inspector)
    if host not in _LOOPBACK:
        err.print(Text(f"Listening on {host}: other machines can reach this server. It has no authentication "
                       "or TLS; put a reverse proxy in front of it for anything beyond a trusted network.",
                       style="yellow"), soft_wrap=True)
    err.print(Text(f"PicInspector {inspector.engine_name} engine, {settings.concurrency} analyses at once; "
                   f"web page at http://{'[' + host + ']' if ':' in host else host}:{port}/ , API docs at /docs",
                   style="bold"), soft_wrap=True)
    uvicorn.run(application, host=host, port=port, log_level=log_level, timeout_keep_alive=5,
                timeout_graceful_shutdown=10)
