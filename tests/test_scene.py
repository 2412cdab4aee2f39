"""Scene estimate by the "cues" method: sample photos, synthetic scenes, and the cue functions."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from picinspector.io import Photo
from picinspector.scene import (
    SCENE_METHODS,
    SCENES,
    WEIGHTS,
    SceneEstimate,
    combine,
    estimate_scene,
    estimate_scene_rgb,
    measure_cues,
    scene_evidence,
)
from picinspector.scene import _cues
from picinspector.scene._estimate import round_probabilities


# ------------------------------------------------------------------------------------------
# Helpers: photos from arrays
# ------------------------------------------------------------------------------------------


def to_photo(arr: np.ndarray, exif: dict | None = None) -> Photo:
    """uint8 (H, W, 3) -> Photo at long side <= 1024 (never enlarged), float32 in [0, 1]."""
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    arr = arr[..., :3]
    h, w = arr.shape[:2]
    scale = 1024.0 / max(h, w)
    if scale < 1.0:
        arr = cv2.resize(arr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    rgb = arr.astype(np.float32) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float32)
    return Photo(rgb=rgb, exif=exif or {})


@pytest.fixture(scope="module")
def samples() -> dict[str, Photo]:
    skdata = pytest.importorskip("skimage.data")
    datasets = pytest.importorskip("sklearn.datasets")
    cbook = pytest.importorskip("matplotlib.cbook")
    from PIL import Image

    out = {"astronaut": to_photo(skdata.astronaut()), "coffee": to_photo(skdata.coffee())}
    sk = datasets.load_sample_images()
    for name, img in zip(sk.filenames, sk.images):
        out[name.replace("\\", "/").rsplit("/", 1)[-1].split(".")[0]] = to_photo(img)
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        out["grace_hopper"] = to_photo(np.asarray(Image.open(f).convert("RGB")))
    return out


@pytest.fixture(scope="module")
def estimates(samples) -> dict[str, SceneEstimate]:
    return {name: estimate_scene(photo) for name, photo in samples.items()}


def night_scene(seed: int = 0, background: float = 0.04) -> np.ndarray:
    """Dark frame with small warm lamps (street lights, windows)."""
    rng = np.random.default_rng(seed)
    img = np.full((683, 1024, 3), background, np.float32)
    img += rng.normal(0.0, 0.01, img.shape).astype(np.float32)
    for _ in range(30):
        x, y = int(rng.integers(20, 1004)), int(rng.integers(20, 663))
        cv2.circle(img, (x, y), int(rng.integers(3, 7)), (1.0, 0.9, 0.6), -1)
    return np.clip(img, 0.0, 1.0)


def field_scene(seed: int = 1, horizon: int = 280) -> np.ndarray:
    """Blue sky fading to pale at the horizon, over a textured green field."""
    rng = np.random.default_rng(seed)
    img = np.zeros((683, 1024, 3), np.float32)
    t = np.linspace(0.0, 1.0, horizon, dtype=np.float32)[:, None, None]
    zenith = np.array([0.30, 0.50, 0.90], np.float32)
    haze = np.array([0.70, 0.80, 0.95], np.float32)
    img[:horizon] = zenith * (1 - t) + haze * t
    # Grass: noise at a few pixels' scale, so it survives the reduction to 256 px.
    noise = cv2.resize(rng.normal(0.0, 1.0, (100, 256)).astype(np.float32), (1024, 683 - horizon))
    grass = np.array([0.25, 0.55, 0.15], np.float32) * (1.0 + 0.35 * noise[..., None])
    img[horizon:] = grass
    return np.clip(img, 0.0, 1.0)


def city_scene(seed: int = 2) -> np.ndarray:
    """Sky over a row of block buildings with window grids."""
    rng = np.random.default_rng(seed)
    img = np.zeros((683, 1024, 3), np.float32)
    img[:] = np.array([0.45, 0.62, 0.92], np.float32)
    x = 0
    while x < 1024:
        w = int(rng.integers(90, 200))
        top = int(rng.integers(150, 350))
        colour = rng.uniform(0.35, 0.7) * np.array([1.0, 0.95, 0.9], np.float32)
        img[top:, x : x + w] = colour
        for wy in range(top + 15, 683, 30):
            for wx in range(x + 10, min(x + w, 1024) - 15, 24):
                img[wy : wy + 14, wx : wx + 12] = colour * 0.45
        x += w + int(rng.integers(0, 8))
    return img


def still_life_scene(seed: int = 3) -> np.ndarray:
    """A red, slightly textured fruit in the middle of a plain white backdrop."""
    rng = np.random.default_rng(seed)
    img = np.full((683, 1024, 3), 0.93, np.float32)
    img += np.linspace(0.0, 0.04, 683, dtype=np.float32)[:, None, None]
    cv2.circle(img, (512, 360), 150, (0.75, 0.10, 0.08), -1)
    inside = img[..., 1:2] < 0.5
    img += rng.normal(0.0, 0.03, img.shape).astype(np.float32) * inside
    return np.clip(cv2.GaussianBlur(img, (0, 0), 1.5), 0.0, 1.0)


# ------------------------------------------------------------------------------------------
# Sample photos
# ------------------------------------------------------------------------------------------


def test_astronaut_is_human_with_a_face(estimates):
    est = estimates["astronaut"]
    assert est.cues["face_count"] >= 1
    assert est.label == "human"
    assert est.confidence > 0.5


def test_grace_hopper_is_human(estimates):
    est = estimates["grace_hopper"]
    assert est.cues["face_count"] >= 1
    assert est.label == "human"


def test_china_temple_is_landscape(estimates):
    # The pagoda stands under a wide hazy sky among trees above a lake. Its roof lines are
    # mostly horizontal or oblique at 256 px, so vertical structure is no stronger than in
    # foliage (vertical_edge_ratio ~0.12): sky over vegetation wins, i.e. "landscape".
    est = estimates["china"]
    assert est.cues["sky_top_fraction"] > 0.5
    assert est.cues["face_count"] == 0
    assert est.label == "landscape"
    assert est.probabilities["landscape"] > est.probabilities["cityscape"]


def test_flower_is_plant_without_face(estimates):
    est = estimates["flower"]
    assert est.cues["face_count"] == 0
    assert est.label == "plant"
    assert est.probabilities["plant"] > est.probabilities["still_life"]


def test_coffee_is_not_human(estimates):
    est = estimates["coffee"]
    assert est.cues["face_count"] == 0
    assert est.label != "human"
    assert est.probabilities["human"] < 0.1


def test_mirrored_photo_gives_the_same_label(samples, estimates):
    for name in ("astronaut", "china", "flower"):
        mirrored = Photo(rgb=np.ascontiguousarray(samples[name].rgb[:, ::-1]))
        assert estimate_scene(mirrored).label == estimates[name].label, name


# ------------------------------------------------------------------------------------------
# Synthetic scenes
# ------------------------------------------------------------------------------------------


def test_synthetic_night_is_night():
    est = estimate_scene(Photo(rgb=night_scene()))
    assert est.cues["point_lights"] >= 5
    assert est.label == "night"
    assert est.confidence > 0.5


def test_lamps_on_a_bright_background_are_not_night():
    est = estimate_scene(Photo(rgb=night_scene(background=0.55)))
    assert est.label != "night"
    assert est.probabilities["night"] < 0.1


def test_exif_low_light_raises_night():
    rng = np.random.default_rng(4)
    dim = np.clip(0.12 + rng.normal(0.0, 0.02, (400, 600, 3)), 0, 1).astype(np.float32)
    plain = estimate_scene(Photo(rgb=dim))
    long_exposure = estimate_scene(Photo(rgb=dim, exif={"exposure_time_s": 0.5, "iso": 3200}))
    assert long_exposure.cues["exif_low_light"] == 1.0
    assert plain.cues["exif_low_light"] == 0.0
    assert long_exposure.probabilities["night"] > plain.probabilities["night"] + 0.1


def test_sky_over_field_is_landscape():
    est = estimate_scene(Photo(rgb=field_scene()))
    assert est.cues["sky_fraction"] > 0.3
    assert 0.3 < est.cues["horizon"] < 0.5  # the horizon is at 280/683 = 0.41
    assert est.label == "landscape"


def test_sky_must_hang_from_the_top():
    upside_down = np.ascontiguousarray(field_scene()[::-1])
    est = estimate_scene(Photo(rgb=upside_down))
    assert est.cues["sky_fraction"] < 0.05
    assert est.label != "landscape"


def test_buildings_under_sky_are_cityscape():
    est = estimate_scene(Photo(rgb=city_scene()))
    assert est.cues["vertical_edge_ratio"] > 0.2  # ~0.11 for isotropic texture
    assert est.label == "cityscape"


def test_object_on_white_backdrop_is_still_life():
    est = estimate_scene(Photo(rgb=still_life_scene()))
    # The backdrop is pale and smooth like overcast sky, but it is also at the bottom.
    assert est.cues["sky_bottom_fraction"] > 0.7
    assert scene_evidence(est.cues)["sky"] == 0.0
    assert est.label == "still_life"
    assert est.probabilities["landscape"] + est.probabilities["cityscape"] < 0.1


def test_flat_grey_is_a_weak_guess():
    est = estimate_scene(Photo(rgb=np.full((683, 1024, 3), 0.5, np.float32)))
    assert est.confidence < 0.4
    assert est.label == "others"


# ------------------------------------------------------------------------------------------
# Output contract
# ------------------------------------------------------------------------------------------


def test_probabilities_cover_nine_classes_and_sum_to_one(estimates):
    assert len(SCENES) == 9 and SCENES[-1] == "others"
    for name, est in estimates.items():
        assert tuple(est.probabilities) == SCENES, name
        assert abs(sum(est.probabilities.values()) - 1.0) < 1e-9, name
        assert all(round(p, 3) == p for p in est.probabilities.values()), name
        assert est.confidence == max(est.probabilities.values())
        assert est.probabilities[est.label] == est.confidence
        assert est.method == "cues"


def test_to_dict_round_trip(estimates):
    d = estimates["coffee"].to_dict()
    assert set(d) == {"label", "probabilities", "method", "confidence", "cues"}
    assert d["method"] == "cues"
    assert all(isinstance(v, (int, float)) for v in d["cues"].values())
    assert isinstance(d["cues"]["face_count"], int)


def test_scene_methods_registry():
    assert SCENE_METHODS["cues"] is estimate_scene


def test_round_probabilities_sums_exactly():
    rng = np.random.default_rng(5)
    for _ in range(200):
        p = rng.dirichlet(np.full(9, 0.3))
        r = round_probabilities(dict(zip(SCENES, p)))
        assert sum(round(v * 1000) for v in r.values()) == 1000
        assert max(abs(r[s] - q) for s, q in zip(SCENES, p)) < 0.001 + 1e-12


def test_weights_only_name_known_evidence():
    names = set(scene_evidence(measure_cues(field_scene())))
    for scene, terms in WEIGHTS.items():
        assert scene in SCENES
        assert set(terms) - {"bias"} <= names, scene


def test_combine_is_softmax_and_temperature_flattens():
    ev = scene_evidence(measure_cues(night_scene()))
    sharp = combine(ev, temperature=1.0)
    flat = combine(ev, temperature=4.0)
    assert abs(sum(sharp.values()) - 1.0) < 1e-12
    assert max(flat.values()) < max(sharp.values())
    assert max(sharp, key=sharp.get) == max(flat, key=flat.get) == "night"
    with pytest.raises(ValueError, match="temperature"):
        combine(ev, temperature=0.0)
    with pytest.raises(ValueError, match="unknown evidence"):
        combine(ev, weights={**WEIGHTS, "others": {"bias": 0.0, "no_such_cue": 1.0}})


def test_no_evidence_gives_others():
    probs = combine({k: 0.0 for k in scene_evidence(measure_cues(field_scene()))})
    assert max(probs, key=probs.get) == "others"
    assert probs["others"] < 0.4


# ------------------------------------------------------------------------------------------
# Individual cues
# ------------------------------------------------------------------------------------------


def test_orientation_cue_stripes_and_isotropic_texture():
    y, x = np.mgrid[0:256, 0:256].astype(np.float32)
    vertical_stripes = 0.5 + 0.4 * np.sin(x / 3.0)
    im = _cues.prepare(np.repeat(vertical_stripes[..., None], 3, axis=2))
    out = _cues.orientation_cue(im.gx, im.gy)
    assert out["vertical_edge_ratio"] > 0.9
    # Concentric rings have every orientation equally: 40 of 180 degrees are "cardinal".
    r = np.hypot(x - 128, y - 128)
    rings = 0.5 + 0.4 * np.sin(r / 2.5)
    im = _cues.prepare(np.repeat(rings[..., None], 3, axis=2))
    out = _cues.orientation_cue(im.gx, im.gy)
    assert 0.15 < out["cardinal_edge_ratio"] < 0.32
    assert 0.07 < out["vertical_edge_ratio"] < 0.16


def test_night_cue_counts_lamps_only_in_the_dark():
    L = np.full((170, 256), 8.0, np.float32)
    for i in range(6):
        L[20 + 20 * i, 30 + 35 * i] = 95.0
    assert _cues.night_cue(L)["point_lights"] == 6
    L[:] += 50.0  # the same lamps on a bright background
    assert _cues.night_cue(L)["point_lights"] == 0
    assert _cues.night_cue(L, {"exposure_time_s": 1 / 30, "iso": 100})["exif_low_light"] == 0.0
    assert _cues.night_cue(L, {"exposure_time_s": 0.25})["exif_low_light"] == 0.5


def test_face_cue_finds_nothing_on_flat_or_noise():
    rng = np.random.default_rng(6)
    flat = np.full((171, 256), 128, np.uint8)
    noise = rng.integers(0, 256, (171, 256)).astype(np.uint8)
    assert _cues.face_cue(flat)["face_count"] == 0
    assert _cues.face_cue(noise)["face_count"] == 0
    with pytest.raises(ValueError, match="uint8"):
        _cues.face_cue(flat.astype(np.float32))


def test_skin_check_drops_a_face_recoloured_blue(samples):
    rgb = samples["astronaut"].rgb
    im = _cues.prepare(rgb)
    found = _cues.face_cue(im.face_gray, im.lab)
    assert found["face_count"] >= 1
    blue = _cues.prepare(np.ascontiguousarray(rgb[..., ::-1]))  # skin turns blue, luma similar
    assert _cues.face_cue(im.face_gray, blue.lab)["face_count"] == 0


def test_missing_cascade_names_the_cause(monkeypatch, tmp_path):
    monkeypatch.setattr(_cues.cv2.data, "haarcascades", str(tmp_path) + "/")
    monkeypatch.setattr(_cues._local, "face_cascade", None, raising=False)
    with pytest.raises(RuntimeError, match="opencv-python-headless<5"):
        _cues.load_face_cascade()


# ------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arr, reason",
    [
        (np.zeros((100, 100), np.float32), "shape"),
        (np.zeros((100, 100, 4), np.float32), "shape"),
        (np.zeros((8, 100, 3), np.float32), "at least"),
        (np.zeros((100, 100, 3), np.uint8), "float"),
    ],
)
def test_bad_arrays_raise(arr, reason):
    with pytest.raises(ValueError, match=reason):
        estimate_scene_rgb(arr)


def test_nan_raises():
    rgb = np.full((200, 300, 3), 0.5, np.float32)
    rgb[10, 10, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        estimate_scene(Photo(rgb=rgb))


def test_not_a_photo_raises():
    with pytest.raises(ValueError, match="Photo"):
        estimate_scene(np.zeros((100, 100, 3), np.float32))
