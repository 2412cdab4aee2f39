"""``picinspector serve``: a REST API and a web page on FastAPI + uvicorn (the ``server`` extra).

``create_app(settings)`` builds the application with one `Inspector` (the model loads once) and a
bounded pool of analyses; `ServerSettings` holds the limits. Routes: ``POST /v1/analyze``,
``GET /healthz``, ``GET /v1/measures``, ``GET /docs`` (OpenAPI), and the web page at ``/``.
"""

from ._errors import REQUEST_ERRORS, STATUS_FOR_KIND, ApiError
from ._settings import ServerSettings


def create_app(*args, **kwargs):
    """See `picinspector.server._app.create_app` (imported here lazily: it needs FastAPI)."""
    from ._app import create_app as _create_app

    return _create_app(*args, **kwargs)


__all__ = ["ApiError", "REQUEST_ERRORS", "STATUS_FOR_KIND", "ServerSettings", "create_app"]
