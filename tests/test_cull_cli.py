"""`picinspector cull` and `picinspector undo` on photos the tests make, read back by ExifTool.

The shoot: a burst of one scene (astronaut) with one frame blurred, one noisy, one under-exposed and
one well exposed, 0.2 s apart (EXIF DateTimeOriginal + SubSecTimeOriginal); a photo with an exact and
a resized duplicate (coffee); unrelated photos. ExifTool (Debian's libimage-exiftool-perl; .ci/run
installs it) is the independent reader of every sidecar and embedded packet.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from picinspector.cli import app

pytest.importorskip("exiv2", reason="the xmp extra (python-exiv2) is not installed")
EXIFTOOL = shutil.which("exiftool")
needs_exiftool = pytest.mark.skipif(EXIFTOOL is None, reason="no exiftool (apt-get install libimage-exiftool-perl; "
                                                             ".ci/run does)")

BURST = ("dark", "blurred", "good", "noisy")  # in shooting order, 0.2 s apart
UNRELATED = ("chelsea", "china", "flower", "rocket", "motorcycle")


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def _exif(second: int, centis: int) -> bytes:
    exif = Image.Exif()
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = f"2024:05:01 10:00:{second:02d}"
    sub[0x9291] = f"{centis:02d}"
    return exif.tobytes()


def _make_shoot(folder: Path) -> None:
    import cv2

    from picinspector.samples import load_sample

    folder.mkdir(parents=True, exist_ok=True)
    base = load_sample("astronaut").astype(np.float32) / 255
    kernel = np.zeros((17, 17), np.float32)
    kernel[8, :] = 1 / 17
    frames = {
        "dark": base * 0.15,
        "blurred": cv2.filter2D(base, -1, kernel),
        "good": base,
        "noisy": base + np.random.default_rng(0).normal(0, 20 / 255, base.shape).astype(np.float32),
    }
    for k, name in enumerate(BURST):
        img = Image.fromarray((np.clip(frames[name], 0, 1) * 255 + 0.5).astype(np.uint8))
        img.save(folder / f"burst_{k + 1}_{name}.jpg", quality=95, exif=_exif(7, 20 * k))
    coffee = Image.fromarray(load_sample("coffee"))
    coffee.save(folder / "coffee.jpg", quality=95)
    shutil.copyfile(folder / "coffee.jpg", folder / "coffee_copy.jpg")
    coffee.resize((300, 200), Image.LANCZOS).save(folder / "coffee_small.jpg", quality=90)
    for name in UNRELATED:
        Image.fromarray(load_sample(name)).save(folder / f"{name}.jpg", quality=95)


@pytest.fixture(scope="module")
def analysed(tmp_path_factory) -> Path:
    """The shoot and its analysis (`analyze -o`), made once; each test copies it."""
    root = tmp_path_factory.mktemp("cull")
    _make_shoot(root / "shoot")
    result = _invoke("analyze", root / "shoot", "-o", root / "results.jsonl", "--no-progress")
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture
def shoot(analysed, tmp_path) -> Path:
    """A fresh copy of the shoot and its results (paths rewritten to the copy)."""
    shutil.copytree(analysed / "shoot", tmp_path / "shoot")
    rows = [json.loads(line) for line in (analysed / "results.jsonl").read_text().splitlines() if line.strip()]
    with open(tmp_path / "results.jsonl", "w") as fh:
        for row in rows:
            row["path"] = str(tmp_path / "shoot" / os.path.basename(row["path"]))
            fh.write(json.dumps(row) + "\n")
    return tmp_path


def _snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``folder``: SHA-256 and modification time."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            out[str(path.relative_to(folder))] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    return out


def _cull_rows(path: Path) -> dict[str, dict]:
    return {os.path.basename(r["path"]): r for r in map(json.loads, path.read_text().splitlines()) if "cull" in r}


def _exiftool(*paths: Path) -> dict[str, dict]:
    out = subprocess.run([EXIFTOOL, "-j", "-a", "-G1", "-n", "-XMP:all", *map(str, paths)], capture_output=True,
                         text=True, check=True)
    return {os.path.basename(d["SourceFile"]): d for d in json.loads(out.stdout)}


def test_groups_picks_and_reasons_on_real_photos(shoot):
    result = _invoke("cull", shoot / "results.jsonl", "-o", shoot / "cull.jsonl", "--no-xmp", "--show", "all")
    assert result.exit_code == 0, result.output
    rows = _cull_rows(shoot / "cull.jsonl")
    assert len(rows) == 4 + 3 + len(UNRELATED)
    group = {name: r["cull"]["group"] for name, r in rows.items()}
    burst = {f"burst_{k + 1}_{n}.jpg" for k, n in enumerate(BURST)}
    coffees = {"coffee.jpg", "coffee_copy.jpg", "coffee_small.jpg"}
    assert len({group[n] for n in burst}) == 1
    assert len({group[n] for n in coffees}) == 1
    others = [group[f"{n}.jpg"] for n in UNRELATED]
    assert len(set(others)) == len(UNRELATED)
    assert not set(others) & {group[n] for n in burst | coffees}
    assert group["burst_1_dark.jpg"] != group["coffee.jpg"]

    pick = [n for n in burst if rows[n]["cull"]["pick"]]
    assert pick == ["burst_3_good.jpg"]
    c = {n: rows[n]["cull"] for n in burst}
    assert c["burst_3_good.jpg"]["burst"] and c["burst_3_good.jpg"]["rating"] >= 2
    assert c["burst_3_good.jpg"]["reason"].split(" (")[0].endswith("of a 4-frame burst")
    assert c["burst_2_blurred.jpg"]["status"] == "reject" and c["burst_2_blurred.jpg"]["rating"] == -1
    assert "motion blur" in c["burst_2_blurred.jpg"]["reason"]
    assert "the frame 0.2 s later (burst_3_good.jpg) is sharp" in c["burst_2_blurred.jpg"]["reason"]
    assert c["burst_4_noisy.jpg"]["status"] == "reject"
    assert "noise" in c["burst_4_noisy.jpg"]["reason"] and "0.2 s earlier (burst_3_good.jpg)" in c["burst_4_noisy.jpg"]["reason"]
    assert c["burst_1_dark.jpg"]["status"] == "reject" and "under-exposed" in c["burst_1_dark.jpg"]["reason"]
    # one pick per group, and every photo says why
    for g in set(group.values()):
        assert sum(1 for r in rows.values() if r["cull"]["group"] == g and r["cull"]["pick"]) == 1
    assert all(r["cull"]["reason"] for r in rows.values())
    assert "burst_3_good.jpg" in result.output  # the terminal lists the groups


@needs_exiftool
def test_sidecars_read_back_by_exiftool_with_the_right_rating(shoot):
    result = _invoke("cull", shoot / "results.jsonl", "-o", shoot / "cull.jsonl", "--keep", "3")
    assert result.exit_code == 0, result.output
    rows = _cull_rows(shoot / "cull.jsonl")
    sidecars = sorted((shoot / "shoot").glob("*.xmp"))
    assert len(sidecars) == len(rows)
    tags = _exiftool(*sidecars)
    for name, row in rows.items():
        t = tags[os.path.splitext(name)[0] + ".xmp"]
        c = row["cull"]
        assert t["XMP-xmp:Rating"] == c["rating"], name
        assert t.get("XMP-xmp:Label") == c["label"], name
        assert t["XMP-picinspector:Group"] == c["group"]
        assert t["XMP-picinspector:Pick"] in (True, "True") if c["pick"] else t["XMP-picinspector:Pick"] in (False, "False")
        assert t["XMP-picinspector:Quality"] == pytest.approx(row["scores"]["quality"], abs=0.05)
        assert t["XMP-picinspector:Sharpness"] == pytest.approx(row["scores"]["sharpness"], abs=0.05)
        assert t["XMP-picinspector:Scene"] == row["scene"]["label"]
        assert t["XMP-picinspector:Reason"] == c["reason"]
        assert c["xmp"] == {"path": str(shoot / "shoot" / (os.path.splitext(name)[0] + ".xmp")), "action": "create"}
    assert sum(1 for r in rows.values() if r["cull"]["status"] == "keep") == 3
    assert tags["burst_2_blurred.xmp"]["XMP-xmp:Rating"] == -1 and tags["burst_2_blurred.xmp"]["XMP-xmp:Label"] == "Red"
    # the originals are untouched
    for name in rows:
        assert "XMP-xmp:Rating" not in _exiftool(shoot / "shoot" / name)[name]
    # a second run with the same options changes nothing
    again = _invoke("cull", shoot / "results.jsonl", "-o", shoot / "cull2.jsonl", "--keep", "3")
    assert again.exit_code == 0, again.output
    assert "already up to date" in again.output and "undo" not in again.output.split("->")[-1]


FOREIGN = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:darktable="http://darktable.sf.net/"
    xmlns:acme="http://example.com/acme/1.0/"
   darktable:history_end="1"
   acme:Flavour="strawberry"
   xmp:CreatorTool="SomeEditor 3.1">
   <darktable:history><rdf:Seq>
     <rdf:li darktable:num="0" darktable:operation="exposure" darktable:enabled="1"/>
   </rdf:Seq></darktable:history>
   <dc:subject><rdf:Bag><rdf:li>portrait</rdf:li><rdf:li>space</rdf:li></rdf:Bag></dc:subject>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""


@needs_exiftool
def test_an_existing_sidecar_is_merged_and_other_tools_keys_kept(shoot):
    sidecar = shoot / "shoot" / "burst_3_good.xmp"
    sidecar.write_text(FOREIGN, encoding="utf-8")
    result = _invoke("cull", shoot / "results.jsonl", "-o", shoot / "cull.jsonl")
    assert result.exit_code == 0, result.output
    t = _exiftool(sidecar)["burst_3_good.xmp"]
    assert t["XMP-acme:Flavour"] == "strawberry"
    assert t["XMP-xmp:CreatorTool"] == "SomeEditor 3.1"
    assert t["XMP-dc:Subject"] == ["portrait", "space"]
    assert t["XMP-darktable:HistoryEnd"] == 1 if "XMP-darktable:HistoryEnd" in t else t["XMP-darktable:History_end"] == 1
    history = subprocess.run([EXIFTOOL, "-s3", "-struct", "-XMP-darktable:History", str(sidecar)],
                             capture_output=True, text=True, check=True).stdout
    assert "exposure" in history
    rows = _cull_rows(shoot / "cull.jsonl")
    assert t["XMP-xmp:Rating"] == rows["burst_3_good.jpg"]["cull"]["rating"]
    assert rows["burst_3_good.jpg"]["cull"]["xmp"]["action"] == "merge"


@needs_exiftool
def test_a_rating_set_by_hand_is_kept_unless_overwrite(shoot):
    sidecar = shoot / "shoot" / "burst_2_blurred.xmp"
    sidecar.write_text(FOREIGN.replace('xmp:CreatorTool="SomeEditor 3.1"', 'xmp:Rating="5" xmp:Label="Blue"'),
                       encoding="utf-8")
    result = _invoke("cull", shoot / "results.jsonl", "-o", shoot / "cull.jsonl")
    assert result.exit_code == 0, result.output
    t = _exiftool(sidecar)["burst_2_blurred.xmp"]
    assert t["XMP-xmp:Rating"] == 5 and t["XMP-xmp:Label"] == "Blue"
    assert t["XMP-picinspector:Status"] == "reject"  # the cull's own view is still recorded
    assert "set by hand" in _cull_rows(shoot / "cull.jsonl")["burst_2_blurred.jpg"]["cull"]["xmp"]["note"]
    result = _invoke("cull", shoot / "results.jsonl", "-o", shoot / "cull.jsonl", "--overwrite")
    assert result.exit_code == 0, result.output
    t = _exiftool(sidecar)["burst_2_blurred.xmp"]
    assert t["XMP-xmp:Rating"] == -1 and t["XMP-xmp:Label"] == "Red"
    # now the rating is the cull's own: a rerun with other labels replaces it without --overwrite
    result = _invoke("cull", shoot / "results.jsonl", "-o", shoot / "cull.jsonl", "--labels", "reject=Purple")
    assert result.exit_code == 0, result.output
    assert _exiftool(sidecar)["burst_2_blurred.xmp"]["XMP-xmp:Label"] == "Purple"


def test_a_sidecar_that_does_not_parse_is_left_alone(shoot):
    sidecar = shoot / "shoot" / "chelsea.xmp"
    sidecar.write_bytes(b"<x:xmpmeta><rdf:RDF>half a file")
    before = sidecar.read_bytes()
    result = _invoke("cull", shoot / "results.jsonl", "-o", shoot / "cull.jsonl")
    assert result.exit_code == 0, result.output
    assert sidecar.read_bytes() == before
    info = _cull_rows(shoot / "cull.jsonl")["chelsea.jpg"]["cull"]["xmp"]
    assert info["action"] == "error" and "not well-formed" in info["error"]
    assert "skipped" in result.output


def test_dry_run_writes_nothing(shoot):
    before = _snapshot(shoot)
    result = _invoke("cull", shoot / "results.jsonl", "-o", shoot / "cull.jsonl", "--dry-run", "--embed")
    assert result.exit_code == 0, result.output
    assert _snapshot(shoot) == before
    assert "Dry run" in result.output and "nothing was" in result.output
    assert "embed" in result.output and "burst_3_good.jpg" in result.output
    # photos as input: analysed in memory, no cache either
    photos = shoot / "shoot"
    before = _snapshot(shoot)
    result = _invoke("cull", photos / "coffee.jpg", photos / "coffee_copy.jpg", photos / "china.jpg",
                     "-o", shoot / "cull.jsonl", "--dry-run", "--no-progress")
    assert result.exit_code == 0, result.output
    assert _snapshot(shoot) == before
    assert "create  " + str(photos / "coffee.xmp") in result.output


@needs_exiftool
def test_undo_restores_every_file_byte_for_byte(shoot):
    photos = shoot / "shoot"
    (photos / "burst_3_good.xmp").write_text(FOREIGN, encoding="utf-8")  # merged, then restored
    before = _snapshot(photos)
    pixels = np.asarray(Image.open(photos / "burst_2_blurred.jpg"))
    result = _invoke("cull", shoot / "results.jsonl", "-o", shoot / "cull.jsonl", "--embed")
    assert result.exit_code == 0, result.output
    journal = shoot / "cull.undo.jsonl"
    assert journal.is_file() and f"picinspector undo {journal}" in result.output
    after = _snapshot(photos)
    assert after != before
    # --embed wrote into the JPEGs themselves (and the merged sidecar), pixels untouched
    tags = _exiftool(photos / "burst_2_blurred.jpg", photos / "burst_3_good.xmp")
    assert tags["burst_2_blurred.jpg"]["XMP-xmp:Rating"] == -1
    assert tags["burst_3_good.xmp"]["XMP-acme:Flavour"] == "strawberry"
    assert not (photos / "chelsea.xmp").exists()
    assert np.array_equal(np.asarray(Image.open(photos / "burst_2_blurred.jpg")), pixels)
    result = _invoke("undo", journal)
    assert result.exit_code == 0, result.output
    assert _snapshot(photos) == before  # bytes and modification times
    # a second undo finds everything as before
    result = _invoke("undo", journal)
    assert result.exit_code == 0 and "already as before" in result.output


def test_undo_leaves_a_file_changed_since_the_run_unless_forced(shoot):
    photos = shoot / "shoot"
    result = _invoke("cull", shoot / "results.jsonl", "-o", shoot / "cull.jsonl")
    assert result.exit_code == 0, result.output
    sidecar = photos / "china.xmp"
    sidecar.write_text(sidecar.read_text().replace("picinspector:Scene", "picinspector:Scene2"))
    result = _invoke("undo", shoot / "cull.undo.jsonl")
    assert result.exit_code == 1
    assert "changed since the run" in result.output and sidecar.exists()
    assert not (photos / "coffee.xmp").exists()  # the others were reverted (new sidecars removed)
    result = _invoke("undo", shoot / "cull.undo.jsonl", "--force")
    assert result.exit_code == 0, result.output
    assert not sidecar.exists()


def test_each_run_gets_its_own_undo_file_and_they_revert_newest_first(shoot):
    photos = shoot / "shoot"
    before = _snapshot(photos)
    assert _invoke("cull", shoot / "results.jsonl", "-o", shoot / "cull.jsonl").exit_code == 0
    middle = _snapshot(photos)
    assert _invoke("cull", shoot / "results.jsonl", "-o", shoot / "cull.jsonl", "--keep", "1").exit_code == 0
    assert (shoot / "cull.undo.2.jsonl").is_file()
    assert _invoke("undo", shoot / "cull.undo.2.jsonl").exit_code == 0
    assert {k: v[0] for k, v in _snapshot(photos).items()} == {k: v[0] for k, v in middle.items()}
    assert _invoke("undo", shoot / "cull.undo.jsonl").exit_code == 0
    assert _snapshot(photos) == before


def test_photos_as_input_are_analysed_with_a_resumable_cache_and_report(shoot):
    photos = shoot / "shoot"
    out = shoot / "out" / "c.jsonl"
    result = _invoke("cull", photos / "coffee.jpg", photos / "coffee_copy.jpg", photos / "flower.jpg",
                     "-o", out, "--no-xmp", "--no-progress")
    assert result.exit_code == 0, result.output
    assert (shoot / "out" / "c.results.jsonl").is_file()
    rows = _cull_rows(out)
    assert rows["coffee.jpg"]["cull"]["group"] == rows["coffee_copy.jpg"]["cull"]["group"]
    # culling the cull again reuses its signatures and gives the same groups
    again = _invoke("cull", out, "-o", shoot / "again.jsonl", "--no-xmp")
    assert again.exit_code == 0, again.output
    assert {k: v["cull"]["group"] for k, v in _cull_rows(shoot / "again.jsonl").items()} == \
        {k: v["cull"]["group"] for k, v in rows.items()}


def test_sidecar_names_and_a_raw_jpeg_pair(tmp_path):
    """photo.NEF and photo.jpg both want photo.xmp: the RAW keeps it, the JPEG gets photo.jpg.xmp."""
    from picinspector.cull import Decision, plan_changes, sidecar_for

    for name in ("IMG_1.NEF", "IMG_1.jpg", "IMG_2.jpg"):
        (tmp_path / name).write_bytes(b"x")
    d = Decision(index=0, group=0, group_size=2, group_rank=1, shoot_rank=1, score=70.0, pick=True, status="keep",
                 rating=4, label="Green", reason="r")
    rows = [{"path": str(tmp_path / n), "scores": {"quality": 70.0}} for n in ("IMG_1.jpg", "IMG_1.NEF", "IMG_2.jpg")]
    changes = plan_changes([(r, d) for r in rows])
    assert [os.path.basename(c.path) for c in changes] == ["IMG_1.jpg.xmp", "IMG_1.xmp", "IMG_2.xmp"]
    assert all(c.kind == "create" and c.changes for c in changes)
    # --embed never writes into a RAW
    changes = plan_changes([(rows[1], d)], embed=True)
    assert changes[0].kind == "create" and changes[0].path.endswith("IMG_1.xmp")
    assert sidecar_for(str(tmp_path / "IMG_2.jpg"), "darktable").endswith("IMG_2.jpg.xmp")
    (tmp_path / "IMG_2.jpg.xmp").write_text(FOREIGN)
    assert sidecar_for(str(tmp_path / "IMG_2.jpg")).endswith("IMG_2.jpg.xmp")  # auto: the existing one


def test_bad_arguments_are_usage_errors(shoot):
    for args, words in (
        (("--keep", "lots"), "--keep takes"),
        (("--labels", "best=Green"), "--labels takes"),
        (("--similarity", "magic"), "--similarity must be"),
        (("-o", shoot / "cull.csv"), "a .jsonl file"),
        (("--dry-run", "--report", shoot / "r.html"), "a dry run writes nothing"),
        (("--embed", "--no-xmp"), "--embed writes XMP"),
        (("--native-detail",), "analysis options apply"),
    ):
        result = _invoke("cull", shoot / "results.jsonl", *args)
        assert result.exit_code == 2, (args, result.output)
        assert words in result.output, (args, result.output)
    result = _invoke("undo", shoot / "results.jsonl")
    assert result.exit_code == 2 and "not a PicInspector undo file" in result.output


def test_report_shows_groups_as_strips_with_the_pick_marked(shoot, tmp_path):
    """The HTML report in a real headless Chromium: one strip per group, the pick outlined, rejects
    dimmed, badges on the cards; a screenshot of the strips is checked for the pick's green outline."""
    from _browser import chromium, console_errors, wait_ready, why_no_browser

    page = shoot / "cull.html"
    result = _invoke("cull", shoot / "results.jsonl", "-o", shoot / "cull.jsonl", "--no-xmp", "--report", page,
                     "--no-progress")
    assert result.exit_code == 0, result.output
    # `picinspector report cull.jsonl` draws the same section
    again = shoot / "again.html"
    assert _invoke("report", shoot / "cull.jsonl", "-o", again, "--no-progress", "--no-overlays").exit_code == 0
    assert "cull-groups" in again.read_text(encoding="utf-8")
    if why_no_browser() is not None:
        pytest.skip(why_no_browser())
    with chromium(width=1300, height=1100) as driver:
        driver.get(page.as_uri())
        wait_ready(driver)
        groups = driver.find_elements("css selector", "#cull-groups .group")
        assert len(groups) == 2
        strips = {g.get_attribute("data-group"): g for g in groups}
        burst = next(g for g in strips.values() if "burst" in g.text)
        tiles = burst.find_elements("css selector", ".frame-tile")
        assert [Path(t.get_attribute("data-path")).name for t in tiles] == \
            [f"burst_{k + 1}_{n}.jpg" for k, n in enumerate(BURST)]  # in shooting order
        assert [Path(t.get_attribute("data-path")).name for t in burst.find_elements("css selector", ".frame-tile.pick")] \
            == ["burst_3_good.jpg"]
        assert len(burst.find_elements("css selector", ".frame-tile.reject")) == 3
        assert "Pick: burst_3_good.jpg" in burst.text
        for img in burst.find_elements("css selector", ".frame-tile img"):
            assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 0
        shot = tmp_path / "groups.png"
        section = driver.find_element("id", "cull-groups")
        section.screenshot(str(shot))
        pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
        green = (abs(pixels[..., 0] - 0x1F) < 12) & (abs(pixels[..., 1] - 0x9D) < 12) & (abs(pixels[..., 2] - 0x55) < 12)
        assert green.sum() > 300  # the pick's outline (3 px around a 150-px tile) and its "pick" tag
        if os.environ.get("PICINSPECTOR_SCREENSHOTS"):
            shutil.copyfile(shot, Path(os.environ["PICINSPECTOR_SCREENSHOTS"]) / "cull-report.png")
        # clicking a tile jumps to its card, which carries the rating badges
        tiles[1].click()
        card = driver.find_element("css selector", f'#gallery > .card[data-path$="{Path(tiles[1].get_attribute("data-path")).name}"]')
        assert card.find_elements("css selector", ".badge.cull-reject")
        assert driver.execute_script("return arguments[0].getBoundingClientRect().top", card) < 200
        assert console_errors(driver) == []
