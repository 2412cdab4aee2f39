"""The scene label files shipped in data/scene_labels: each is what its two passes merge into, uses
only the nine SPAQ labels, and no photo is labelled by two rounds."""

import csv
import io
import runpy
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from picinspector.scene import SCENES

HERE = Path(__file__).resolve().parents[1] / "data" / "scene_labels"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "biq2021_train"
ROUNDS = {"biq2021_scenes_extra.csv": ("sheets_index.csv", "pass_A.csv", "pass_B.csv"),
          "biq2021_scenes_dark.csv": ("dark_sheets_index.csv", "dark_pass_A.csv", "dark_pass_B.csv")}


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("name", sorted(ROUNDS))
def test_a_label_file_holds_only_scene_labels_and_agreed_means_both_said_it(name):
    rows = _rows(HERE / name)
    assert rows and len({r["image"] for r in rows}) == len(rows)
    for r in rows:
        assert {r["annotator_1"], r["annotator_2"]} <= set(SCENES)
        assert r["scene"] == (r["annotator_1"] if r["annotator_1"] == r["annotator_2"] else "")
        assert set(filter(None, r["also"].split(";"))) <= set(SCENES)


def test_no_photo_is_labelled_by_two_rounds():
    seen = [{r["image"] for r in _rows(HERE / name)} for name in ROUNDS]
    assert not set.intersection(*seen)


@pytest.mark.skipif(not (SHARED / "scenes.csv").is_file(), reason="needs ../shared/data/biq2021_train (scenes.csv)")
@pytest.mark.parametrize("name", sorted(ROUNDS))
def test_a_label_file_is_the_merge_of_its_two_passes(name, monkeypatch):
    index, a, b = (str(HERE / f) for f in ROUNDS[name])
    monkeypatch.setattr(sys, "argv", ["merge_passes.py", index, a, b, str(SHARED)])
    out = io.StringIO()
    with redirect_stdout(out):
        runpy.run_path(str(HERE / "merge_passes.py"), run_name="__main__")
    assert out.getvalue() == (HERE / name).read_text()
    first = {r["image"] for r in _rows(SHARED / "scenes.csv")}
    assert not first & {r["image"] for r in _rows(HERE / name)}  # the hidden controls are left out
