"""Dataset loaders on tiny datasets written by the tests, in each supported layout."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from picinspector.datasets import (DATASETS, DatasetError, Sample, detect_format, infer_mos_range, load_biq2021,
                                   load_csv, load_dataset, load_koniq, load_spaq, subsample)

openpyxl = pytest.importorskip("openpyxl", reason='SPAQ tests write .xlsx files: pip install "picinspector[eval]"')


def _jpeg(path: Path, value: int = 128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(path, format="JPEG")
    return path


def _xlsx(path: Path, rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    book.save(path)
    return path


def _csv(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------------
# SPAQ

SPAQ_HEADER = ["Image name", "MOS", "Brightness", "Colorfulness", "Contrast", "Noisiness", "Sharpness"]
SPAQ_SCENE_HEADER = ["Image name", "Animal", "Cityscape", "Human", "Indoor scene", "Landscape", "Night scene",
                     "Plant", "Still-life", "Others"]


def _spaq(root: Path, annotations: str = "Annotations") -> Path:
    for name in ("00001.jpg", "00002.jpg", "00003.jpg"):
        _jpeg(root / "TestImage" / name)
    _xlsx(root / annotations / "MOS and Image attribute scores.xlsx", [
        SPAQ_HEADER,
        ["00001.jpg", 48.86, 47.43, 55.57, 55.71, 37.86, 42.57],
        ["00002.jpg", 62.5, 55.38, 67.13, 53.13, 57.5, 47.5],
        ["00003.jpg", 77.25, 62.38, 72.63, 65.75, 72.25, 82.71],
    ])
    third = 1 / 3
    _xlsx(root / annotations / "Scene category labels.xlsx", [
        SPAQ_SCENE_HEADER,
        ["00001.jpg", 0, third, 0, 0, 0, third, 0, third, 0],
        ["00002.jpg", 0, 0.5, 0, 0, 0, 0.5, 0, 0, 0],
        ["00003.jpg", 0, 0, 0, 0, 1, 0, 0, 0, 0],
    ])
    _xlsx(root / annotations / "EXIF_tags.xlsx", [
        ["Image name", "Focal length", "F-number", "Exposure time", "ISO", "Brightness", "Flash", "Time", None],
        ["00001.jpg", 4.2, 1.7, 0.1, 200, -1.21, 0, -0.965926, -0.258819],
        ["00002.jpg", 4.04, 2.0, 0.05, 400, 3.0, 0, -1.0, 0.0],
    ])
    return root


def test_spaq_real_layout(tmp_path):
    samples = load_spaq(_spaq(tmp_path))
    assert [Path(s.path).name for s in samples] == ["00001.jpg", "00002.jpg", "00003.jpg"]
    first = samples[0]
    assert first.path == str(tmp_path / "TestImage" / "00001.jpg")
    assert first.mos == pytest.approx(48.86) and first.mos01 == pytest.approx(0.4886)
    assert first.attributes == pytest.approx({"brightness": 47.43, "colorfulness": 55.57, "contrast": 55.71,
                                              "noisiness": 37.86, "sharpness": 42.57})
    assert sorted(first.scenes) == ["cityscape", "night", "still_life"]
    assert samples[2].scenes == ["landscape"]
    assert first.exif == pytest.approx({"focal_length_mm": 4.2, "f_number": 1.7, "exposure_time_s": 0.1, "iso": 200,
                                        "brightness_value": -1.21, "flash": 0, "time": -0.965926,
                                        "time_2": -0.258819})
    assert samples[2].exif == {}  # not in the EXIF workbook
    assert detect_format(tmp_path) == "spaq"


def test_spaq_numeric_scene_columns_and_lower_case_folder(tmp_path):
    root = _spaq(tmp_path, annotations="annotations")
    _xlsx(root / "annotations" / "Scene category labels.xlsx", [
        ["Image name", "Scene 1", "Scene 2"],
        ["00001.jpg", 0, 8],
        ["00002.jpg", 5, None],
        ["00003.jpg", "Night scene", None],
    ])
    samples = load_spaq(root)
    assert [s.scenes for s in samples] == [["animal", "others"], ["night"], ["night"]]


def test_spaq_bad_scene_number_names_file_and_row(tmp_path):
    root = _spaq(tmp_path)
    _xlsx(root / "Annotations" / "Scene category labels.xlsx", [["Image name", "Scene"], ["00001.jpg", 9]])
    with pytest.raises(DatasetError, match=r"Scene category labels\.xlsx row 2: .*0-8"):
        load_spaq(root)


def test_spaq_missing_file_and_column(tmp_path):
    with pytest.raises(DatasetError, match=r"missing annotation file .*MOS and Image attribute scores\.xlsx"):
        load_spaq(tmp_path)
    root = _spaq(tmp_path)
    _xlsx(root / "Annotations" / "MOS and Image attribute scores.xlsx", [["Image name", "Score"], ["00001.jpg", 3]])
    with pytest.raises(DatasetError, match=r"attribute scores\.xlsx: no 'MOS' column \(the header has 'Image name', "):
        load_spaq(root)


def test_spaq_not_an_xlsx(tmp_path):
    root = _spaq(tmp_path)
    (root / "Annotations" / "MOS and Image attribute scores.xlsx").write_text("not a workbook")
    with pytest.raises(DatasetError, match="not a readable .xlsx workbook"):
        load_spaq(root)


def test_spaq_without_openpyxl_says_what_to_install(tmp_path, monkeypatch):
    root = _spaq(tmp_path)
    monkeypatch.setitem(sys.modules, "openpyxl", None)  # makes `import openpyxl` fail
    with pytest.raises(ImportError, match=r'pip install "picinspector\[eval\]"'):
        load_spaq(root)


# --------------------------------------------------------------------------------------------------
# KonIQ-10k

KONIQ_CSV = ('"image_name","c1","c2","c3","c4","c5","c_total","MOS","SD","MOS_zscore"\n'
             '"10004473376.jpg",0,0,25,73,7,105,3.828571,0.527278,77.383931\n'
             '"10007357496.jpg",0,3,45,47,1,96,3.479167,0.580003,68.728440\n')


@pytest.mark.parametrize("folders", [("512x384",), ("512x384", "1024x768")])
def test_koniq_finds_the_image_folder(tmp_path, folders):
    _csv(tmp_path / "koniq10k_scores_and_distributions.csv", KONIQ_CSV)
    for folder in folders:
        for name in ("10004473376.jpg", "10007357496.jpg"):
            _jpeg(tmp_path / folder / name)
    samples = load_koniq(tmp_path)
    expected = "1024x768" if "1024x768" in folders else "512x384"  # full resolution preferred
    assert [s.path for s in samples] == [str(tmp_path / expected / n) for n in ("10004473376.jpg", "10007357496.jpg")]
    assert samples[0].mos == pytest.approx(3.828571)
    assert samples[0].mos01 == pytest.approx((3.828571 - 1) / 4)
    assert detect_format(tmp_path) == "koniq"


def test_koniq_without_images_or_csv(tmp_path):
    with pytest.raises(DatasetError, match="koniq10k_scores_and_distributions.csv"):
        load_koniq(tmp_path)
    _csv(tmp_path / "koniq10k_scores_and_distributions.csv", KONIQ_CSV)
    with pytest.raises(DatasetError, match=r"none of the listed images \(e.g. '10004473376.jpg'\) was found"):
        load_koniq(tmp_path)


# --------------------------------------------------------------------------------------------------
# BIQ2021


def test_biq2021_labels_csv_layout(tmp_path):
    _csv(tmp_path / "labels.csv", "image,mos,subset\nss01_0693.jpg,0.1053,author_gallery\nss03_0005.jpg,0.8,unsplash\n")
    _jpeg(tmp_path / "images" / "ss01_0693.jpg")
    _jpeg(tmp_path / "images" / "ss03_0005.jpg")
    samples = load_biq2021(tmp_path)
    assert [(Path(s.path).parent.name, s.mos01, s.subset) for s in samples] == [
        ("images", 0.1053, "author_gallery"), ("images", 0.8, "unsplash")]
    assert detect_format(tmp_path) == "biq2021"


def test_biq2021_original_layout(tmp_path):
    # the original train file has two empty trailing columns; values slightly below 0 occur
    _csv(tmp_path / "Train (Images and MOS).csv", "Image Name,MOS,,\nss03 (3753).jpg,0.8471,,\nss02 (167).jpg,-0.004,,\n")
    _csv(tmp_path / "Test (Images and MOS).csv", "Image Name,MOS\nss01 (151).jpg,0.1931\n")
    for name in ("ss03 (3753).jpg", "ss02 (167).jpg", "ss01 (151).jpg"):
        _jpeg(tmp_path / "Images" / name)
    samples = load_biq2021(tmp_path)
    assert [Path(s.path).name for s in samples] == ["ss03 (3753).jpg", "ss02 (167).jpg", "ss01 (151).jpg"]
    assert [s.subset for s in samples] == ["unsplash", "intentional_capture_distortions", "author_gallery"]
    assert samples[1].mos == pytest.approx(-0.004) and samples[1].mos01 == 0.0
    only_test = load_biq2021(tmp_path / "Test (Images and MOS).csv")
    assert [Path(s.path).name for s in only_test] == ["ss01 (151).jpg"]
    assert detect_format(tmp_path) == "biq2021"
    assert detect_format(tmp_path / "Test (Images and MOS).csv") == "biq2021"


def test_biq2021_missing_labels_names_what_it_needs(tmp_path):
    with pytest.raises(DatasetError, match=r"labels\.csv.*Train \(Images and MOS\)\.csv"):
        load_biq2021(tmp_path)


def test_biq2021_bad_mos_names_row(tmp_path):
    _csv(tmp_path / "labels.csv", "image,mos\na.jpg,0.5\nb.jpg,high\n")
    _jpeg(tmp_path / "images" / "a.jpg")
    with pytest.raises(DatasetError, match=r"labels\.csv row 3: MOS is 'high', not a number"):
        load_biq2021(tmp_path)


# --------------------------------------------------------------------------------------------------
# Generic CSV


def test_generic_csv(tmp_path):
    _jpeg(tmp_path / "pics" / "a.jpg")
    path = _csv(tmp_path / "scores.csv", "Image,MOS,Sharpness,Scene,Subset\n"
                                        "pics/a.jpg,4.5,70,Night scene; cityscape,x\n"
                                        f"{tmp_path / 'pics' / 'b.jpg'},2,,,\n"
                                        "pics/c.jpg,,,,\n")
    samples = load_csv(path)
    assert samples[0] == Sample(path=str(tmp_path / "pics" / "a.jpg"), mos=4.5, mos01=pytest.approx(3.5 / 4),
                                attributes={"sharpness": 70.0}, scenes=["night", "cityscape"], subset="x")
    assert samples[1].path == str(tmp_path / "pics" / "b.jpg")  # absolute paths stay as they are
    assert samples[1].mos01 == pytest.approx(0.25)  # MOS range inferred as 1-5
    assert samples[2].mos is None and samples[2].mos01 is None
    assert load_csv(tmp_path) == samples  # a folder with one CSV
    assert load_csv(path, mos_range=(0, 10))[0].mos01 == pytest.approx(0.45)
    assert detect_format(path) == "csv" and detect_format(tmp_path) == "csv"


def test_generic_csv_errors(tmp_path):
    path = _csv(tmp_path / "a.csv", "image,mos,scene\nx.jpg,1,beach\n")
    with pytest.raises(DatasetError, match=r"a\.csv row 2: scene 'beach' is not one of animal, "):
        load_csv(path)
    _csv(tmp_path / "b.csv", "image\nx.jpg\n")
    with pytest.raises(DatasetError, match=r"expected exactly one \.csv file .* found a\.csv, b\.csv"):
        load_csv(tmp_path)
    with pytest.raises(DatasetError, match=r"no 'image' / 'path' / 'file' column"):
        load_csv(_csv(tmp_path / "c" / "c.csv", "picture,mos\nx.jpg,1\n"))


@pytest.mark.parametrize("values, expected", [([0.2, 0.9], (0, 1)), ([1.2, 4.8], (1, 5)), ([0.5, 4.0], (0, 5)),
                                              ([3, 97], (0, 100)), ([-3, 2], (-3, 2))])
def test_infer_mos_range(values, expected):
    assert infer_mos_range(values) == expected


# --------------------------------------------------------------------------------------------------
# Registry, detection, subsets


def test_registry_detection_and_unknown_folder(tmp_path):
    assert set(DATASETS) == {"spaq", "koniq", "biq2021", "csv"}
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="cannot tell the dataset format"):
        detect_format(tmp_path / "empty")
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="unknown dataset format 'tid'"):
        load_dataset(tmp_path, "tid")


def test_subsample_is_seeded_sorted_and_sized():
    samples = [Sample(path=f"{i}.jpg", mos=float(i)) for i in range(50)]
    a, b, c = subsample(samples, 10, seed=1), subsample(samples, 10, seed=1), subsample(samples, 10, seed=2)
    assert a == b and a != c
    assert len(a) == 10 and [s.mos for s in a] == sorted(s.mos for s in a)
    assert subsample(samples, 80, seed=1) == samples and subsample(samples, None) == samples
