"""The HTML report and the web page in a real headless Chromium: what a person sees.

Cards render with their pictures, the radar chart has six axes, sorting and filtering change what
is shown and in which order, overlays toggle (visibly: the pixels change), the console stays free
of errors, no network request is made, and a screenshot is written.

Set PICINSPECTOR_SCREENSHOTS=DIR to also write the README's screenshots (report.png, web-page.png)
into DIR (``PICINSPECTOR_SCREENSHOTS=docs pytest tests/test_browser.py``).
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from _browser import chromium, console_errors, wait_ready, why_no_browser
from picinspector.cli import app

pytestmark = pytest.mark.skipif(why_no_browser() is not None, reason=str(why_no_browser()))

SCREENSHOTS = os.environ.get("PICINSPECTOR_SCREENSHOTS")


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> Path:
    """The demo's real photos (13, with the degraded copies) and a text file named .jpg."""
    from picinspector.samples import write_samples

    folder = tmp_path_factory.mktemp("samples")
    write_samples(folder)
    (folder / "letter.jpg").write_text("not a picture\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def report(samples, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("report") / "report.html"
    result = _invoke("report", samples, "-o", out, "--no-progress", "--title", "Sample shoot")
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    start = text.index('id="picinspector-data">') + len('id="picinspector-data">')
    data = json.loads(text[start:text.index("</script>", start)])
    return out, data


@pytest.fixture(scope="module")
def driver():
    with chromium() as d:
        yield d


def _shown(driver) -> list:
    return driver.find_elements("css selector", "#gallery > .card:not([hidden])")


def _render_all(driver) -> None:
    """Scroll as a person would until every shown card is filled (cards are built as they near the view)."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 60, poll_frequency=0.1).until(lambda d: d.execute_script(
        "const left = document.querySelectorAll('#gallery > .card.shell:not([hidden])');"
        "if (left.length) left[0].scrollIntoView(); return left.length === 0;"))
    driver.execute_script("window.scrollTo(0, 0)")


def _names(driver) -> list[str]:
    """File names of the cards a person sees, in page order (a card not yet filled shows its name too
    once it nears the view; its path is on the element already)."""
    cards = [c for c in _shown(driver) if c.is_displayed()]
    return [Path(c.get_attribute("data-path")).name for c in cards]


def _select(driver, css: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("css selector", css)).select_by_value(value)


def _red_pixels(png: bytes) -> int:
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return int(((rgb[..., 0] > 180) & (rgb[..., 1] < 90) & (rgb[..., 2] < 110)).sum())


def _save(driver, path: Path) -> Image.Image:
    driver.save_screenshot(str(path))
    img = Image.open(path)
    assert img.size[0] >= 800 and np.asarray(img.convert("L")).std() > 10   # not a blank page
    return img


def _docs_copy(img: Image.Image, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        img.convert("RGB").quantize(colors=200, method=Image.Quantize.MEDIANCUT).save(
            Path(SCREENSHOTS) / name, optimize=True)


def test_report_in_chromium(driver, report, tmp_path):
    out, data = report
    rows = [r for r in data["rows"] if "error" not in r]
    name = {id(r): Path(r["path"]).name for r in rows}
    driver.get(out.as_uri())
    wait_ready(driver)
    _render_all(driver)

    # cards: one per analysed photo, each with its decoded thumbnail, a six-axis radar and nine scene bars
    cards = _shown(driver)
    assert len(cards) == len(rows) == 13
    assert _names(driver) == [name[id(r)] for r in rows]                     # file order at first
    for card in cards:
        assert len(card.find_elements("css selector", "svg.radar line.radar-axis")) == 6
        assert len(card.find_elements("css selector", "svg.scene-bars g.bar")) == 9
        assert driver.execute_script("return arguments[0].querySelector('img.thumb').naturalWidth", card) > 100
        assert card.find_element("css selector", ".q").text.isdigit()
    labels = cards[0].find_elements("css selector", "svg.radar text.radar-label")
    assert [t.text.split()[0] for t in labels] == ["quality", "brightness", "colorfulness", "contrast", "noisiness",
                                                   "sharpness"]
    assert len(driver.find_elements("css selector", "#summary .hist")) == 6
    assert len(driver.find_elements("css selector", "#finding-counts g.bar")) >= 3
    assert "letter.jpg" in driver.find_element("css selector", "#errors").text

    # sorting changes the order to the order of the scores
    _select(driver, "#sort", "quality")
    by_quality = [name[id(r)] for r in sorted(rows, key=lambda r: r["scores"]["quality"])]
    assert by_quality != [name[id(r)] for r in rows]                         # (the test data is not sorted)
    assert _names(driver) == by_quality
    shown_q = [float(c.find_element("css selector", ".q").text) for c in _shown(driver)]
    assert shown_q == sorted(shown_q)
    driver.find_element("id", "sort-dir").click()
    shown_q = [float(c.find_element("css selector", ".q").text) for c in _shown(driver)]
    assert shown_q == sorted(shown_q, reverse=True) and shown_q[0] > shown_q[-1]  # (ties keep file order)
    assert sorted(_names(driver)) == sorted(by_quality)

    # filtering by scene, finding kind, severity and score range shows exactly the matching photos
    scene = rows[0]["scene"]["label"]
    _select(driver, "#filter-scene", scene)
    expected = {name[id(r)] for r in rows if r["scene"]["label"] == scene}
    assert set(_names(driver)) == expected and 0 < len(expected) < len(rows)
    assert f"showing {len(expected)} of 13 photos" in driver.find_element("id", "count").text
    _select(driver, "#filter-scene", "")
    _select(driver, "#filter-kind", "motion_blur")
    assert "china_motion_blur.jpg" in _names(driver)
    assert set(_names(driver)) == {name[id(r)] for r in rows if any(f["kind"] == "motion_blur" for f in r["findings"])}
    _select(driver, "#filter-kind", "")
    _select(driver, "#filter-severity", "severe")
    assert set(_names(driver)) == {name[id(r)] for r in rows if any(f["severity"] == "severe" for f in r["findings"])}
    _select(driver, "#filter-severity", "")
    low = driver.find_element("id", "filter-min")
    low.clear()
    low.send_keys("60")
    assert set(_names(driver)) == {name[id(r)] for r in rows if r["scores"]["quality"] >= 60}
    low.clear()
    low.send_keys("0")
    assert len(_shown(driver)) == 13

    # an overlay toggles, and a person sees it: the clipped highlights of the noisy copy turn red
    _select(driver, "#sort", "order")
    card = next(c for c in _shown(driver) if c.find_element("css selector", "h3.name").text == "china_noisy.jpg")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", card)
    overlay = card.find_element("css selector", ".overlay-clip")
    frame = card.find_element("css selector", ".frame")
    assert not overlay.is_displayed()
    before = _red_pixels(frame.screenshot_as_png)
    card.find_element("css selector", "button.toggle.clip").click()
    assert overlay.is_displayed()
    assert card.find_element("css selector", "button.toggle.clip").get_attribute("aria-pressed") == "true"
    after = _red_pixels(frame.screenshot_as_png)
    assert after > before + 200, (before, after)
    card.find_element("css selector", "button.toggle.clip").click()
    assert not overlay.is_displayed()
    driver.find_element("id", "overlay-focus").click()                         # every card at once
    assert all(c.find_element("css selector", ".overlay-focus").is_displayed() for c in _shown(driver))
    driver.find_element("id", "overlay-focus").click()
    assert not any(c.find_element("css selector", ".overlay-focus").is_displayed() for c in _shown(driver))

    # the table view sorts by a clicked column
    driver.find_element("id", "view-table").click()
    assert not driver.find_element("id", "gallery").is_displayed()
    driver.find_element("css selector", "#table th[data-key='sharpness']").click()
    cells = driver.find_elements("css selector", "#table tbody tr td:nth-child(7)")
    values = [float(c.text) for c in cells]
    assert len(values) == 13 and values == sorted(values, reverse=True)
    driver.find_element("id", "view-gallery").click()
    _select(driver, "#sort", "order")

    # nothing went wrong, nothing was fetched
    assert console_errors(driver) == []
    resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert not [r for r in resources if not r.startswith(("data:", "file:"))], resources

    img = _save(driver, tmp_path / "report.png")
    if SCREENSHOTS:  # the README's picture: the first cards, one with its focus map, one with clipping
        driver.set_window_size(1280, 1000)
        if "desc" in driver.find_element("id", "sort-dir").text:
            driver.find_element("id", "sort-dir").click()
        first = _shown(driver)[:3]
        first[0].find_element("css selector", "button.toggle.focus").click()
        first[2].find_element("css selector", "button.toggle.clip").click()
        driver.execute_script("window.scrollTo(0, document.getElementById('gallery').offsetTop - 110)")
        time.sleep(0.3)
        _docs_copy(_save(driver, tmp_path / "docs-report.png"), "report.png")
        driver.set_window_size(1360, 1000)
    assert img.size[0] >= 1300


@pytest.fixture()
def server():
    """The real application on a loopback port, served by uvicorn in a thread."""
    pytest.importorskip("fastapi", reason="the server extra is not installed")
    import uvicorn

    from picinspector.server import ServerSettings, create_app

    application = create_app(ServerSettings(concurrency=2, max_files=4))
    config = uvicorn.Config(application, host="127.0.0.1", port=0, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started:
        assert time.time() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    port = srv.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(15)


_DROP = """
const [zone, files] = [document.getElementById('dropzone'), document.getElementById('test-files').files];
const dt = new DataTransfer();
for (const f of files) dt.items.add(f);
zone.dispatchEvent(new DragEvent('dragenter', {dataTransfer: dt, bubbles: true, cancelable: true}));
const over = zone.classList.contains('over');
zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
return over;
"""


def test_web_page_in_chromium(driver, server, samples, tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(server + "/")
    wait_ready(driver)
    assert driver.find_element("id", "dropzone").is_displayed()
    photos = [samples / n for n in ("astronaut.jpg", "china_noisy.jpg", "coffee.jpg", "china_motion_blur.jpg",
                                    "flower.jpg")] + [samples / "letter.jpg"]
    # a person drops six files on the zone: the test holds them in a file input of its own, then drops them
    driver.execute_script("const i = document.createElement('input'); i.type = 'file'; i.multiple = true; "
                          "i.id = 'test-files'; document.body.appendChild(i);")
    driver.find_element("id", "test-files").send_keys("\n".join(str(p) for p in photos))
    assert driver.execute_script(_DROP) is True                     # the zone lit up under the drag
    WebDriverWait(driver, 120).until(lambda d: d.execute_script("return document.body.dataset.pending") == "0")
    assert driver.find_element("id", "upload-status").text == "6 of 6 analysed, 1 failed"
    _render_all(driver)
    cards = _shown(driver)
    assert sorted(c.find_element("css selector", "h3.name").text for c in cards) == sorted(p.name for p in photos[:5])
    for card in cards:
        assert len(card.find_elements("css selector", "svg.radar line.radar-axis")) == 6
        assert driver.execute_script("return arguments[0].querySelector('img.thumb').naturalWidth", card) > 100
    errors = driver.find_element("id", "errors").text
    assert "letter.jpg" in errors and "not_an_image" in errors
    # the same toolbar works on the page: sort by sharpness, worst first
    _select(driver, "#sort", "sharpness")
    assert _names(driver)[0] == "china_motion_blur.jpg"
    _select(driver, "#sort", "order")
    noisy = next(c for c in _shown(driver) if c.find_element("css selector", "h3.name").text == "china_noisy.jpg")
    noisy.find_element("css selector", "button.toggle.clip").click()
    assert noisy.find_element("css selector", ".overlay-clip").is_displayed()
    # the one line allowed: Chromium logs the 415 answer to letter.jpg (an expected refusal, shown on the page)
    logged = console_errors(driver)
    assert [e for e in logged if "/v1/analyze" not in e or "415" not in e] == [], logged
    assert len(logged) <= 1
    driver.execute_script("window.scrollTo(0, 0)")
    img = _save(driver, tmp_path / "web-page.png")
    if SCREENSHOTS:
        driver.set_window_size(1280, 1100)
        time.sleep(0.3)
        _docs_copy(_save(driver, tmp_path / "docs-web-page.png"), "web-page.png")
        driver.set_window_size(1360, 1000)
    assert img.size[0] >= 1300


_PLUGIN = """
// what a later feature (burst groups) adds: a section drawn from data.extra and a badge per card
PicInspector.sections.push({id: "groups", title: "Groups", render: function (rows, app) {
  var section = PicInspector.el("div", null, [PicInspector.el("h2", {text: "Groups"})]);
  (app.extra.groups || []).forEach(function (g) {
    section.appendChild(PicInspector.el("p", {"class": "group", text: g.name + ": " + g.members.length}));
  });
  return section;
}});
PicInspector.badges.push(function (row) {
  return row.pick ? PicInspector.el("span", {"class": "badge pick", text: "pick"}) : null;
});
"""


def test_a_feature_adds_a_section_and_badges_without_touching_the_page(driver, report, tmp_path):
    from picinspector.report.html import PAGE_SCRIPTS, build_report

    out, data = report
    rows = [dict(r) for r in data["rows"] if "error" not in r]
    for r in rows:
        r.pop("view")
    rows[1]["pick"] = True
    plugin = tmp_path / "groups.js"
    plugin.write_text(_PLUGIN, encoding="utf-8")
    page = tmp_path / "groups.html"
    build_report(rows, page, extra={"groups": [{"name": "burst 1", "members": [r["path"] for r in rows[:3]]}]},
                 scripts=(*PAGE_SCRIPTS, str(plugin)), overlays=False)
    driver.get(page.as_uri())
    wait_ready(driver)
    assert driver.find_element("css selector", "#groups p.group").text == "burst 1: 3"
    _render_all(driver)
    picked = [Path(c.get_attribute("data-path")).name for c in _shown(driver)
              if c.find_elements("css selector", ".badges .badge.pick")]
    assert picked == [Path(rows[1]["path"]).name]
    assert console_errors(driver) == []


def test_a_report_from_a_csv_file_renders_what_the_csv_keeps(driver, report, tmp_path):
    from picinspector.batch import CsvWriter

    out, data = report
    rows = [{k: v for k, v in r.items() if k != "view"} for r in data["rows"]]
    csv_file = tmp_path / "shoot.csv"
    csv_file.write_text("\n".join([CsvWriter.header, *(CsvWriter.format_row(r) for r in rows)]) + "\n",
                        encoding="utf-8")
    page = tmp_path / "shoot.html"
    result = _invoke("report", csv_file, "-o", page, "--no-progress", "--no-overlays")
    assert result.exit_code == 0, result.output
    driver.get(page.as_uri())
    wait_ready(driver)
    assert "CSV results file" in driver.find_element("css selector", ".note").text
    _render_all(driver)
    cards = _shown(driver)
    assert len(cards) == 13
    for card in cards:
        assert len(card.find_elements("css selector", "svg.radar line.radar-axis")) == 6
    assert "letter.jpg" in driver.find_element("id", "errors").text
    assert console_errors(driver) == []


def test_rows_with_missing_or_odd_fields_still_draw_without_errors(driver, tmp_path):
    """Results from older versions or other tools: missing keys, nulls, unknown severities and scenes."""
    from picinspector.report.html import build_report

    rows = [
        {"path": "bare.jpg", "scores": {}},
        {"path": "nulls.jpg", "scores": {"quality": None, "sharpness": 12.5}, "scene": None, "findings": None,
         "exif": None, "measures": None, "feedback": None},
        {"path": "odd.jpg", "scores": {"quality": 150, "brightness": -5}, "width": 10, "height": 10,
         "scene": {"label": "moon", "probabilities": {"moon": 0.9, "animal": 0.1}, "confidence": "high"},
         "findings": [{"kind": "strange", "severity": "catastrophic"}, {}],
         "exif": {"iso": "400", "exposure_time_s": 0, "f_number": "2.8", "datetime": 2024},
         "measures": {"exposure_ev": "bright", "focus_map": [[None, 0.5], [1.0, None]], "nested": {"a": 1}}},
        {"path": None, "scores": {"quality": 50}},
    ]
    page = tmp_path / "odd.html"
    build_report(rows, page)
    driver.get(page.as_uri())
    wait_ready(driver)
    _render_all(driver)
    assert len(_shown(driver)) == 4
    for card in _shown(driver):
        assert len(card.find_elements("css selector", "svg.radar line.radar-axis")) == 6
    driver.find_element("id", "view-table").click()
    assert len(driver.find_elements("css selector", "#table tbody tr")) == 4
    assert console_errors(driver) == []
