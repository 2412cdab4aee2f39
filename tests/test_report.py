"""The HTML report without a browser: overlays on images the tests make, results files, the page's
self-containment, assets mode and the `report` command (the browser tests are in test_browser.py)."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from picinspector.cli import app
from picinspector.io import photo_from_array
from picinspector.report._results import read_results
from picinspector.report._visuals import THUMB_FORMAT, clipping_mask, fine_focus_map, photo_view, thumb_size
from picinspector.report.html import build_report, card_row

SRC = Path(__file__).resolve().parents[1] / "src"


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def _jpeg(pixels: np.ndarray, path: Path, long_side: int = 384, quality: int = 90) -> Path:
    im = Image.fromarray(pixels)
    scale = long_side / max(im.size)
    im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)
    im.save(path, format="JPEG", quality=quality)
    return path


@pytest.fixture(scope="module")
def shoot(tmp_path_factory) -> Path:
    """Real photos (two JPEG, one PNG), an over-exposed copy, and a text file named .jpg."""
    from skimage import data

    folder = tmp_path_factory.mktemp("shoot")
    _jpeg(data.astronaut(), folder / "astronaut.jpg")
    _jpeg(data.chelsea(), folder / "chelsea.jpg", 320)
    Image.fromarray(data.coffee()).resize((300, 200)).save(folder / "coffee.png")
    bright = np.clip(data.rocket().astype(np.float32) * 2.2, 0, 255).astype(np.uint8)
    _jpeg(bright, folder / "rocket_bright.jpg")
    (folder / "letter.jpg").write_text("not a picture\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def results(shoot, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("results") / "shoot.jsonl"
    result = _invoke("analyze", shoot, "-o", out, "--no-progress")
    assert result.exit_code == 0, result.output
    return out


class _Resources(HTMLParser):
    """Every element that could load something: tag, attributes."""

    def __init__(self):
        super().__init__()
        self.loads: list[tuple[str, dict]] = []
        self.meta: list[dict] = []
        self.scripts: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "meta":
            self.meta.append(attrs)
        if tag == "script":
            self.scripts.append(attrs)
        if any(k in attrs for k in ("src", "href", "srcset", "data", "poster")) or tag in ("link", "iframe", "object"):
            self.loads.append((tag, attrs))


def _page_data(html_text: str) -> dict:
    m = re.search(r'<script type="application/json" id="picinspector-data">(.*?)</script>', html_text, re.S)
    assert m, "no embedded data"
    return json.loads(m.group(1))


# ------------------------------------------------------------------------------------------------
# Overlays: known answers on images the test makes


def test_clipping_mask_marks_exactly_the_clipped_and_crushed_regions():
    rgb = np.full((40, 80, 3), 0.5, np.float32)
    rgb[:, :20] = 1.0                      # blown highlights, left quarter
    rgb[:10, 30:40, 2] = 254.0 / 255.0     # one channel at the threshold: still clipped (any channel)
    rgb[:, 60:] = 0.0                      # crushed shadows, right quarter
    rgb[:10, 45:50] = 3.0 / 255.0          # just above the shadow threshold: not crushed
    gray = rgb @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    mask = clipping_mask(rgb, gray, (80, 40))
    expected = np.zeros((40, 80), np.uint8)
    expected[:, :20] = 1
    expected[:10, 30:40] = 1
    expected[:, 60:] = 2
    np.testing.assert_array_equal(mask, expected)


def test_clipping_mask_keeps_small_clipped_areas_when_reduced():
    rgb = np.full((100, 100, 3), 0.4, np.float32)
    rgb[:, :2] = 1.0     # a 2-px specular line: 40% of each 5-px block of the left column
    gray = rgb.mean(axis=2)
    mask = clipping_mask(rgb, gray, (20, 20), fraction=0.2)
    assert (mask[:, 0] == 1).all() and (mask[:, 1:] == 0).all()
    assert (clipping_mask(rgb, gray, (20, 20), fraction=0.5) == 0).all()


def _texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A natural-ish texture with many strong edges: blocks of random grey levels."""
    rng = np.random.default_rng(seed)
    blocks = rng.uniform(0.1, 0.9, size=(h // 8 + 1, w // 8 + 1)).astype(np.float32)
    return np.kron(blocks, np.ones((8, 8), np.float32))[:h, :w]


def test_fine_focus_map_is_sharp_where_the_image_is_and_soft_where_it_is_blurred():
    import cv2

    gray = _texture(480, 640)
    gray[:, 320:] = cv2.GaussianBlur(gray[:, 320:], (0, 0), 3.0)
    focus = fine_focus_map(gray)
    assert (focus["rows"], focus["cols"]) == (6, 8)       # twice the 3x4 of the focus_map measure
    grid = np.array([[np.nan if v is None else v for v in row] for row in focus["grid"]], float)
    left, right = np.nanmean(grid[:, :3]), np.nanmean(grid[:, 5:])
    assert left > 0.5 > right, (left, right)
    flat = fine_focus_map(np.full((480, 640), 0.5, np.float32))
    assert all(v is None for row in flat["grid"] for v in row)   # nothing to judge on a flat image


def test_photo_view_encodes_a_thumbnail_and_a_mask_that_decode():
    rgb = np.zeros((300, 600, 3), np.float32) + np.linspace(0, 1, 600, dtype=np.float32)[None, :, None]
    view = photo_view(photo_from_array(rgb), long_side=200)
    thumb = Image.open(io.BytesIO(view.thumb))
    assert thumb.format == THUMB_FORMAT[0] and thumb.size == (200, 100) == (view.width, view.height)
    mask = Image.open(io.BytesIO(view.clip))
    assert mask.format == "PNG" and mask.size == (200, 100)
    rgba = np.asarray(mask.convert("RGBA"))
    assert rgba[50, 199, 3] > 0 and rgba[50, 199, 0] > 200      # right edge: clipped, red
    assert rgba[50, 0, 3] > 0 and rgba[50, 0, 2] > 200          # left edge: crushed, blue
    assert rgba[50, 100, 3] == 0                                # mid-grey: clear
    assert view.highlights_marked > 0 and view.shadows_marked > 0
    mid = photo_view(photo_from_array(np.full((64, 64, 3), 0.5, np.float32)))
    assert mid.clip is None and mid.highlights_marked == mid.shadows_marked == 0
    assert thumb_size(1000, 4000, 320) == (80, 320) and thumb_size(100, 50, 320) == (100, 50)


# ------------------------------------------------------------------------------------------------
# Results files


def test_read_results_jsonl_ignores_a_half_written_tail_and_keeps_the_last_row_per_path(tmp_path, results):
    lines = results.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    f = tmp_path / "r.jsonl"
    f.write_text("\n".join(lines + [lines[0]]) + "\n" + lines[1][: len(lines[1]) // 2], encoding="utf-8")
    back = read_results(f)
    assert len(back) == len(rows)                       # duplicate kept once, tail ignored
    assert [r["path"] for r in back][-1] == rows[0]["path"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(lines[0] + "\nnot json\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2"):
        read_results(bad)
    other = tmp_path / "other.jsonl"
    other.write_text('{"path": "x.jpg", "hello": 1}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="neither 'scores' nor 'error'"):
        read_results(other)


def test_read_results_csv_restores_scores_scenes_and_finding_kinds(tmp_path, results):
    from picinspector.batch import CsvWriter

    rows = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]
    ok = next(r for r in rows if "error" not in r and r["findings"])
    ok = {**ok, "path": "=HYPERLINK(evil).jpg"}          # written with a leading apostrophe
    f = tmp_path / "r.csv"
    err = next(r for r in rows if "error" in r)
    f.write_text("\n".join([CsvWriter.header, CsvWriter.format_row(ok), CsvWriter.format_row(err)]) + "\n",
                 encoding="utf-8")
    back = read_results(f)
    assert back[0]["path"] == "=HYPERLINK(evil).jpg"
    assert back[0]["scores"] == pytest.approx(ok["scores"])
    assert back[0]["scene"]["label"] == ok["scene"]["label"]
    assert [x["kind"] for x in back[0]["findings"]] == [x["kind"] for x in ok["findings"]]
    assert back[1] == {"path": err["path"], "error": err["error"]}
    with pytest.raises(ValueError, match="not a PicInspector CSV"):
        (tmp_path / "x.csv").write_text("a,b\n1,2\n", encoding="utf-8")
        read_results(tmp_path / "x.csv")


# ------------------------------------------------------------------------------------------------
# The page


def test_report_is_self_contained_and_carries_every_row(tmp_path, results, shoot, monkeypatch):
    monkeypatch.chdir(shoot.parent)  # the rows' paths are as `analyze` stored them
    rows = read_results(results)
    out = tmp_path / "sub" / "report.html"
    summary = build_report(rows, out, title="Test shoot", photo_bases=[str(results.parent)])
    text = out.read_text(encoding="utf-8")
    assert summary.photos == 4 and summary.errors == 1 and summary.missing == 0
    assert summary.html_bytes == len(text.encode("utf-8"))

    parser = _Resources()
    parser.feed(text)
    csp = [m["content"] for m in parser.meta if m.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0] and "connect-src" not in csp[0]   # default-src 'none' covers it
    assert all("src" not in s for s in parser.scripts)                              # every script inline
    for tag, attrs in parser.loads:                                                 # nothing from a network
        for key in ("src", "href", "srcset", "data", "poster"):
            value = attrs.get(key) or ""
            assert not re.match(r"^\s*(https?:|//|ftp:)", value, re.I), (tag, key, value)
    assert not re.search(r"url\(\s*['\"]?(https?:|//)", text, re.I) and "@import" not in text

    data = _page_data(text)
    cards = [r for r in data["rows"] if "error" not in r]
    assert {Path(r["path"]).name for r in cards} == {"astronaut.jpg", "chelsea.jpg", "coffee.png", "rocket_bright.jpg"}
    assert [Path(r["path"]).name for r in data["rows"] if "error" in r] == ["letter.jpg"]
    for card in cards:
        view = card["view"]
        head, b64 = view["thumb"].split(",", 1)
        assert head == f"data:{THUMB_FORMAT[1]};base64"
        assert Image.open(io.BytesIO(base64.b64decode(b64))).size == (view["w"], view["h"])
        assert view["focus"]["rows"] * view["focus"]["cols"] >= 48
        assert "focus_map" not in card["measures"]
        link = (out.parent / urllib.parse.unquote(view["href"])).resolve()
        assert link.is_file() and link.name == Path(card["path"]).name
    bright = next(c for c in cards if c["path"].endswith("rocket_bright.jpg"))
    assert bright["view"]["clip"].startswith("data:image/png;base64,")
    assert set(data["meta"]["units"]) >= {"focus", "exposure_ev"}


def test_text_from_rows_cannot_break_out_of_the_page(tmp_path):
    evil = '</script><script>alert(1)</script><!--\u2028.jpg'
    rows = [{"path": evil, "error": {"kind": "not_found", "message": "no such file </script>"}}]
    out = tmp_path / "r.html"
    build_report(rows, out)
    text = out.read_text(encoding="utf-8")
    assert text.count("</script>") == text.count("<script")          # only our own scripts close
    assert _page_data(text)["rows"][0]["path"] == evil


def test_assets_mode_writes_files_beside_the_page(tmp_path, results, shoot, monkeypatch):
    monkeypatch.chdir(shoot.parent)
    out = tmp_path / "report.html"
    summary = build_report(read_results(results), out, assets_dir=tmp_path / "report_assets", overlays=True)
    text = out.read_text(encoding="utf-8")
    assert "data:image/webp" not in text and "data:image/jpeg" not in text and "data:image/png" not in text
    data = _page_data(text)
    files = set()
    for card in (r for r in data["rows"] if "error" not in r):
        for key in ("thumb", "clip"):
            if card["view"].get(key):
                assert card["view"][key].startswith("report_assets/")
                files.add(card["view"][key])
                assert (tmp_path / card["view"][key]).is_file()
    assert len([f for f in files if f.endswith(THUMB_FORMAT[2])]) == 4
    assert any(f.endswith("-clip.png") for f in files)
    assert summary.asset_bytes == sum((tmp_path / f).stat().st_size for f in files)


def test_missing_photos_make_cards_without_previews_and_keep_the_coarse_focus_map(tmp_path, results):
    rows = [r for r in read_results(results) if "error" not in r]
    moved = [{**r, "path": "/nowhere/" + Path(r["path"]).name} for r in rows]
    out = tmp_path / "r.html"
    summary = build_report(moved, out)
    assert summary.missing == len(rows) and len(summary.problems) == len(rows)
    data = _page_data(out.read_text(encoding="utf-8"))
    for card, row in zip(data["rows"], rows):
        assert "thumb" not in card["view"] and card["view"]["missing"].startswith("no preview")
        coarse = row["measures"]["focus_map"]
        if any(v is not None for line in coarse for v in line):
            assert card["view"]["focus"]["grid"] == coarse


def test_card_row_leaves_the_result_untouched():
    row = {"path": "a.jpg", "scores": {}, "measures": {"focus_map": [[0.5]], "focus": 0.5}}
    out = card_row(row, {"thumb": "data:,"})
    assert row["measures"] == {"focus_map": [[0.5]], "focus": 0.5}
    assert out["measures"] == {"focus": 0.5} and out["view"]["focus"] == {"rows": 1, "cols": 1, "grid": [[0.5]]}


# ------------------------------------------------------------------------------------------------
# The command


def test_report_command_from_a_results_file(tmp_path, results, shoot, monkeypatch):
    monkeypatch.chdir(shoot.parent)
    out = tmp_path / "from_results.html"
    result = _invoke("report", results, "-o", out, "--no-progress", "--thumb-size", 160)
    assert result.exit_code == 0, result.output
    data = _page_data(out.read_text(encoding="utf-8"))
    assert max(max(r["view"]["w"], r["view"]["h"]) for r in data["rows"] if "error" not in r) == 160
    assert data["meta"]["source"] == str(results)
    default = _invoke("report", results, "--no-progress")               # -o defaults to the results name
    assert default.exit_code == 0 and results.with_suffix(".html").is_file()


def test_report_command_analyses_photos_into_a_results_file_and_resumes(tmp_path, shoot):
    out = tmp_path / "shoot.html"
    first = _invoke("report", shoot, "-o", out, "--no-progress", "--no-overlays")
    assert first.exit_code == 0, first.output
    cache = tmp_path / "shoot.results.jsonl"
    assert len(cache.read_text(encoding="utf-8").splitlines()) == 5
    assert "4 analysed, 0 already done, 1 failed" in first.output
    again = _invoke("report", shoot / "astronaut.jpg", shoot / "chelsea.jpg", "-o", out, "--no-progress")
    assert again.exit_code == 0 and "0 analysed, 2 already done" in again.output
    data = _page_data(out.read_text(encoding="utf-8"))
    assert [Path(r["path"]).name for r in data["rows"]] == ["astronaut.jpg", "chelsea.jpg"]  # only those asked


@pytest.mark.parametrize("args, message", [
    (["{results}", "{shoot}", "-o", "x.html"], "not both"),
    (["{shoot}"], "-o FILE.html"),
    (["{results}", "-o", "x.pdf"], "should end in .html"),
    (["missing.jsonl", "-o", "x.html"], "no such results file"),
    (["{results}", "-o", "x.html", "--engine", "classic"], "apply when photos are given"),
])
def test_report_command_usage_errors(args, message, results, shoot, tmp_path):
    args = [a.format(results=results, shoot=shoot) for a in args]
    result = _invoke("report", *args)
    assert result.exit_code == 2 and message in result.output, result.output


def test_report_needs_no_server_or_browser_packages(tmp_path, results, shoot):
    """The core install builds reports: FastAPI, uvicorn and Selenium are blocked from importing."""
    code = (
        "import sys\n"
        "for name in ('fastapi', 'uvicorn', 'starlette', 'selenium', 'multipart', 'python_multipart'):\n"
        "    sys.modules[name] = None\n"
        "from picinspector.cli import main\n"
        f"sys.argv = ['picinspector', 'report', {str(results)!r}, '-o', {str(tmp_path / 'core.html')!r}, "
        "'--no-progress']\n"
        "main()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=shoot.parent, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "core.html").stat().st_size > 10_000
