"""The public API end to end: analyze() on paths, PIL images and arrays; registries; findings on real
photos with one known problem each."""

import json

import numpy as np
import pytest
from PIL import Image

import picinspector
from picinspector import ENGINES, Inspector, SCORE_NAMES, analyze
from picinspector.errors import NotAnImage
from picinspector.measures import measure_units
from picinspector.scene import SCENES

pytest.importorskip("skimage", reason="sample photos come from scikit-image (the 'samples' extra)")
from picinspector.samples import write_samples  # noqa: E402

SCHEMA = {"path", "width", "height", "format", "exif", "scores", "scene", "findings", "feedback", "measures",
          "engine", "version"}


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    folder = tmp_path_factory.mktemp("samples")
    return {p.stem: p for p in write_samples(folder)}


@pytest.fixture(scope="module")
def inspector():
    with Inspector(engine="classic") as ins:  # the findings and levels below are the classic engine's
        yield ins


def check_schema(d):
    assert set(d) == SCHEMA
    assert set(d["scores"]) == set(SCORE_NAMES)
    assert all(0 <= v <= 100 for v in d["scores"].values())
    assert set(d["scene"]["probabilities"]) == set(SCENES)
    assert sum(d["scene"]["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    assert d["scene"]["label"] == max(d["scene"]["probabilities"], key=d["scene"]["probabilities"].get)
    assert set(d["measures"]) == set(measure_units())
    for f in d["findings"]:
        assert set(f) == {"kind", "severity", "message", "suggestion"} and f["message"] and f["suggestion"]
    json.loads(json.dumps(d, allow_nan=False))  # strictly valid JSON: no NaN or numpy types


def test_path_pil_and_array_give_the_same_report(samples, inspector):
    path = samples["coffee"]
    by_path = inspector.analyze(path).to_dict()
    by_pil = inspector.analyze(Image.open(path)).to_dict()
    by_array = analyze(np.asarray(Image.open(path).convert("RGB")), engine="classic").to_dict()
    for d in (by_path, by_pil, by_array):
        check_schema(d)
    assert by_path["path"] == str(path) and by_path["format"] == "JPEG" and by_array["format"] == "ARRAY"
    assert (by_path["width"], by_path["height"]) == (600, 400)
    assert by_path["scores"] == by_pil["scores"]
    # The array carries no JPEG tables, but its pixels keep the JPEG's quantisation: the same scores.
    assert by_array["measures"]["jpeg_quality"] is None and by_path["measures"]["jpeg_quality"] is not None
    assert abs(by_array["measures"]["jpeg_quality_pixels"] - by_path["measures"]["jpeg_quality_pixels"]) <= 1
    assert by_array["scores"] == by_path["scores"]
    assert by_path["engine"] == "classic" and by_path["version"] == picinspector.__version__


def test_threads_do_not_change_results(samples):
    with Inspector(engine="classic", threads=1) as one, Inspector(engine="classic", threads=2) as two:
        for name in ("astronaut", "china_noisy"):
            a, b = one.analyze(samples[name]).to_dict(), two.analyze(samples[name]).to_dict()
            assert a == b


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="unknown engine"):
        Inspector(engine="nope")
    with pytest.raises(ValueError, match="unknown feedback"):
        Inspector(feedback="nope")
    with pytest.raises(ValueError, match="threads"):
        Inspector(threads=0)


def test_an_engine_is_one_registry_entry(samples, monkeypatch):
    from picinspector.report import SceneResult

    class Constant:
        name = "constant"

        def predict(self, photo, measures):
            probs = {s: (1.0 if s == "others" else 0.0) for s in SCENES}
            return {s: 50.0 for s in SCORE_NAMES}, SceneResult("others", probs, "constant", 1.0)

    monkeypatch.setitem(ENGINES, "constant", lambda: Constant())
    d = Inspector(engine="constant").analyze(samples["coffee"]).to_dict()
    check_schema(d)
    assert d["engine"] == "constant" and d["scores"]["quality"] == 50.0


def test_bad_file_raises_a_typed_error_naming_it(tmp_path, inspector):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    with pytest.raises(NotAnImage) as err:
        inspector.analyze(bad)
    assert str(bad) in str(err.value)


def kinds(report):
    return {f.kind for f in report.findings}


def test_clean_sample_beats_each_degraded_copy(samples, inspector):
    clean = inspector.analyze(samples["china"])
    for name in ("china_motion_blur", "china_defocus", "china_noisy", "china_dark", "china_heavy_jpeg"):
        assert inspector.analyze(samples[name]).scores["quality"] < clean.scores["quality"] - 5, name


def test_findings_name_each_known_problem(samples, inspector):
    motion = inspector.analyze(samples["china_motion_blur"])
    assert "motion_blur" in kinds(motion) and "horizontally" in motion.feedback
    assert motion.scores["sharpness"] < 40
    defocus = inspector.analyze(samples["china_defocus"])
    assert kinds(defocus) & {"defocus_blur", "soft"} and defocus.measures["blur_kind"] == "defocus"
    noisy = inspector.analyze(samples["china_noisy"])
    assert "noise" in kinds(noisy) and noisy.scores["noisiness"] < 40
    dark = inspector.analyze(samples["china_dark"])
    assert "underexposed" in kinds(dark) and dark.scores["brightness"] < 25
    jpeg = inspector.analyze(samples["china_heavy_jpeg"])
    assert "compression" in kinds(jpeg) and abs(jpeg.measures["jpeg_quality"] - 12) <= 2


def test_scene_of_a_portrait(samples, inspector):
    report = inspector.analyze(samples["astronaut"])
    assert report.scene.label == "human" and report.scene.method == "cues"
    assert report.measures["face_count"] >= 1


def test_featureless_frame_is_scored_not_an_error(inspector):
    rng = np.random.default_rng(0)
    flat = np.clip(0.1 + rng.normal(0, 0.004, (300, 400, 3)), 0, 1).astype(np.float32)
    report = inspector.analyze(flat)
    check_schema(report.to_dict())
    assert report.scores["sharpness"] == 0.0 and "no_detail" in kinds(report)


def test_the_core_imports_no_deep_or_training_dependency():
    """`import picinspector`, its CLI and a classic analysis never load torch, transformers or peft."""
    import subprocess
    import sys

    code = ("import sys, numpy as np; import picinspector, picinspector.cli, picinspector.models; "
            "picinspector.analyze(np.full((64, 64, 3), 128, np.uint8)); "
            "print(sorted(m for m in ('torch', 'transformers', 'peft', 'sklearn', 'safetensors') if m in sys.modules))")
    src = str(__import__("pathlib").Path(__file__).resolve().parents[1] / "src")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "PYTHONPATH": src})
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
