"""The REST API through an in-process client: the result schema, every error path and every limit."""

from __future__ import annotations

import base64
import io
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

fastapi = pytest.importorskip("fastapi", reason="the server extra is not installed (pip install '.[server]')")
pytest.importorskip("httpx", reason="the in-process client needs httpx")
from fastapi.testclient import TestClient  # noqa: E402

from picinspector import Inspector  # noqa: E402
from picinspector.measures import measure_units  # noqa: E402
from picinspector.report import SCORE_NAMES  # noqa: E402
from picinspector.server import ServerSettings, create_app  # noqa: E402

TOP_KEYS = {"path", "width", "height", "format", "exif", "scores", "scene", "findings", "feedback", "measures",
            "engine", "version"}


def _jpeg(pixels: np.ndarray, long_side: int = 320, quality: int = 88) -> bytes:
    im = Image.fromarray(pixels)
    scale = long_side / max(im.size)
    im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    from skimage import data

    whole = _jpeg(data.rocket())
    big = io.BytesIO()
    Image.new("RGB", (1200, 1000), (90, 120, 150)).save(big, format="PNG")   # 1.2 MP, a few KB
    return {"astronaut.jpg": _jpeg(data.astronaut()), "chelsea.jpg": _jpeg(data.chelsea()),
            "truncated.jpg": whole[: len(whole) // 3], "letter.jpg": b"Dear reader, not a picture.\n",
            "big.png": big.getvalue(), "empty.jpg": b""}


@pytest.fixture(scope="module")
def inspector():
    with Inspector(threads=1) as insp:
        yield insp


SMALL = dict(max_upload_bytes=2 << 20, max_files=3, max_pixels=1_000_000, concurrency=2, queue=2, timeout_s=30)


@pytest.fixture(scope="module")
def client(inspector):
    with TestClient(create_app(ServerSettings(**SMALL), inspector=inspector)) as c:
        yield c


def _files(photos, *names):
    return [("files", (n, photos[n], "application/octet-stream")) for n in names]


def _is_error(response, status: int, kind: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body["error"]) == {"kind", "message"} and body["error"]["kind"] == kind, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "Traceback" not in response.text
    return body


def test_analyze_returns_the_schema_of_analyze_json(client, photos, inspector, tmp_path):
    r = client.post("/v1/analyze", files=_files(photos, "astronaut.jpg"))
    assert r.status_code == 200, r.text
    (row,) = r.json()["results"]
    assert set(row) == TOP_KEYS and row["path"] == "astronaut.jpg" and "view" not in row
    assert set(row["scores"]) == set(SCORE_NAMES) and all(0 <= v <= 100 for v in row["scores"].values())
    assert len(row["scene"]["probabilities"]) == 9
    # the same numbers as the command line's inspector on the same bytes
    path = tmp_path / "astronaut.jpg"
    path.write_bytes(photos["astronaut.jpg"])
    local = inspector.analyze(path).to_dict()
    assert row["scores"] == local["scores"] and row["findings"] == local["findings"]
    assert row["measures"] == local["measures"]


def test_overlays_add_a_view_with_a_thumbnail_and_focus_map(client, photos):
    r = client.post("/v1/analyze", params={"overlays": "true"}, files=_files(photos, "chelsea.jpg"))
    view = r.json()["results"][0]["view"]
    thumb = Image.open(io.BytesIO(base64.b64decode(view["thumb"].split(",", 1)[1])))
    assert thumb.format in ("WEBP", "JPEG") and thumb.size == (view["w"], view["h"]) and max(thumb.size) == 320
    assert view["focus"]["rows"] * view["focus"]["cols"] == 48


def test_several_photos_keep_their_order_and_a_bad_one_becomes_an_error_row(client, photos):
    r = client.post("/v1/analyze", files=_files(photos, "chelsea.jpg", "letter.jpg", "astronaut.jpg"))
    assert r.status_code == 200
    rows = r.json()["results"]
    assert [x["path"] for x in rows] == ["chelsea.jpg", "letter.jpg", "astronaut.jpg"]
    assert rows[1] == {"path": "letter.jpg", "error": {"kind": "not_an_image",
                                                      "message": "not an image file (format not recognised)"}}


@pytest.mark.parametrize("name, status, kind", [
    ("letter.jpg", 415, "not_an_image"),
    ("truncated.jpg", 422, "corrupt"),
    ("empty.jpg", 422, "empty"),
    ("big.png", 413, "decompression_bomb"),       # 1.2 MP over the 1 MP limit, refused from the header
])
def test_a_photo_that_cannot_be_analysed_gets_a_typed_4xx(client, photos, name, status, kind):
    body = _is_error(client.post("/v1/analyze", files=_files(photos, name)), status, kind)
    assert body["results"][0]["path"] == name
    assert "/tmp" not in body["error"]["message"]          # no server path leaks


def test_upload_filenames_lose_their_folders(client, photos):
    r = client.post("/v1/analyze", files=[("files", ("../../etc/x/astronaut.jpg", photos["astronaut.jpg"]))])
    assert r.json()["results"][0]["path"] == "astronaut.jpg"


def test_request_limits(client, photos):
    _is_error(client.post("/v1/analyze", files=_files(photos, "chelsea.jpg", "chelsea.jpg", "astronaut.jpg",
                                                      "astronaut.jpg")), 413, "too_many_files")
    too_big = [("files", ("noise.jpg", np.random.default_rng(0).bytes(3 << 20)))]
    _is_error(client.post("/v1/analyze", files=too_big), 413, "upload_too_large")


def test_a_body_without_content_length_is_cut_off_at_the_limit(client):
    sent = []

    def chunks():
        for _ in range(40):          # 40 x 128 KiB = 5 MiB of a 2 MiB limit
            sent.append(1)
            yield b"x" * (128 << 10)

    r = client.post("/v1/analyze", content=chunks(), headers={"content-type": "multipart/form-data; boundary=zz"})
    _is_error(r, 413, "upload_too_large")


def test_request_errors_are_typed(client, photos, inspector):
    _is_error(client.post("/v1/analyze", json={"files": []}), 415, "unsupported_media_type")
    _is_error(client.post("/v1/analyze", files=[("other", ("a.jpg", photos["chelsea.jpg"]))]), 400, "invalid_request")
    _is_error(client.post("/v1/analyze", params={"overlays": "maybe"}, files=_files(photos, "chelsea.jpg")),
              400, "invalid_request")
    body = _is_error(client.post("/v1/analyze", params={"engine": "dinov2"}, files=_files(photos, "chelsea.jpg")),
                     400, "unsupported_option")
    assert f"runs engine {inspector.engine_name!r}" in body["error"]["message"]
    _is_error(client.post("/v1/analyze", params={"feedback": "vlm"}, files=_files(photos, "chelsea.jpg")),
              400, "unsupported_option")
    _is_error(client.get("/v1/analyze"), 405, "method_not_allowed")
    _is_error(client.get("/v2/nothing"), 404, "not_found")
    _is_error(client.get("/assets/..%2Fpyproject.toml"), 404, "not_found")


def test_healthz_measures_docs_and_page(client, inspector):
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["engine"] == inspector.engine_name and health["feedback"] == "rules"
    assert health["limits"] == {"max_upload_bytes": 2 << 20, "max_files": 3, "max_pixels": 1_000_000,
                                "concurrency": 2, "queue": 2, "timeout_s": 30, "thumb_size": 320}
    assert health["analyses"] == {"running": 0, "waiting": 0, "capacity": 4}
    measures = client.get("/v1/measures").json()["measures"]
    assert measures == {k: {"unit": u, "description": d} for k, (u, d) in measure_units().items()}
    spec = client.get("/openapi.json").json()
    assert {"/v1/analyze", "/healthz", "/v1/measures"} <= set(spec["paths"])
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.text
    assert "cdn." not in docs.text                                       # the docs work offline
    page = client.get("/")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/assets/cards.js", "/assets/report.js", "/assets/upload.js", "/assets/cards.css"):
        assert asset in page.text and client.get(asset).status_code == 200


class _Gate:
    """Makes the real inspector's analyses wait until released (to fill the pool on purpose)."""

    def __init__(self, inspector):
        self.inspector, self.release = inspector, threading.Event()
        self.started = threading.Semaphore(0)
        self.engine_name, self.feedback_name = inspector.engine_name, inspector.feedback_name

    def analyze_photo(self, photo):
        self.started.release()
        self.release.wait(20)
        return self.inspector.analyze_photo(photo)


def test_the_pool_is_bounded_and_a_full_one_answers_busy(inspector, photos):
    gate = _Gate(inspector)
    settings = ServerSettings(**{**SMALL, "concurrency": 1, "queue": 1})
    with TestClient(create_app(settings, inspector=gate)) as c:
        out = {}
        first = threading.Thread(target=lambda: out.setdefault("a", c.post("/v1/analyze",
                                                                           files=_files(photos, "chelsea.jpg"))))
        first.start()
        assert gate.started.acquire(timeout=20)                     # running: the one slot is taken
        second = threading.Thread(target=lambda: out.setdefault("b", c.post("/v1/analyze",
                                                                            files=_files(photos, "astronaut.jpg"))))
        second.start()
        deadline = time.time() + 20
        while c.get("/healthz").json()["analyses"]["waiting"] != 1 and time.time() < deadline:
            time.sleep(0.05)
        assert c.get("/healthz").json()["analyses"] == {"running": 1, "waiting": 1, "capacity": 2}
        busy = c.post("/v1/analyze", files=_files(photos, "chelsea.jpg"))
        _is_error(busy, 503, "busy")
        assert busy.headers["retry-after"] == "1"
        gate.release.set()
        first.join(30)
        second.join(30)
        assert out["a"].status_code == out["b"].status_code == 200
        assert c.get("/healthz").json()["analyses"]["running"] == 0


def test_a_request_that_takes_too_long_times_out_and_frees_its_slot_later(inspector, photos):
    gate = _Gate(inspector)
    settings = ServerSettings(**{**SMALL, "concurrency": 1, "queue": 0, "timeout_s": 3})
    with TestClient(create_app(settings, inspector=gate)) as c:
        t0 = time.perf_counter()
        r = c.post("/v1/analyze", files=_files(photos, "chelsea.jpg"))
        assert time.perf_counter() - t0 < 10
        _is_error(r, 503, "timeout")
        assert c.get("/healthz").json()["analyses"]["running"] == 1   # still finishing in the background
        _is_error(c.post("/v1/analyze", files=_files(photos, "chelsea.jpg")), 503, "busy")
        gate.release.set()
        deadline = time.time() + 20
        while c.get("/healthz").json()["analyses"]["running"] and time.time() < deadline:
            time.sleep(0.05)
        gate.started = threading.Semaphore(100)
        assert c.post("/v1/analyze", files=_files(photos, "chelsea.jpg")).status_code == 200


def test_settings_are_checked():
    for bad in ({"max_files": 0}, {"concurrency": 0}, {"queue": -1}, {"timeout_s": 0}, {"max_pixels": True}):
        with pytest.raises(ValueError):
            ServerSettings(**bad)


def test_serve_refuses_options_that_do_not_apply():
    from typer.testing import CliRunner

    from picinspector.cli import app

    r = CliRunner().invoke(app, ["serve", "--crops", "2"], env={"COLUMNS": "200"})
    assert r.exit_code == 2 and "--crops applies to the dinov2 engine" in r.output
    r = CliRunner().invoke(app, ["serve", "--quality-model", "/nonexistent/model.npz"], env={"COLUMNS": "200"})
    assert r.exit_code == 2 and "model.npz" in r.output


def test_serve_starts_uvicorn_on_loopback_and_answers(tmp_path):
    """The real command, in a subprocess: it binds 127.0.0.1 and answers /healthz."""
    import os
    import socket
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = Path(__file__).resolve().parents[1] / "src"
    proc = subprocess.Popen([sys.executable, "-m", "picinspector", "serve", "--port", str(port), "--log-level",
                             "warning"], env={**os.environ, "PYTHONPATH": str(src)}, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    health = __import__("json").loads(r.read())
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise AssertionError(f"server did not start: {proc.stderr.read() if proc.poll() is not None else ''}")
                time.sleep(0.3)
        assert health["status"] == "ok"
        conns = [c for c in __import__("psutil").Process(proc.pid).net_connections("tcp") if c.status == "LISTEN"]
        assert conns and all(c.laddr.ip == "127.0.0.1" for c in conns)
    finally:
        proc.terminate()
        proc.wait(20)
