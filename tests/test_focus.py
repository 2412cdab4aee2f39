"""Focus measures: blur series on real photos, invariances, motion direction and the focus map."""

import cv2
import numpy as np
import pytest
from skimage import data
from sklearn.datasets import load_sample_images

from picinspector.errors import AnalysisError
from picinspector.io import Photo
from picinspector.io._photo import LUMA_WEIGHTS
from picinspector.measures import _focus as F
from picinspector.measures import measure_all

KEYS = {
    "focus", "focus_native", "edge_width_px", "blur_kind", "motion_blur_angle_deg",
    "blur_anisotropy", "focus_map", "sharp_area_pct",
}


def q8(x):
    """Quantise to 8-bit code values, as a saved file would."""
    return (np.round(np.clip(x, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


_CACHE = {}


def gray(name):
    """Luma of a sample photo, float32 in [0, 1]."""
    if name not in _CACHE:
        if name in ("china", "flower"):
            rgb = load_sample_images().images[0 if name == "china" else 1]
        else:
            rgb = getattr(data, name)()
        _CACHE[name] = (rgb.astype(np.float32) / 255.0) @ LUMA_WEIGHTS
    return _CACHE[name]


def gblur(g, sigma):
    return q8(cv2.GaussianBlur(g, (0, 0), sigma) if sigma > 0 else g)


def line_kernel(length, angle_deg):
    """Linear motion blur of ``length`` px along ``angle_deg``: 0 = horizontal, counter-clockwise
    as displayed. Image rows go down, so "up" is -y: the end points are c +- r (cos a, -sin a)."""
    size = length + 4
    k = np.zeros((size, size), np.float32)
    c, r, a = (size - 1) / 2.0, (length - 1) / 2.0, np.radians(angle_deg)
    p0 = (c - r * np.cos(a), c + r * np.sin(a))
    p1 = (c + r * np.cos(a), c - r * np.sin(a))
    sh = 8  # sub-pixel end points
    cv2.line(k, tuple(int(round(v * (1 << sh))) for v in p0), tuple(int(round(v * (1 << sh))) for v in p1),
             1.0, 1, cv2.LINE_AA, sh)
    return k / k.sum()


def motion(g, length, angle_deg):
    return q8(cv2.filter2D(g, -1, line_kernel(length, angle_deg), borderType=cv2.BORDER_REFLECT))


def angle_distance(a, b):
    d = abs(a - b) % 180.0
    return min(d, 180.0 - d)


def focus(g):
    return F.focus_measures(g)["focus"]


def circles_scene(h=480, w=640, seed=1, scale=8):
    """Discs of random grey drawn at 8x and area-averaged: ideal, pixel-sharp edges."""
    rng = np.random.default_rng(seed)
    big = np.full((h * scale, w * scale), 0.3, np.float32)
    for _ in range(60):
        centre = (int(rng.uniform(0, w * scale)), int(rng.uniform(0, h * scale)))
        cv2.circle(big, centre, int(rng.uniform(20, 70) * scale), float(rng.uniform(0.1, 0.9)), -1)
    return cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)


PHOTOS = ["astronaut", "chelsea", "coffee", "china"]


# --------------------------------------------------------------------------- blur series


@pytest.mark.parametrize("name", PHOTOS)
def test_strictly_decreasing_with_gaussian_blur(name):
    g = gray(name)
    values = [focus(gblur(g, s)) for s in (0, 0.5, 1, 1.5, 2, 3, 4)]
    assert all(a > b for a, b in zip(values, values[1:])), values
    assert values[-1] < 0.2


@pytest.mark.parametrize("name", PHOTOS)
def test_strictly_decreasing_with_motion_blur(name):
    g = gray(name)
    values = [focus(q8(g))] + [focus(motion(g, n, 30.0)) for n in (3, 5, 9, 15, 25)]
    assert all(a > b for a, b in zip(values, values[1:])), values


def test_edge_width_known_answer():
    """Ideal edges blurred by a Gaussian of sigma have a 10-90 % width of 2.563 sigma."""
    scene = circles_scene()
    for sigma in (1.5, 2.0, 3.0):
        out = F.focus_measures(gblur(scene, sigma))
        # the scene's own pixel aperture (variance 1/12) adds in quadrature
        expected = 2.5631 * np.sqrt(sigma ** 2 + 1.0 / 12.0)
        assert out["edge_width_px"] == pytest.approx(expected, rel=0.10)
        assert out["blur_kind"] == ("sharp" if sigma < 1.6 else "defocus")


# --------------------------------------------------------------------------- invariances


@pytest.mark.parametrize("name", PHOTOS)
def test_contrast_and_brightness_do_not_matter(name):
    g = gray(name)
    f0 = focus(q8(g))
    assert abs(focus(q8(0.25 + 0.5 * g)) - f0) < 0.05  # x0.5 contrast around mid-grey
    assert abs(focus(q8(0.2 + 0.75 * g)) - f0) < 0.05  # brighter, less contrast


@pytest.mark.parametrize("name", PHOTOS)
def test_stable_under_noise_and_jpeg(name):
    g = gray(name)
    f0 = focus(q8(g))
    one_px = f0 - focus(gblur(g, 1.0))
    assert one_px > 0.1
    rng = np.random.default_rng(2)
    noisy = q8(g + rng.normal(0.0, 5.0 / 255.0, g.shape).astype(np.float32))
    assert abs(focus(noisy) - f0) < 0.2 * one_px
    for quality in (50, 75):
        ok, buf = cv2.imencode(".jpg", np.round(g * 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        jpeg = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0
        assert abs(focus(jpeg) - f0) < 0.2 * one_px


@pytest.mark.parametrize("name", ["astronaut", "coffee", "china", "flower", "rocket", "camera"])
def test_sharp_photos_of_any_content_read_high(name):
    g = gray(name) if name != "camera" else data.camera().astype(np.float32) / 255.0
    out = F.focus_measures(q8(g))
    assert out["focus"] > 0.75
    assert out["blur_kind"] == "sharp"
    assert out["motion_blur_angle_deg"] is None


def test_ideal_edges_read_near_one():
    out = F.focus_measures(circles_scene())
    assert out["focus"] > 0.95
    assert out["edge_width_px"] < 1.2


# --------------------------------------------------------------------------- blur kind and direction


@pytest.mark.parametrize("name", ["coffee", "flower", "astronaut"])
def test_motion_direction(name):
    g = gray(name)
    for angle in (0.0, 45.0, 90.0, 135.0):
        out = F.focus_measures(motion(g, 15, angle))
        assert out["blur_kind"] == "motion", (angle, out)
        assert out["blur_anisotropy"] > 0.6
        assert angle_distance(out["motion_blur_angle_deg"], angle) <= 10.0, (angle, out)


@pytest.mark.parametrize("name", ["coffee", "flower", "astronaut"])
def test_defocus_is_isotropic(name):
    out = F.focus_measures(gblur(gray(name), 3.0))
    assert out["blur_kind"] == "defocus"
    assert out["blur_anisotropy"] < 0.3
    assert out["motion_blur_angle_deg"] is None


def test_directional_model_known_answer():
    """var(t) = a + b cos^2(t - phi): the fit finds phi and the anisotropy (max-min)/(max+min)."""
    rng = np.random.default_rng(3)
    theta = rng.uniform(0, 180, 4000)
    for phi in (10.0, 70.0, 160.0):
        var = 1.0 + 3.0 * np.cos(np.radians(theta - phi)) ** 2
        d = F.directional_blur(theta, var)
        assert angle_distance(d["angle_deg"], phi) < 3.0
        assert d["anisotropy"] == pytest.approx(3.0 / 5.0, abs=0.08)
        assert d["mean_variance"] == pytest.approx(2.5, rel=0.1)
        # focus reads the mean of the orientation average (2.5) and the worst direction (4)
        assert d["variance"] == pytest.approx(0.5 * (2.5 + 4.0), rel=0.1)
    flat = F.directional_blur(theta, np.full(theta.size, 2.0))
    assert flat["anisotropy"] < 1e-6
    few = F.directional_blur(theta[:20], np.ones(20))
    assert few["variance"] is None and few["anisotropy"] is None
    one_direction = F.directional_blur(np.full(500, 22.5), np.ones(500))
    # one orientation of edges and nothing else: the seven others (157.5 degrees) count as lost
    # to a linear motion, blurred beyond measure
    assert one_direction["bins_lost"] == 7 and one_direction["anisotropy"] > 0.9
    assert angle_distance(one_direction["angle_deg"], 112.5) < 3.0
    assert one_direction["variance"] > 20.0


# --------------------------------------------------------------------------- focus map


@pytest.mark.parametrize("name", ["coffee", "china"])
def test_focus_map_finds_blurred_half(name):
    g = q8(gray(name))
    h, w = g.shape
    half = g.copy()
    half[:, : w // 2] = gblur(g, 3.0)[:, : w // 2]
    sharp_map = F.focus_measures(g)
    out = F.focus_measures(half)
    fmap = out["focus_map"]
    rows, cols = F.focus_grid(g.shape)
    assert (len(fmap), len(fmap[0])) == (rows, cols) == (3, 4)
    left = [v for r in fmap for v in r[: cols // 2] if v is not None]
    right = [v for r in fmap for v in r[cols // 2:] if v is not None]
    assert left and right
    assert max(left) < min(right)
    assert out["sharp_area_pct"] < sharp_map["sharp_area_pct"]
    assert out["sharp_area_pct"] == pytest.approx(100.0 * sum(v >= F.SHARP_FOCUS for v in left + right)
                                                  / len(left + right))


def test_focus_grid_follows_aspect():
    assert F.focus_grid((600, 900)) == (3, 4)
    assert F.focus_grid((900, 600)) == (4, 3)
    assert F.focus_grid((700, 700)) == (4, 4)
    out = F.focus_measures(q8(gray("astronaut")))  # square
    assert len(out["focus_map"]) == 4 and all(len(r) == 4 for r in out["focus_map"])


def test_flat_image_and_flat_tiles():
    flat = np.full((300, 400), 0.5, np.float32)
    out = F.focus_measures(flat)
    assert out["focus"] is None and out["blur_kind"] is None and out["sharp_area_pct"] is None
    assert out["focus_map"] == [[None] * 4 for _ in range(3)]
    # texture only in the right half: the left tiles cannot be judged
    g = flat.copy()
    g[:, 200:] = circles_scene(300, 200, seed=4)
    fmap = F.focus_measures(g)["focus_map"]
    assert all(r[0] is None for r in fmap)
    assert all(r[3] is not None for r in fmap)


# --------------------------------------------------------------------------- mapping and inputs


def test_focus_from_edge_sigma():
    s = np.linspace(0, 6, 50)
    f = F.focus_from_edge_sigma(s)
    assert np.all(np.diff(f) < 0) and f[0] == 1.0
    assert F.focus_from_edge_sigma(F.SIGMA_HALF) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        F.focus_from_edge_sigma(-1.0)
    assert F.edge_sigma_from_variance(0.0) == pytest.approx(np.sqrt(F.PIXEL_VARIANCE))


@pytest.mark.parametrize(
    "bad", [np.zeros((20, 100), np.float32), np.zeros((64, 64, 3), np.float32), np.zeros(100, np.float32)]
)
def test_bad_input_raises(bad):
    with pytest.raises(ValueError):
        F.focus_measures(bad)


def test_non_finite_raises():
    g = np.full((64, 64), 0.5, np.float32)
    g[5, 5] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        F.focus_measures(g)


def test_windows_sample_large_images():
    from picinspector.measures._noise import sample_windows

    g = q8(cv2.resize(gray("coffee"), (1800, 1200), interpolation=cv2.INTER_CUBIC))
    full = F.focus_score(g)
    windows = sample_windows(g.shape, 600_000)
    assert len(windows) == 9
    sampled = F.focus_score([g[sy, sx] for sy, sx in windows])
    assert sampled == pytest.approx(full, abs=0.05)
    with pytest.raises(ValueError):
        F.focus_score([])
    with pytest.raises(ValueError):
        F.focus_score([g, g[:10, :10]])


def test_registered_group():
    g = gray("coffee")
    rgb = np.repeat(q8(g)[..., None], 3, axis=2)
    out = measure_all(Photo(rgb=rgb), ["focus"])
    assert set(out) == KEYS
    assert out["focus_native"] is None
    # a detail image twice the size: the native measure runs on it
    detail = np.repeat(q8(cv2.resize(g, (1200, 800), interpolation=cv2.INTER_CUBIC))[..., None], 3, axis=2)
    out = measure_all(Photo(rgb=rgb, detail=detail, detail_scale=1.0), ["focus"])
    assert 0.0 < out["focus_native"] < out["focus"]  # upsampling 2x doubles every edge width
    # a detail image over the pixel budget is sampled with windows, with the same verdict
    big = q8(cv2.resize(g, (1500, 1000), interpolation=cv2.INTER_CUBIC))
    out_big = measure_all(Photo(rgb=rgb, detail=np.repeat(big[..., None], 3, axis=2)), ["focus"])
    assert out_big["focus_native"] == pytest.approx(F.focus_score(big), abs=0.05)
    with pytest.raises(AnalysisError):
        measure_all(Photo(rgb=np.full((16, 16, 3), 0.5, np.float32)), ["focus"])


# --------------------------------------------------------------------------- thin lines, few edges, block edges


def facade_panels(h=480, w=720, scale=8, joint_px=1.2, tilt_deg=2.0, seed=0):
    """A minimal architecture shot: white panels with thin dark joints (1-2 px) under a large flat
    sky, drawn at 8x and area-averaged (pixel-sharp). Few edges, two orientations, all ridges."""
    rng = np.random.default_rng(seed)
    big_h, big_w = h * scale, w * scale
    t = np.linspace(0.0, 1.0, big_h, dtype=np.float32)[:, None]
    img = np.repeat(0.55 + 0.2 * t, big_w, axis=1)  # sky: a smooth gradient
    top = int(0.42 * big_h)
    facade = np.full((big_h - top, big_w), 0.90, np.float32)
    pw, ph, lw = int(rng.uniform(70, 110) * scale), int(rng.uniform(50, 80) * scale), int(joint_px * scale)
    for y in range(0, big_h - top, ph):
        for x in range(0, big_w, pw):
            facade[y:y + ph, x:x + pw] += rng.uniform(-0.02, 0.02)
        facade[y:y + lw, :] = 0.30
    for x in range(0, big_w, pw):
        facade[:, x:x + lw] = 0.30
    img[top:] = facade
    rot = cv2.getRotationMatrix2D((big_w / 2, big_h / 2), tilt_deg, 1.0)
    img = cv2.warpAffine(img, rot, (big_w, big_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return q8(cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA))


def window_columns(h=480, w=640, scale=4, seed=2):
    """A facade of window columns (tall dark rectangles, light sills): horizontal and vertical edges only."""
    rng = np.random.default_rng(seed)
    big = np.full((h * scale, w * scale), 0.75, np.float32)
    x = 0
    while x < w * scale:
        cw, gap = int(rng.uniform(10, 16) * scale), int(rng.uniform(6, 10) * scale)
        y = int(rng.uniform(0, 10) * scale)
        while y < h * scale:
            wh = int(rng.uniform(12, 18) * scale)
            big[y:y + wh, x:x + cw] = rng.uniform(0.15, 0.35)
            big[y + wh:y + wh + scale, max(x - scale, 0):x + cw + scale] = 0.95
            y += wh + int(rng.uniform(5, 8) * scale)
        x += cw + gap
    return q8(cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA))


def jpeg_gray(g, quality):
    ok, buf = cv2.imencode(".jpg", np.round(g * 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0


@pytest.mark.parametrize("joint_px", [1.0, 1.5, 2.0])
def test_thin_lines_read_sharp_and_blur_lowers_them(joint_px):
    """Thin dark joints are ridges, not steps: crisp ones read sharp, and any blur lowers focus
    (the step model read them as very blurred, and sharper once blurred by 0.7 px)."""
    g = facade_panels(joint_px=joint_px)
    out = F.focus_measures(g)
    assert out["focus"] > 0.8 and out["blur_kind"] == "sharp"
    assert out["blur_anisotropy"] < 0.3
    assert F.edge_blur_samples(g)["ridge"].mean() > 0.5
    values = [out["focus"]] + [focus(gblur(g, s)) for s in (0.5, 0.7, 1.0, 1.5, 2.0, 3.0)]
    assert all(a > b for a, b in zip(values, values[1:])), values
    assert values[2] < values[0] - 0.05  # 0.7 px: clearly lower
    assert values[-1] < 0.35


def test_thin_line_model_known_answer():
    """Lines of 1 px blurred by sigma read a blur close to sqrt(sigma^2 + 1/12) (pixel aperture)."""
    scale, h, w = 8, 480, 640
    rng = np.random.default_rng(5)
    big = np.full((h * scale, w * scale), 0.8, np.float32)
    for _ in range(40):
        p0 = np.array([rng.uniform(0, w * scale), rng.uniform(0, h * scale)])
        a = rng.uniform(0, np.pi)
        p1 = p0 + rng.uniform(100, 400) * scale * np.array([np.cos(a), np.sin(a)])
        cv2.line(big, tuple(int(v) for v in p0), tuple(int(v) for v in p1), 0.2, scale)
    lines = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
    for sigma in (0.0, 0.7, 1.0):
        width = F.focus_measures(gblur(lines, sigma))["edge_width_px"]
        assert width / F.WIDTH_PER_SIGMA == pytest.approx(np.sqrt(sigma ** 2 + 1.0 / 12.0), abs=0.25), sigma


@pytest.mark.parametrize("name", ["astronaut", "coffee", "rocket"])
def test_block_edges_of_heavy_jpeg_do_not_read_sharp(name):
    """JPEG quality 5 of a blurred photo: its 8x8 block edges are pixel-sharp steps, left out."""
    for sigma in (2.0, 3.0):
        blurred = gblur(gray(name), sigma)
        f_blur = focus(blurred)
        for quality in (10, 5):
            assert F.focus_measures(jpeg_gray(blurred, quality), block_period=8)["focus"] < f_blur + 0.05, (sigma, quality)


def test_block_edges_through_the_registered_group():
    """The group finds the grid in the pixels of a JPEG saved as PNG (no quantisation tables)."""
    import io as _io

    from PIL import Image

    g = gblur(gray("rocket"), 3.0)
    rgb = np.repeat(np.round(g * 255).astype(np.uint8)[..., None], 3, axis=2)
    buf = _io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=5)
    png = _io.BytesIO()
    Image.open(buf).save(png, "PNG")
    pixels = np.asarray(Image.open(png).convert("RGB"), np.float32) / 255.0
    out = measure_all(Photo(rgb=pixels, format="PNG"), ["focus"])
    assert out["focus"] < focus(g) + 0.05
    assert out["blur_kind"] != "sharp"
    # without the grid the block edges read as sharp: the check is what makes the difference
    assert F.focus_measures(pixels @ LUMA_WEIGHTS)["focus"] > out["focus"] + 0.2


@pytest.mark.parametrize("angle", [0.0, 90.0])
def test_long_motion_blur_with_orientations_lost(angle):
    """25 px along one axis of a facade of horizontal and vertical edges leaves no edge across the
    motion at all; those orientations count as blurred beyond measure."""
    g = window_columns()
    assert F.focus_measures(g)["blur_kind"] == "sharp"
    out = F.focus_measures(motion(g, 25, angle))
    assert out["focus"] < 0.2 and out["blur_kind"] == "motion"
    assert angle_distance(out["motion_blur_angle_deg"], angle) <= 10.0


@pytest.mark.parametrize("name", ["astronaut", "coffee", "flower", "chelsea"])
def test_long_motion_blur_reads_clearly_blurred(name):
    for angle in (0.0, 60.0, 90.0, 150.0):
        out = F.focus_measures(motion(gray(name), 25, angle))
        assert out["focus"] < 0.2 and out["blur_kind"] == "motion", (angle, out)
        assert angle_distance(out["motion_blur_angle_deg"], angle) <= 15.0, (angle, out)


def test_grid_aligned_content_of_a_never_compressed_image_is_not_left_out():
    """A checkerboard of 16-px squares on the 8-px lattice is content, not block edges, when the
    photo shows no JPEG compression (no tables, no quantisation lattice in its pixels)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:384, :512]
    g = 0.6 * ((yy // 16 + xx // 16) % 2) + 0.4 * rng.random((384, 512))
    rgb = np.repeat((np.clip(g, 0, 1) * 220 + 20).astype(np.uint8)[..., None], 3, axis=2)
    out = measure_all(Photo(rgb=rgb.astype(np.float32) / 255.0), ["focus", "compression"])
    assert out["jpeg_quality"] is None and out["jpeg_quality_pixels"] == 100
    assert out["focus"] > 0.8 and out["blur_kind"] == "sharp"
