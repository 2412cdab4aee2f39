"""Loader tests: every format, orientation, EXIF, bit depth, alpha, reduction and every bad input.

All images are made here (in tmp_path) from synthetic pixels or the sample photos that ship with
scikit-image.
"""

from __future__ import annotations

import io
import os
import re
import struct
import sys
import warnings
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps
from PIL.TiffImagePlugin import IFDRational

from picinspector.errors import (
    AnalysisError,
    CorruptImage,
    DecompressionBomb,
    EmptyFile,
    FileNotFound,
    LoadError,
    NotAnImage,
    UnreadableFile,
    UnsupportedFormat,
)
from picinspector.io import (
    MAX_PIXELS,
    SUPPORTED_EXTENSIONS,
    WORKING_LONG_SIDE,
    InvalidPixels,
    Photo,
    apply_orientation,
    load_photo,
    normalise_exif,
    photo_from_array,
    photo_from_pil,
)
from picinspector.io import _load

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def quadrants(width=96, height=64) -> np.ndarray:
    """uint8 RGB: red top-left, green top-right, blue bottom-left, white bottom-right."""
    img = np.zeros((height, width, 3), np.uint8)
    h2, w2 = height // 2, width // 2
    img[:h2, :w2], img[:h2, w2:], img[h2:, :w2], img[h2:, w2:] = RED, GREEN, BLUE, WHITE
    return img


def quadrant_means(rgb: np.ndarray) -> list[np.ndarray]:
    """Mean colour of the central half of each quadrant (away from chroma-subsampled edges)."""
    h, w = rgb.shape[:2]
    out = []
    for y0 in (0, h // 2):
        for x0 in (0, w // 2):
            qh, qw = h // 2, w // 2
            out.append(rgb[y0 + qh // 4: y0 + 3 * qh // 4, x0 + qw // 4: x0 + 3 * qw // 4].mean((0, 1)))
    return out


def check_photo_invariants(photo: Photo) -> None:
    assert photo.rgb.dtype == np.float32 and photo.detail.dtype == np.float32
    assert photo.rgb.ndim == 3 and photo.rgb.shape[2] == 3 and photo.detail.shape[2] == 3
    assert photo.rgb.flags.c_contiguous and photo.detail.flags.c_contiguous
    assert max(photo.rgb.shape[:2]) <= WORKING_LONG_SIDE
    assert 0.0 <= float(photo.rgb.min()) and float(photo.rgb.max()) <= 1.0
    assert 0.0 <= float(photo.detail.min()) and float(photo.detail.max()) <= 1.0


# ---------------------------------------------------------------------------------------------
# Formats
# ---------------------------------------------------------------------------------------------

FORMATS = [
    ("jpg", {"quality": 95}, "JPEG", 0.08),
    ("png", {}, "PNG", 0.0),
    ("webp", {"lossless": True}, "WEBP", 0.0),
    ("webp", {"quality": 90}, "WEBP", 0.1),
    ("tif", {}, "TIFF", 0.0),
    ("tif", {"compression": "tiff_lzw"}, "TIFF", 0.0),
    ("bmp", {}, "BMP", 0.0),
    ("gif", {}, "GIF", 0.0),
    ("ppm", {}, "PPM", 0.0),
    ("heic", {"quality": 90}, "HEIF", 0.1),
    ("avif", {"quality": 90}, "AVIF", 0.1),
]


@pytest.mark.parametrize("ext, kwargs, fmt, tol", FORMATS, ids=[f"{f[0]}-{i}" for i, f in enumerate(FORMATS)])
def test_format_round_trip(tmp_path, ext, kwargs, fmt, tol):
    path = tmp_path / f"quad.{ext}"
    Image.fromarray(quadrants()).save(path, **kwargs)
    photo = load_photo(path)
    check_photo_invariants(photo)
    assert (photo.width, photo.height) == (96, 64)
    assert photo.rgb.shape == (64, 96, 3)
    assert photo.format == fmt and photo.path == str(path)
    assert photo.rgb is photo.detail and photo.detail_scale == 1.0
    for got, want in zip(quadrant_means(photo.rgb), (RED, GREEN, BLUE, WHITE)):
        np.testing.assert_allclose(got, np.array(want) / 255.0, atol=tol + 1e-6)


def test_gif_first_frame(tmp_path):
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (32, 24), RED), Image.new("RGB", (32, 24), BLUE)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(path).n_frames == 2
    photo = load_photo(path)
    np.testing.assert_allclose(photo.rgb.mean((0, 1)), [1, 0, 0], atol=1e-6)


def test_cmyk_jpeg_is_converted(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (48, 32), (0, 255, 255, 0)).save(path, quality=95)  # no cyan, full M+Y: red
    photo = load_photo(path)
    assert photo.mode == "CMYK"
    np.testing.assert_allclose(photo.rgb.mean((0, 1)), [1, 0, 0], atol=0.05)


def _matrix_trc_profile(description: str, red_xyz, green_xyz, blue_xyz, gamma=2.2) -> bytes:
    """A minimal ICC v2 RGB display profile (matrix + gamma curves)."""
    def s15(v):
        return struct.pack(">i", int(round(v * 65536)))

    def xyz(v):
        return b"XYZ \0\0\0\0" + b"".join(s15(c) for c in v)

    text = description.encode("ascii") + b"\0"
    desc = (b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + struct.pack(">II", 0, 0)
            + struct.pack(">HB", 0, 0) + b"\0" * 67)
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, int(round(gamma * 256))) + b"\0\0"
    d50 = (0.9642, 1.0, 0.8249)
    tags = [(b"desc", desc), (b"wtpt", xyz(d50)), (b"rXYZ", xyz(red_xyz)), (b"gXYZ", xyz(green_xyz)),
            (b"bXYZ", xyz(blue_xyz)), (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, payload in tags:
        payload += b"\0" * (-len(payload) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(payload))
        data += payload
    size = offset + len(data)
    header = (struct.pack(">I", size) + b"lcms" + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + b"\0" * 12 + b"acsp" + b"\0" * 24 + struct.pack(">I", 0) + b"".join(s15(c) for c in d50)
              + b"\0" * 48)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def test_non_srgb_icc_profile_is_converted(tmp_path):
    # sRGB's D50-adapted primaries with red and green swapped: stored (255, 0, 0) *means* green.
    r, g, b = (0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141)
    icc = _matrix_trc_profile("Swapped test RGB", g, r, b)
    assert ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip()
    pixels = np.zeros((32, 64, 3), np.uint8)
    pixels[:, :32] = RED
    pixels[:, 32:] = 128  # neutral stays neutral: both profiles share the white point
    path = tmp_path / "swapped.png"
    Image.fromarray(pixels).save(path, icc_profile=icc)
    photo = load_photo(path)
    left, right = photo.rgb[:, :32].mean((0, 1)), photo.rgb[:, 32:].mean((0, 1))
    assert left[1] > 0.8 and left[0] < 0.2 and left[2] < 0.2, left
    assert np.ptp(right) < 0.03, right
    plain = tmp_path / "plain.png"
    Image.fromarray(pixels).save(plain)
    np.testing.assert_allclose(load_photo(plain).rgb[:, :32].mean((0, 1)), [1, 0, 0], atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Bit depth, alpha, palette, grayscale
# ---------------------------------------------------------------------------------------------

def _rgb16(seed=3, shape=(40, 56, 3)):
    arr = np.random.default_rng(seed).integers(0, 65536, size=shape, dtype=np.uint16)
    # 25707 = 100*257 + 7: not representable in 8 bits
    if arr.ndim == 3:
        arr[0, 0] = (40000, 25707, 65535)
    else:
        arr[0, :3] = (40000, 25707, 65535)
    return arr


def test_16bit_rgb_png_and_tiff_keep_full_precision(tmp_path):
    import tifffile

    arr = _rgb16()
    png, tif = tmp_path / "rgb16.png", tmp_path / "rgb16.tif"
    assert cv2.imwrite(str(png), np.ascontiguousarray(arr[:, :, ::-1]))
    tifffile.imwrite(tif, arr, photometric="rgb")
    for path in (png, tif):
        photo = load_photo(path)
        assert photo.bit_depth == 16 and photo.mode == "RGB;16"
        np.testing.assert_allclose(photo.detail, arr / 65535.0, atol=1e-6)
        np.testing.assert_allclose(photo.rgb[0, 0], [40000 / 65535, 25707 / 65535, 1.0], atol=1e-6)


def test_16bit_grayscale_png_and_tiff_not_clipped(tmp_path):
    import tifffile

    gray = _rgb16(shape=(40, 56))
    png, tif = tmp_path / "g16.png", tmp_path / "g16.tif"
    Image.fromarray(gray).save(png)
    tifffile.imwrite(tif, gray)
    for path in (png, tif):
        photo = load_photo(path)
        assert photo.bit_depth == 16 and photo.mode.startswith("I;16")
        for c in range(3):
            np.testing.assert_allclose(photo.detail[:, :, c], gray / 65535.0, atol=1e-6)


def test_16bit_rgba_png_alpha_over_white(tmp_path):
    arr = np.zeros((20, 24, 4), np.uint16)
    arr[..., 0] = 65535
    arr[:, :12, 3] = 65535
    arr[:, 12:, 3] = 0
    path = tmp_path / "rgba16.png"
    assert cv2.imwrite(str(path), arr[:, :, [2, 1, 0, 3]])
    photo = load_photo(path)
    assert photo.has_alpha and photo.bit_depth == 16
    np.testing.assert_allclose(photo.rgb[:, :12].mean((0, 1)), [1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(photo.rgb[:, 12:].mean((0, 1)), [1, 1, 1], atol=1e-6)


def test_palette_with_transparency_over_white(tmp_path):
    img = Image.new("P", (40, 20), 0)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.paste(1, (20, 0, 40, 20))
    for ext in ("png", "gif"):
        path = tmp_path / f"pal.{ext}"
        img.save(path, transparency=0)
        photo = load_photo(path)
        assert photo.has_alpha and photo.mode == "P"
        np.testing.assert_allclose(photo.rgb[:, :20].mean((0, 1)), [1, 1, 1], atol=1e-6)  # was red
        np.testing.assert_allclose(photo.rgb[:, 20:].mean((0, 1)), [0, 0, 1], atol=1e-6)


def test_palette_without_transparency(tmp_path):
    img = Image.fromarray(quadrants()).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    path = tmp_path / "pal.png"
    img.save(path)
    photo = load_photo(path)
    assert not photo.has_alpha and photo.mode == "P"
    np.testing.assert_allclose(quadrant_means(photo.rgb)[0], [1, 0, 0], atol=1e-6)


def test_rgba_and_la_composited_over_white(tmp_path):
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., 3] = 128  # black at ~half opacity over white -> 1 - 128/255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    la = np.zeros((20, 30, 2), np.uint8)
    la[..., 0], la[..., 1] = 255, 0  # fully transparent white-over-white
    la[:, :15, 0], la[:, :15, 1] = 0, 255  # opaque black
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    photo = load_photo(tmp_path / "a.png")
    assert photo.has_alpha and photo.mode == "RGBA"
    np.testing.assert_allclose(photo.rgb, 1 - 128 / 255, atol=1e-6)
    photo = load_photo(tmp_path / "la.png")
    assert photo.has_alpha and photo.mode == "LA"
    np.testing.assert_allclose(photo.rgb[:, :15], 0.0, atol=1e-6)
    np.testing.assert_allclose(photo.rgb[:, 15:], 1.0, atol=1e-6)


@pytest.mark.parametrize("mode", ["L", "1"])
def test_grayscale_replicated(tmp_path, mode):
    ramp = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (32, 1))
    img = Image.fromarray(ramp, "L")
    if mode == "1":
        img = img.point(lambda v: 255 if v >= 128 else 0).convert("1")
    path = tmp_path / f"gray_{mode}.png"
    img.save(path)
    photo = load_photo(path)
    assert photo.mode == mode
    np.testing.assert_array_equal(photo.rgb[..., 0], photo.rgb[..., 1])
    np.testing.assert_array_equal(photo.rgb[..., 0], photo.rgb[..., 2])
    expected = np.asarray(img.convert("L"), np.float32) / 255
    np.testing.assert_allclose(photo.rgb[..., 0], expected, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Orientation and EXIF
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow_exif_transpose(tmp_path, orientation):
    pixels = np.random.default_rng(orientation).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.png"
    Image.fromarray(pixels).save(path, exif=exif.tobytes())
    photo = load_photo(path)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    assert (photo.height, photo.width) == expected.shape[:2]
    np.testing.assert_array_equal(np.rint(photo.detail * 255).astype(np.uint8), expected)
    np.testing.assert_array_equal(apply_orientation(pixels, orientation), expected)


@pytest.mark.parametrize("orientation, corner", [(6, "top-right"), (8, "bottom-left"), (3, "bottom-right")])
def test_jpeg_orientation_rotates_marked_corner(tmp_path, orientation, corner):
    pixels = np.full((60, 100, 3), 255, np.uint8)
    pixels[:20, :20] = RED  # stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"corner{orientation}.jpg"
    Image.fromarray(pixels).save(path, exif=exif.tobytes(), quality=95)
    photo = load_photo(path)
    if orientation in (6, 8):
        assert (photo.width, photo.height) == (60, 100) and photo.rgb.shape[:2] == (100, 60)
    else:
        assert (photo.width, photo.height) == (100, 60)
    assert photo.exif["orientation"] == orientation
    h, w = photo.rgb.shape[:2]
    where = {"top-left": (slice(2, 18), slice(2, 18)), "top-right": (slice(2, 18), slice(w - 18, w - 2)),
             "bottom-left": (slice(h - 18, h - 2), slice(2, 18)),
             "bottom-right": (slice(h - 18, h - 2), slice(w - 18, w - 2))}
    for name, (ys, xs) in where.items():
        red = photo.rgb[ys, xs].mean((0, 1))
        if name == corner:
            assert red[0] > 0.9 and red[1] < 0.1, (name, red)
        else:
            assert red[1] > 0.9, (name, red)  # white


def _camera_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "  Canon\x00\x00"
    exif[0x0110] = "EOS R5 "
    exif[0x0112] = 1
    exif[0x0132] = "2020:01:02 03:04:05"
    sub = exif.get_ifd(0x8769)
    sub[0x8827] = 400
    sub[0x829A] = IFDRational(1, 250)
    sub[0x829D] = IFDRational(28, 10)
    sub[0x920A] = IFDRational(50, 1)
    sub[0x9003] = "2021:07:04 15:30:00"
    sub[0xA434] = "RF24-105mm F4 L IS USM"
    return exif


@pytest.mark.parametrize("ext", ["jpg", "png", "webp", "tif"])
def test_exif_fields_read_back(tmp_path, ext):
    path = tmp_path / f"exif.{ext}"
    Image.fromarray(quadrants()).save(path, exif=_camera_exif().tobytes())
    exif = load_photo(path).exif
    assert exif["make"] == "Canon" and exif["model"] == "EOS R5"
    assert exif["lens"] == "RF24-105mm F4 L IS USM"
    assert exif["iso"] == 400 and isinstance(exif["iso"], int)
    assert exif["exposure_time_s"] == pytest.approx(1 / 250)
    assert exif["f_number"] == pytest.approx(2.8)
    assert exif["focal_length_mm"] == pytest.approx(50.0)
    assert exif["datetime"] == "2021-07-04T15:30:00"  # DateTimeOriginal wins over DateTime
    assert exif["orientation"] == 1


def test_exif_datetime_keeps_sub_seconds_and_offset(tmp_path):
    """Burst frames share a second: SubSecTimeOriginal tells them apart (the cull groups on it)."""
    exif = Image.Exif()
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = "2024:05:01 10:00:07"
    sub[0x9291] = "25"  # SubSecTimeOriginal: .25 s
    sub[0x9011] = "+02:00"
    path = tmp_path / "burst.jpg"
    Image.fromarray(quadrants()).save(path, exif=exif.tobytes())
    assert load_photo(path).exif["datetime"] == "2024-05-01T10:00:07.25+02:00"
    sub[0x9291] = "1/4"  # not digits: the whole second is kept, the fraction left out
    Image.fromarray(quadrants()).save(path, exif=exif.tobytes())
    assert load_photo(path).exif["datetime"] == "2024-05-01T10:00:07+02:00"


def test_odd_exif_fields_are_skipped_not_fatal(tmp_path):
    exif = Image.Exif()
    exif[0x010F] = "\x00\x00"  # only padding
    exif[0x0112] = 99  # not an orientation
    exif[0x0132] = "2020:01:02 03:04:05"
    sub = exif.get_ifd(0x8769)
    sub[0x829A] = IFDRational(1, 0)  # division by zero
    sub[0x8827] = 0  # ISO 0 means unknown
    sub[0x9003] = "garbage"  # unparsable, so DateTime (IFD0) is used
    sub[0x9201] = IFDRational(8, 1)  # APEX shutter: 2^-8 s
    sub[0x9202] = IFDRational(3, 1)  # APEX aperture: f/2^1.5
    path = tmp_path / "odd.jpg"
    Image.fromarray(quadrants()).save(path, exif=exif.tobytes())
    photo = load_photo(path)
    assert photo.exif == {"exposure_time_s": pytest.approx(2 ** -8), "f_number": pytest.approx(2 ** 1.5),
                          "datetime": "2020-01-02T03:04:05"}
    assert (photo.width, photo.height) == (96, 64)  # bad orientation ignored


def test_normalise_exif_without_tags_is_empty():
    assert normalise_exif(Image.Exif()) == {}


# ---------------------------------------------------------------------------------------------
# Working resolution and JPEG reduction
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory):
    from skimage import data

    path = tmp_path_factory.mktemp("big") / "astronaut_12mp.jpg"
    Image.fromarray(cv2.resize(data.astronaut(), (4000, 3000), interpolation=cv2.INTER_LINEAR)).save(
        path, quality=90)
    return path


def test_large_jpeg_decodes_at_reduced_scale(big_jpeg):
    photo = load_photo(big_jpeg)
    check_photo_invariants(photo)
    assert (photo.width, photo.height) == (4000, 3000)
    assert photo.detail.shape == (750, 1000, 3) and photo.detail_scale == 0.25
    assert photo.rgb is photo.detail  # the DCT-reduced decode is the working image, not re-sampled
    assert photo.working_scale == pytest.approx(1000 / 4000)
    full = load_photo(big_jpeg, native_detail=True)
    assert full.detail.shape == (3000, 4000, 3) and full.detail_scale == 1.0
    assert full.rgb.shape == (768, 1024, 3)
    same_size = cv2.resize(full.rgb, (1000, 750), interpolation=cv2.INTER_AREA)
    assert float(np.abs(same_size - photo.rgb).mean()) < 0.01  # same picture either way
    assert photo.jpeg_quantization == full.jpeg_quantization


def _jpeg_variants(tmp_path):
    """JPEGs the OpenCV fast path takes: sizes for every DCT reduction, 4:2:0 / 4:4:4, progressive,
    greyscale, an sRGB profile, EXIF orientations that swap and mirror, and a two-frame MPO."""
    from skimage import data

    photo = data.astronaut()
    out = []
    for size, kwargs, orientation in [
        ((4000, 3000), {"quality": 90}, None),           # 1/4
        ((2048, 1536), {"quality": 85, "subsampling": 0}, 6),  # 1/2, 4:4:4, turned
        ((8000, 1200), {"quality": 80, "progressive": True}, 3),  # 1/8, progressive, odd size
        ((1201, 801), {"quality": 95}, 5),               # no reduction, transposed
        ((3001, 2001), {"quality": 90, "icc_profile": ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()}, 8),
    ]:
        img = Image.fromarray(cv2.resize(photo, size, interpolation=cv2.INTER_LINEAR))
        if orientation:
            exif = Image.Exif()
            exif[0x0112] = orientation
            kwargs = {**kwargs, "exif": exif}
        path = tmp_path / f"v{len(out)}.jpg"
        img.save(path, **kwargs)
        out.append(path)
    grey = tmp_path / "grey.jpg"
    Image.fromarray(cv2.resize(photo[..., 1], (2400, 1600))).save(grey, quality=90)
    mpo = tmp_path / "pair.mpo"  # two frames: the first is the photo
    first = Image.fromarray(cv2.resize(photo, (2048, 1536)))
    first.save(mpo, format="MPO", save_all=True, append_images=[first.transpose(Image.Transpose.ROTATE_180)])
    return out + [grey, mpo]


def test_opencv_jpeg_path_gives_pillows_pixels(tmp_path, monkeypatch):
    """The fast path (OpenCV's libjpeg-turbo from memory) must load exactly what the Pillow path
    loads: pixels, sizes, EXIF, quantisation tables; and it must be the path that ran."""
    paths = _jpeg_variants(tmp_path)
    fast = {}
    taken = []
    real = _load._opencv_jpeg

    def spy(*args, **kwargs):
        photo = real(*args, **kwargs)
        taken.append(photo is not None)
        return photo

    monkeypatch.setattr(_load, "_opencv_jpeg", spy)
    for path in paths:
        for native in (False, True):
            fast[path, native] = load_photo(path, native_detail=native)
    assert taken and all(taken)
    monkeypatch.setattr(_load, "_opencv_jpeg", lambda *a, **k: None)
    for (path, native), got in fast.items():
        want = load_photo(path, native_detail=native)
        assert (got.width, got.height, got.format, got.mode, got.bit_depth) == \
            (want.width, want.height, want.format, want.mode, want.bit_depth), path
        assert got.detail_scale == want.detail_scale and got.exif == want.exif, path
        assert got.jpeg_quantization == want.jpeg_quantization, path
        np.testing.assert_array_equal(got.detail, want.detail, err_msg=str(path))
        np.testing.assert_array_equal(got.rgb, want.rgb, err_msg=str(path))
        check_photo_invariants(got)


def test_opencv_jpeg_path_leaves_truncated_and_non_srgb_files_to_pillow(tmp_path, big_jpeg):
    data = big_jpeg.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) * 3 // 4])
    img = Image.open(cut)
    assert _load._opencv_jpeg(img, cut.read_bytes, 2, str(cut)) is None  # no end-of-image marker
    with pytest.raises(CorruptImage, match="cut.jpg|truncated"):
        load_photo(cut)
    wide = tmp_path / "wide.jpg"
    profile = _matrix_trc_profile("Wide test", (0.7, 0.28, 0.0), (0.15, 0.7, 0.05), (0.15, 0.02, 0.8))
    Image.open(big_jpeg).save(wide, quality=90, icc_profile=profile)
    assert _load._opencv_jpeg(Image.open(wide), wide.read_bytes, 2, str(wide)) is None


def test_draft_shift_rule():
    assert _load._draft_shift(4000, 3000) == 2  # 1000 >= 921.6
    assert _load._draft_shift(3000, 4000) == 2
    assert _load._draft_shift(2048, 1536) == 1
    assert _load._draft_shift(1900, 1200) == 1  # 950
    assert _load._draft_shift(1800, 1200) == 0  # 900 < 921.6
    assert _load._draft_shift(8000, 6000) == 3
    assert _load._draft_shift(20000, 15000) == 3  # k <= 3


def test_detail_shared_when_already_working_size(tmp_path):
    path = tmp_path / "2k.jpg"
    Image.fromarray(cv2.resize(quadrants(), (2048, 1536), interpolation=cv2.INTER_NEAREST)).save(path)
    photo = load_photo(path)
    assert photo.detail_scale == 0.5 and photo.rgb.shape == (768, 1024, 3)
    assert photo.rgb is photo.detail


def test_non_jpeg_keeps_native_detail_and_small_is_not_enlarged(tmp_path):
    big, small = tmp_path / "big.png", tmp_path / "small.png"
    Image.fromarray(cv2.resize(quadrants(), (1500, 1000), interpolation=cv2.INTER_NEAREST)).save(big)
    Image.fromarray(quadrants(300, 200)).save(small)
    photo = load_photo(big)
    assert photo.detail.shape == (1000, 1500, 3) and photo.detail_scale == 1.0
    assert photo.rgb.shape == (683, 1024, 3)
    for got, want in zip(quadrant_means(photo.rgb), (RED, GREEN, BLUE, WHITE)):
        np.testing.assert_allclose(got, np.array(want) / 255, atol=1e-5)
    photo = load_photo(small)
    assert photo.rgb.shape == (200, 300, 3) and photo.rgb is photo.detail


def test_jpeg_quantization_tables_in_natural_order(tmp_path):
    path = tmp_path / "q50.jpg"
    Image.fromarray(quadrants()).save(path, quality=50)
    tables = load_photo(path).jpeg_quantization
    assert set(tables) == {0, 1} and all(len(t) == 64 for t in tables.values())
    # ITU-T T.81 Annex K, Table K.1 (luminance) at quality 50, first row in natural order.
    assert tables[0][:8] == [16, 11, 10, 16, 24, 40, 51, 61]
    assert tables[0][8:16] == [12, 12, 14, 19, 26, 58, 60, 55]
    assert load_photo(tmp_path / "q50.jpg").jpeg_quantization is not None
    png = tmp_path / "q.png"
    Image.fromarray(quadrants()).save(png)
    assert load_photo(png).jpeg_quantization is None


# ---------------------------------------------------------------------------------------------
# Bad input: every kind gives its typed error naming the file
# ---------------------------------------------------------------------------------------------

def _expect(error, path, **kwargs):
    with pytest.raises(error) as info:
        load_photo(path, **kwargs)
    assert info.value.path == str(path)
    assert os.path.basename(str(path)) in str(info.value)
    return info.value


def test_missing_file(tmp_path):
    _expect(FileNotFound, tmp_path / "nope.jpg")
    _expect(FileNotFound, tmp_path / "not_a_dir" / "x.jpg")


def test_directory_and_fifo_are_unreadable(tmp_path):
    folder = tmp_path / "folder.jpg"
    folder.mkdir()
    _expect(UnreadableFile, folder)
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "pipe.png"
        os.mkfifo(fifo)
        _expect(UnreadableFile, fifo)  # refused without blocking on open


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read anything")
def test_permission_denied(tmp_path):
    path = tmp_path / "locked.png"
    Image.fromarray(quadrants()).save(path)
    path.chmod(0)
    try:
        _expect(UnreadableFile, path)
    finally:
        path.chmod(0o644)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    _expect(EmptyFile, path)


def test_text_and_random_bytes_are_not_images(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a picture\n" * 20)
    _expect(NotAnImage, text)
    noise = tmp_path / "noise.png"
    noise.write_bytes(b"\x13\x37" + np.random.default_rng(7).bytes(4000))
    _expect(NotAnImage, noise)


@pytest.mark.parametrize("ext", ["jpg", "png", "webp"])
def test_truncated_files_are_corrupt(tmp_path, ext):
    pixels = np.random.default_rng(11).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    whole = tmp_path / f"whole.{ext}"
    Image.fromarray(pixels).save(whole)
    data = whole.read_bytes()
    half = tmp_path / f"half.{ext}"
    half.write_bytes(data[: len(data) // 2])
    _expect(CorruptImage, half)
    header_only = tmp_path / f"head.{ext}"
    header_only.write_bytes(data[:24])
    _expect(CorruptImage, header_only)


def test_recognised_but_unsupported_format(tmp_path):
    path = tmp_path / "photo.jxl"
    path.write_bytes(b"\xff\x0a" + bytes(200))
    _expect(UnsupportedFormat, path)


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind, payload):
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_decompression_bomb_refused_before_decoding(tmp_path):
    small = tmp_path / "small.png"
    Image.fromarray(quadrants()).save(small)
    err = _expect(DecompressionBomb, small, max_pixels=1000)
    assert "96x64" in str(err) and "1,000" in str(err)
    # 12000 x 12000 header with no pixel data: refused from the header (else: corrupt).
    fake = tmp_path / "bomb.png"
    fake.write_bytes(_png_header_only(12000, 12000))
    _expect(DecompressionBomb, fake, max_pixels=100_000_000)
    assert MAX_PIXELS == 200_000_000


def test_pillow_bomb_limit_becomes_typed_and_warning_is_silenced(tmp_path, monkeypatch):
    path = tmp_path / "p.png"
    Image.fromarray(quadrants()).save(path)  # 6144 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4000)  # Pillow warns above 4000
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        assert load_photo(path).width == 96
    # Our limit is the one that applies: a lower process-wide Pillow limit is raised to it...
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow would raise above 2000
    assert load_photo(path).width == 96
    # ...and max_pixels refuses with our message, naming the size.
    err = _expect(DecompressionBomb, path, max_pixels=5000)
    assert "96x64 = 6,144 pixels, over the limit of 5,000" in str(err)


def test_too_small_image(tmp_path):
    path = tmp_path / "tiny.png"
    Image.new("RGB", (8, 8), RED).save(path)
    err = _expect(AnalysisError, path)
    assert "8x8" in str(err) and "16x16" in str(err)
    Image.new("RGB", (16, 16), RED).save(path)
    assert load_photo(path).rgb.shape == (16, 16, 3)


def test_errors_are_load_errors_with_kinds(tmp_path):
    path = tmp_path / "x.gif"
    path.write_bytes(b"GIF89a" + bytes(10))
    err = _expect(CorruptImage, path)
    assert isinstance(err, LoadError) and err.to_dict()["kind"] == "corrupt"


# ---------------------------------------------------------------------------------------------
# In-memory sources
# ---------------------------------------------------------------------------------------------

def test_arrays_of_every_dtype():
    rgb8 = quadrants()
    expected = rgb8 / 255.0
    for arr, depth in ((rgb8, 8), (rgb8.astype(np.uint16) * 257, 16), (expected.astype(np.float64), 32),
                       (expected.astype(np.float32), 32)):
        photo = load_photo(arr)
        check_photo_invariants(photo)
        assert photo.format == "ARRAY" and photo.bit_depth == depth and photo.exif == {}
        np.testing.assert_allclose(photo.rgb, expected, atol=1e-6)
    gray = load_photo(rgb8[..., 1])
    np.testing.assert_allclose(gray.rgb[..., 2], rgb8[..., 1] / 255.0, atol=1e-6)
    rgba = np.dstack([rgb8, np.zeros(rgb8.shape[:2], np.uint8)])
    photo = load_photo(rgba)
    assert photo.has_alpha
    np.testing.assert_allclose(photo.rgb, 1.0)


def test_array_is_copied_not_aliased():
    arr = quadrants().astype(np.float32) / 255
    photo = photo_from_array(arr)
    arr[:] = 0.5
    np.testing.assert_allclose(quadrant_means(photo.rgb)[0], [1, 0, 0])


def test_large_array_is_reduced():
    arr = cv2.resize(quadrants(), (2000, 1000), interpolation=cv2.INTER_NEAREST)
    photo = load_photo(arr)
    assert photo.rgb.shape == (512, 1024, 3) and photo.detail.shape == (1000, 2000, 3)
    assert (photo.width, photo.height) == (2000, 1000)


@pytest.mark.parametrize("bad, why", [
    (np.full((32, 32, 3), np.nan, np.float32), "NaN"),
    (np.full((32, 32, 3), 2.0, np.float32), "[0, 1]"),
    (np.full((32, 32, 3), -0.1, np.float64), "[0, 1]"),
    (np.zeros((32, 32, 3), np.int32), "dtype"),
    (np.zeros((32, 32, 2), np.uint8), "shape"),
    (np.zeros((2, 32, 32, 3), np.uint8), "shape"),
])
def test_bad_arrays(bad, why):
    with pytest.raises(InvalidPixels, match=re.escape(why)) as info:
        load_photo(bad)
    assert isinstance(info.value, ValueError)


def test_tiny_array_and_wrong_source_type():
    with pytest.raises(AnalysisError, match="4x4"):
        load_photo(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(TypeError):
        load_photo(12345)
    with pytest.raises(ValueError):
        load_photo(quadrants(), max_pixels=0)


def test_pil_images_in_memory_and_lazy(tmp_path):
    photo = load_photo(Image.new("RGB", (40, 30), (10, 20, 30)))
    assert photo.format == "ARRAY" and (photo.width, photo.height) == (40, 30)
    np.testing.assert_allclose(photo.rgb[0, 0], np.array([10, 20, 30]) / 255, atol=1e-6)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "lazy.png"
    Image.fromarray(quadrants()).save(path, exif=exif.tobytes())
    with Image.open(path) as img:
        photo = photo_from_pil(img, path=path)
    assert (photo.width, photo.height) == (64, 96) and photo.format == "PNG" and photo.path == str(path)
    data = path.read_bytes()
    broken = tmp_path / "broken.png"
    broken.write_bytes(data[: len(data) // 2])
    with Image.open(broken) as img, pytest.raises(CorruptImage):
        photo_from_pil(img, path=broken)


# ---------------------------------------------------------------------------------------------
# Camera RAW (a minimal DNG that LibRaw accepts)
# ---------------------------------------------------------------------------------------------

def write_dng(path, width=96, height=64, orientation=1):
    """A minimal uncompressed Bayer (RGGB) DNG of a flat orange-red scene; camera RGB = linear sRGB."""
    import tifffile

    cfa = np.empty((height, width), np.uint16)
    cfa[0::2, 0::2], cfa[0::2, 1::2], cfa[1::2, 0::2], cfa[1::2, 1::2] = 3000, 1000, 1000, 500
    xyz_to_srgb = [3.2406, -1.5372, -0.4986, -0.9689, 1.8758, 0.0415, 0.0557, -0.2040, 1.0570]
    color_matrix = []
    for v in xyz_to_srgb:
        color_matrix += [int(round(v * 10000)), 10000]
    tags = [
        (33421, "H", 2, (2, 2), False),  # CFARepeatPatternDim
        (33422, "B", 4, (0, 1, 1, 2), False),  # CFAPattern RGGB
        (50706, "B", 4, (1, 4, 0, 0), False),  # DNGVersion
        (50707, "B", 4, (1, 1, 0, 0), False),  # DNGBackwardVersion
        (50708, "s", 0, "PicInspector Test Cam", False),  # UniqueCameraModel
        (50721, "2i", 9, tuple(color_matrix), False),  # ColorMatrix1 (XYZ -> camera)
        (50778, "H", 1, 21, False),  # CalibrationIlluminant1 = D65
        (50728, "2I", 3, (1, 1, 1, 1, 1, 1), False),  # AsShotNeutral
        (50717, "I", 1, 4095, False),  # WhiteLevel: 12-bit
        (271, "s", 0, "TestMake", False),
        (272, "s", 0, "TestModel", False),
        (274, "H", 1, orientation, False),
    ]
    tifffile.imwrite(path, cfa, photometric=32803, extratags=tags, subfiletype=0)


def test_raw_dng_loads_with_orientation_and_exif(tmp_path):
    pytest.importorskip("rawpy")
    path = tmp_path / "shot.dng"
    write_dng(path, orientation=6)
    photo = load_photo(path)
    check_photo_invariants(photo)
    assert photo.format == "RAW" and photo.bit_depth == 12
    assert (photo.width, photo.height) == (64, 96) and photo.rgb.shape == (96, 64, 3)
    assert photo.exif["make"] == "TestMake" and photo.exif["model"] == "TestModel"
    r, g, b = photo.rgb[8:-8, 8:-8].mean((0, 1))
    assert r > g > b and r > 0.8  # orange-red scene


def test_raw_half_size_when_it_covers_the_working_size(tmp_path):
    pytest.importorskip("rawpy")
    path = tmp_path / "big.dng"
    write_dng(path, width=2400, height=1600)
    photo = load_photo(path)
    assert (photo.width, photo.height) == (2400, 1600)
    assert photo.detail.shape == (800, 1200, 3) and photo.detail_scale == 0.5
    assert photo.rgb.shape == (683, 1024, 3)
    _expect(DecompressionBomb, path, max_pixels=1_000_000)


def test_fake_and_damaged_raw_files(tmp_path):
    pytest.importorskip("rawpy")
    fake = tmp_path / "fake.dng"
    fake.write_text("hello, I am not a raw file")
    _expect(NotAnImage, fake)
    garbage = tmp_path / "garbage.nef"
    garbage.write_bytes(b"II*\x00" + np.random.default_rng(5).bytes(5000))
    with pytest.raises((UnsupportedFormat, CorruptImage)) as info:
        load_photo(garbage)
    assert info.value.path == str(garbage)


def test_raw_without_rawpy_says_how_to_install(tmp_path, monkeypatch):
    path = tmp_path / "shot.dng"
    write_dng(path)
    monkeypatch.setitem(sys.modules, "rawpy", None)  # makes `import rawpy` raise ImportError
    err = _expect(UnsupportedFormat, path)
    assert 'pip install "picinspector[raw]"' in str(err)


def test_supported_extensions():
    assert isinstance(SUPPORTED_EXTENSIONS, frozenset)
    assert all(e.startswith(".") and e == e.lower() for e in SUPPORTED_EXTENSIONS)
    for ext in (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".heic", ".heif",
                ".avif", ".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2"):
        assert ext in SUPPORTED_EXTENSIONS
