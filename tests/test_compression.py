"""Compression measures: JPEG quality from Pillow-written files, blockiness versus quality."""

import io

import numpy as np
import pytest
from PIL import Image
from skimage import data

from picinspector.io import Photo
from picinspector.measures import _compression as Z
from picinspector.measures import measure_all

KEYS = {"jpeg_quality", "jpeg_quality_pixels", "blockiness"}


def jpeg_bytes(u8, quality, **kw):
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, "JPEG", quality=quality, **kw)
    return buf.getvalue()


def photo_from_jpeg(blob, draft_scale=1):
    """Photo of a JPEG file the way the loader builds it (tables straight from Pillow)."""
    img = Image.open(io.BytesIO(blob))
    tables = {k: list(v) for k, v in img.quantization.items()}
    if draft_scale != 1:  # DCT-domain reduced decoding: 8x8 blocks become (8 * scale) px
        img.draft("RGB", (img.width // int(1 / draft_scale), img.height // int(1 / draft_scale)))
    rgb = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return Photo(rgb=rgb, detail_scale=draft_scale, format="JPEG", jpeg_quantization=tables)


def photo_png(u8):
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, "PNG")
    rgb = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), np.float32) / 255.0
    return Photo(rgb=rgb, format="PNG")


def test_group_returns_documented_keys():
    out = measure_all(photo_from_jpeg(jpeg_bytes(data.chelsea(), 80)), ["compression"])
    assert set(out) == KEYS
    assert isinstance(out["jpeg_quality"], int) and isinstance(out["blockiness"], float)


def test_ijg_table_at_50_is_annex_k_and_pillow_order_is_natural():
    assert np.array_equal(Z.ijg_table(Z.ANNEX_K_LUMINANCE, 50), Z.ANNEX_K_LUMINANCE)
    assert np.array_equal(Z.ijg_table(Z.ANNEX_K_CHROMINANCE, 50), Z.ANNEX_K_CHROMINANCE)
    assert Z.ijg_table(Z.ANNEX_K_LUMINANCE, 100).max() == 1
    assert Z.ijg_table(Z.ANNEX_K_LUMINANCE, 1).max() == 255
    tables = Image.open(io.BytesIO(jpeg_bytes(data.chelsea(), 50))).quantization
    # Pillow hands the tables over de-zigzagged: row-major, like Annex K is printed.
    assert list(tables[0]) == list(Z.ANNEX_K_LUMINANCE)
    assert list(tables[1]) == list(Z.ANNEX_K_CHROMINANCE)


@pytest.mark.parametrize("quality", [10, 25, 40, 50, 75, 90, 95])
@pytest.mark.parametrize("subsampling", [0, 2])
def test_quality_recovered_from_pillow_files(quality, subsampling):
    blob = jpeg_bytes(data.astronaut(), quality, subsampling=subsampling)
    out = Z.measure_compression(photo_from_jpeg(blob))
    assert abs(out["jpeg_quality"] - quality) <= 2
    assert out["jpeg_quality"] == quality  # IJG tables invert exactly


@pytest.mark.parametrize("quality", [15, 60, 85])
def test_quality_of_grayscale_jpeg(quality):
    blob = jpeg_bytes(data.camera(), quality)
    assert len(Image.open(io.BytesIO(blob)).quantization) == 1
    assert Z.estimate_jpeg_quality(Image.open(io.BytesIO(blob)).quantization) == quality


def test_quality_of_perturbed_tables_is_nearest():
    rng = np.random.default_rng(2)
    luma = Z.ijg_table(Z.ANNEX_K_LUMINANCE, 70).astype(np.int64)
    chroma = Z.ijg_table(Z.ANNEX_K_CHROMINANCE, 70).astype(np.int64)
    luma = np.maximum(luma + rng.integers(-1, 2, 64), 1)  # a non-IJG encoder's rounding
    assert abs(Z.estimate_jpeg_quality({0: luma, 1: chroma}) - 70) <= 2
    # Coarser tables read as a lower quality.
    coarse = {0: Z.ijg_table(Z.ANNEX_K_LUMINANCE, 30), 1: Z.ijg_table(Z.ANNEX_K_CHROMINANCE, 30)}
    assert Z.estimate_jpeg_quality(coarse) == 30


def test_non_jpeg_has_no_quality():
    p = photo_png(data.chelsea())
    out = Z.measure_compression(p)
    assert out["jpeg_quality"] is None
    assert Z.estimate_jpeg_quality({}) is None
    assert Z.estimate_jpeg_quality(None) is None


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "camera"])
def test_blockiness_rises_as_quality_falls(name):
    u8 = getattr(data, name)()
    values = [
        Z.measure_compression(photo_from_jpeg(jpeg_bytes(u8, q)))["blockiness"]
        for q in (90, 50, 20, 10)
    ]
    assert np.all(np.diff(values) > 0.05), values
    png = Z.measure_compression(photo_png(u8))["blockiness"]
    assert png == pytest.approx(1.0, abs=0.06)
    assert values[-1] > 1.8


def test_blockiness_at_half_scale_uses_period_4():
    u8 = data.astronaut()
    blob = jpeg_bytes(u8, 15)
    half = photo_from_jpeg(blob, draft_scale=0.5)
    assert half.detail.shape[1] == u8.shape[1] // 2
    assert Z.block_period(half.detail_scale) == 4
    png_half = Z.blockiness(photo_png(u8[::2, ::2]).gray, 4)
    assert Z.measure_compression(half)["blockiness"] > png_half + 0.2


def test_block_period_rules():
    assert Z.block_period(1.0) == 8
    assert Z.block_period(0.5) == 4
    assert Z.block_period(0.25) is None  # 2 px blocks
    assert Z.block_period(0.77) is None  # grid resampled away
    quarter = Photo(rgb=np.zeros((64, 64, 3), np.float32), detail_scale=0.25)
    assert Z.measure_compression(quarter)["blockiness"] is None
    with pytest.raises(ValueError):
        Z.block_period(0)


def test_synthetic_blocks_found_at_any_grid_offset():
    rng = np.random.default_rng(4)
    blocks = rng.random((24, 32)).astype(np.float32).repeat(8, 0).repeat(8, 1)
    texture = rng.random(blocks.shape).astype(np.float32) * 0.02
    image = blocks * 0.9 + texture
    for offset in (0, 3, 5):
        shifted = np.ascontiguousarray(image[offset:, offset:])
        assert Z.blockiness(shifted) > 5.0
    assert Z.blockiness(texture) == pytest.approx(1.0, abs=0.05)
    assert Z.blockiness(np.full((64, 64), 0.5, np.float32)) == pytest.approx(1.0)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="64"):
        Z.estimate_jpeg_quality({0: [1] * 63})
    with pytest.raises(ValueError, match="integers"):
        Z.estimate_jpeg_quality({0: [0] * 64})
    with pytest.raises(ValueError, match="quality"):
        Z.ijg_table(Z.ANNEX_K_LUMINANCE, 0)
    with pytest.raises(ValueError, match="period"):
        Z.blockiness(np.zeros((32, 32), np.float32), period=1)
    with pytest.raises(ValueError, match="2-D"):
        Z.blockiness(np.zeros((32, 32, 3), np.float32))
    assert Z.blockiness(np.zeros((6, 6), np.float32)) is None  # under two blocks either way


# --------------------------------------------------------------------------- quality from pixels


def decoded(blob):
    return np.asarray(Image.open(io.BytesIO(blob)).convert("RGB"), np.float32) / 255.0


def textured_scene(h=384, w=512, seed=3):
    """Never compressed: discs of random colour, drawn at 4x and area-averaged, with mild noise."""
    import cv2

    rng = np.random.default_rng(seed)
    big = np.full((h * 4, w * 4, 3), 0.5, np.float32)
    for _ in range(80):
        centre = (int(rng.uniform(0, w * 4)), int(rng.uniform(0, h * 4)))
        cv2.circle(big, centre, int(rng.uniform(8, 60) * 4), tuple(float(v) for v in rng.uniform(0.1, 0.9, 3)), -1)
    small = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
    small += rng.normal(0.0, 2.0 / 255.0, small.shape).astype(np.float32)
    return (np.clip(small, 0, 1) * 255 + 0.5).astype(np.uint8)


@pytest.mark.parametrize("quality", [5, 10, 25, 50, 75, 90])
@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee"])
def test_quality_from_pixels_of_a_png_copy(name, quality):
    """A JPEG saved as PNG keeps its quantisation lattice: the quality reads back from pixels."""
    u8 = getattr(data, name)()
    blob = jpeg_bytes(u8, quality)
    png = photo_png(np.round(decoded(blob) * 255).astype(np.uint8))
    out = Z.measure_compression(png)
    assert out["jpeg_quality"] is None
    assert abs(out["jpeg_quality_pixels"] - quality) <= 2, out
    assert Z.effective_jpeg_quality(out) == out["jpeg_quality_pixels"]


def test_quality_from_pixels_never_compressed_and_edge_cases():
    assert Z.jpeg_quality_from_pixels(textured_scene().astype(np.float32) / 255.0) == 100
    assert Z.jpeg_quality_from_pixels(np.full((64, 64, 3), 0.5, np.float32)) is None  # nothing to judge
    assert Z.jpeg_quality_from_pixels(np.zeros((12, 40, 3), np.float32)) is None  # under two blocks
    with pytest.raises(ValueError):
        Z.jpeg_quality_from_pixels(np.zeros((64, 64), np.float32))
    # decoded at reduced scale the grid is gone: not measured
    half = photo_from_jpeg(jpeg_bytes(data.astronaut(), 20), draft_scale=0.5)
    assert Z.measure_compression(half)["jpeg_quality_pixels"] is None


def test_quality_from_pixels_sees_through_recompression_and_crops():
    u8 = data.astronaut()
    first = np.round(decoded(jpeg_bytes(u8, 20)) * 255).astype(np.uint8)
    again = jpeg_bytes(first, 95)  # re-saved at 95: the tables say 95, the pixels still 20
    out = Z.measure_compression(photo_from_jpeg(again))
    assert out["jpeg_quality"] == 95
    assert abs(out["jpeg_quality_pixels"] - 20) <= 2
    assert Z.effective_jpeg_quality(out) == out["jpeg_quality_pixels"]
    cropped = np.ascontiguousarray(first[5:, 3:])  # the grid no longer starts at pixel 0
    assert abs(Z.jpeg_quality_from_pixels(cropped.astype(np.float32) / 255.0) - 20) <= 2


def test_quantisation_steps_known_answer():
    rng = np.random.default_rng(6)
    steps = {1: 7.0, 8: 23.0, 9: 60.0, 2: 2.0}
    coef = rng.normal(0.0, 0.3, (4000, 64)).astype(np.float32)  # rounding noise everywhere
    for p, q in steps.items():
        k = np.round(rng.laplace(0.0, 40.0 / q, 4000))
        coef[:, p] += (k * q).astype(np.float32)
    coef[:, 16] += rng.laplace(0.0, 20.0, 4000).astype(np.float32)  # never quantised
    found = Z.quantisation_steps(coef, [1, 8, 9, 2, 16])
    for p, q in steps.items():  # a lone multiple fixes a step to within the score's tolerance, ~3 %
        assert found[p] == pytest.approx(q, rel=0.03), (p, found[p])
    assert found[16] == 1.0


def test_effective_quality():
    assert Z.effective_jpeg_quality({"jpeg_quality": 95, "jpeg_quality_pixels": 20}) == 20
    assert Z.effective_jpeg_quality({"jpeg_quality": None, "jpeg_quality_pixels": 40}) == 40
    assert Z.effective_jpeg_quality({"jpeg_quality": 80}) == 80
    assert Z.effective_jpeg_quality({"jpeg_quality": None, "jpeg_quality_pixels": None}) is None
