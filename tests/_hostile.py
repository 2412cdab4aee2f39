"""Files made to break a loader, for the reliability tests and `bench/reliability.py`.

- `write_seeds`: one small valid file per format and pixel layout the loader reads.
- `mutate`: a damaged copy of a file (bit flips, extreme bytes, truncation, repeated or inserted
  blocks, integers in the header set to huge values), deterministic for a given generator.
- `write_png` / `write_tiff`: large images streamed to disk row by row (never held in memory), and
  `png_with_idat_length`: a small PNG whose header claims a huge image data chunk.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image


def _photo(width: int = 96, height: int = 72, seed: int = 0) -> np.ndarray:
    """uint8 RGB with gradients, edges and noise: something every measure has to work on."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1),
                    ((x // 8 + y // 8) % 2) * 200 + 20], axis=-1).astype(np.int16)
    img += rng.integers(-12, 13, img.shape, dtype=np.int16)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_seeds(folder: Path) -> list[Path]:
    """Small valid images of every format and layout the loader handles; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = _photo()
    img = Image.fromarray(rgb)
    out: list[Path] = []

    def save(name: str, image: Image.Image, **options) -> None:
        path = folder / name
        image.save(path, **options)
        out.append(path)

    save("seed.jpg", img, quality=85)
    save("seed_progressive.jpg", img, quality=60, progressive=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation
    save("seed_exif.jpg", img, quality=90, exif=exif.tobytes())
    save("seed.png", img)
    save("seed_rgba.png", img.convert("RGBA"))
    save("seed_palette.png", img.convert("P", palette=Image.Palette.ADAPTIVE))
    save("seed_gray.png", img.convert("L"))
    save("seed16.png", Image.fromarray((rgb[:, :, 0].astype(np.uint16) * 257)))
    wide = (rgb.astype(np.uint16) * 257)
    path = folder / "seed16_rgb.png"
    path.write_bytes(png_bytes(wide))
    out.append(path)
    save("seed.webp", img, quality=80)
    save("seed.tif", img, compression="tiff_deflate")
    save("seed_lzw.tif", img, compression="tiff_lzw")
    save("seed.gif", img.convert("P", palette=Image.Palette.ADAPTIVE))
    save("seed.bmp", img)
    save("seed.ppm", img)
    try:
        import tifffile

        path = folder / "seed_float.tif"
        tifffile.imwrite(path, rgb.astype(np.float32) / 255)
        out.append(path)
        path = folder / "seed16_rgb.tif"
        tifffile.imwrite(path, wide)
        out.append(path)
    except ImportError:  # pragma: no cover - tifffile is a dev dependency
        pass
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
        save("seed.heic", img, quality=60)
    except (ImportError, OSError, KeyError):  # pragma: no cover - no HEIF encoder
        pass
    try:
        save("seed.avif", img, quality=60)
    except (OSError, KeyError, ValueError):  # pragma: no cover - Pillow without AVIF
        pass
    return out


_EXTREMES = (b"\x00", b"\xff", b"\x7f", b"\x80")
_HUGE = (b"\x7f\xff\xff\xff", b"\xff\xff\xff\xff", b"\x00\x01\x00\x00", b"\x40\x00\x00\x00")


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """A damaged copy of ``data``: one to three of the mutations below, chosen by ``rng``."""
    buf = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        kind = int(rng.integers(0, 7))
        n = len(buf)
        if n < 16:
            break
        if kind == 0:  # flip a few bits anywhere
            for _ in range(int(rng.integers(1, 9))):
                i = int(rng.integers(0, n))
                buf[i] ^= 1 << int(rng.integers(0, 8))
        elif kind == 1:  # extreme bytes in the header
            for _ in range(int(rng.integers(1, 5))):
                i = int(rng.integers(0, min(n, 256)))
                buf[i:i + 1] = _EXTREMES[int(rng.integers(0, len(_EXTREMES)))]
        elif kind == 2:  # a huge 32-bit integer in the header (sizes, lengths, offsets)
            i = int(rng.integers(0, max(1, min(n, 512) - 4)))
            buf[i:i + 4] = _HUGE[int(rng.integers(0, len(_HUGE)))]
        elif kind == 3:  # truncate
            del buf[int(rng.integers(n // 8, n)):]
        elif kind == 4:  # repeat a block
            i = int(rng.integers(0, n))
            j = min(n, i + int(rng.integers(1, 512)))
            buf[i:i] = buf[i:j] * int(rng.integers(1, 4))
        elif kind == 5:  # insert random bytes
            i = int(rng.integers(0, n))
            buf[i:i] = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
        else:  # zero a run
            i = int(rng.integers(0, n))
            buf[i:i + int(rng.integers(1, 256))] = bytes(min(n - i, int(rng.integers(1, 256))))
    return bytes(buf)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_bytes(pixels: np.ndarray) -> bytes:
    """A PNG of ``pixels`` (uint8 or uint16; 2-D gray or RGB/RGBA), written by hand (Pillow does not
    write 16-bit colour)."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    height, width, channels = pixels.shape
    depth = 16 if pixels.dtype == np.uint16 else 8
    colour = {1: 0, 3: 2, 4: 6}[channels]
    data = pixels.astype(">u2" if depth == 16 else np.uint8).reshape(height, -1).view(np.uint8)
    raw = b"".join(b"\x00" + row.tobytes() for row in data)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b""))


def _pattern(width: int, y0: int, y1: int, channels: int, top: int) -> np.ndarray:
    """Rows ``y0:y1`` of a gradient with a checker (edges and tones for the measures), quantised so
    that it compresses well: (rows, width, channels) int64 in 0..top. Only two distinct rows exist,
    so a block is two rows repeated (fast for images of hundreds of megapixels)."""
    period = max(8, width // 64)
    x = np.arange(width)
    rows = []
    for phase in (0, 1):
        base = ((x // period + phase) % 2) * (top // 2) + ((x * 16) // max(1, width)) * (top // 40)
        rows.append(np.repeat(np.clip(base, 0, top)[:, None], channels, axis=1))
    return np.stack(rows)[(np.arange(y0, y1) // period) % 2]


def write_png(path: Path, width: int, height: int, *, depth: int = 8, channels: int = 3,
              level: int = 1) -> Path:
    """A large PNG streamed to disk, a block of rows at a time (never the whole image in memory)."""
    colour = {1: 0, 3: 2, 4: 6}[channels]
    dtype = ">u2" if depth == 16 else np.uint8
    top = 65535 if depth == 16 else 255
    compressor = zlib.compressobj(level)
    step = max(1, (4 << 20) // max(1, width * channels))
    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n")
        fh.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)))
        for y0 in range(0, height, step):
            block = _pattern(width, y0, min(height, y0 + step), channels, top).astype(dtype)
            rows = block.reshape(block.shape[0], -1).view(np.uint8)
            raw = np.concatenate([np.zeros((rows.shape[0], 1), np.uint8), rows], axis=1).tobytes()
            data = compressor.compress(raw)
            if data:
                fh.write(_chunk(b"IDAT", data))
        fh.write(_chunk(b"IDAT", compressor.flush()))
        fh.write(_chunk(b"IEND", b""))
    return path


def png_with_idat_length(width: int, height: int, *, depth: int = 16, length: int = 0x7FFF0000) -> bytes:
    """A valid PNG header (RGB, ``depth`` bits) followed by an IDAT chunk that claims ``length``
    bytes and holds a few: what made a decoder allocate gigabytes for a 25-KB file."""
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, 2, 0, 0, 0))
    body = zlib.compress(bytes(width * 6 + 1) * 4)
    return b"\x89PNG\r\n\x1a\n" + ihdr + struct.pack(">I", length) + b"IDAT" + body + bytes(24000)


def png_header(width: int, height: int, *, depth: int = 8, colour: int = 2) -> bytes:
    """A PNG that is a header only (no image data): enough for a size check."""
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _chunk(b"IEND", b""))


def write_tiff(path: Path, width: int, height: int, *, rows_per_strip: int = 64) -> Path:
    """A large deflate-compressed 8-bit RGB TIFF (baseline strips) streamed to disk by hand."""
    strips: list[tuple[int, int]] = []
    with open(path, "wb") as fh:
        fh.write(b"II*\x00" + struct.pack("<I", 0))  # IFD offset patched below
        for y0 in range(0, height, rows_per_strip):
            block = _pattern(width, y0, min(height, y0 + rows_per_strip), 3, 255).astype(np.uint8)
            data = zlib.compress(block.tobytes(), 1)
            strips.append((fh.tell(), len(data)))
            fh.write(data)
        offsets_at = fh.tell()
        fh.write(struct.pack(f"<{len(strips)}I", *[o for o, _ in strips]))
        counts_at = fh.tell()
        fh.write(struct.pack(f"<{len(strips)}I", *[c for _, c in strips]))
        bits_at = fh.tell()
        fh.write(struct.pack("<3H", 8, 8, 8))
        entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 3, bits_at), (259, 3, 1, 8), (262, 3, 1, 2),
                   (273, 4, len(strips), offsets_at), (277, 3, 1, 3), (278, 4, 1, rows_per_strip),
                   (279, 4, len(strips), counts_at), (284, 3, 1, 1)]
        ifd = fh.tell()
        fh.write(struct.pack("<H", len(entries)))
        for tag, kind, count, value in entries:
            if kind == 3 and count == 1:
                fh.write(struct.pack("<HHIHH", tag, kind, count, value, 0))
            else:
                fh.write(struct.pack("<HHII", tag, kind, count, value))
        fh.write(struct.pack("<I", 0))
        fh.seek(4)
        fh.write(struct.pack("<I", ifd))
    return path


def tiff_header(width: int, height: int) -> bytes:
    """A TIFF that is a header only, claiming ``width x height`` 8-bit RGB in one strip."""
    entries = [(256, 4, 1, width), (257, 4, 1, height), (259, 3, 1, 1), (262, 3, 1, 2), (273, 4, 1, 8),
               (277, 3, 1, 3), (278, 4, 1, height), (279, 4, 1, 16)]
    out = bytearray(b"II*\x00" + struct.pack("<I", 24) + bytes(16))
    out += struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        out += struct.pack("<HHIHH", tag, kind, count, value, 0) if kind == 3 else struct.pack("<HHII", tag, kind, count, value)
    return bytes(out + struct.pack("<I", 0))


def gif_bytes(width: int, height: int) -> bytes:
    """A tiny GIF whose logical screen and only frame are ``width x height`` of one colour."""
    buf = io.BytesIO()
    Image.new("P", (16, 16), 3).save(buf, "GIF")
    data = bytearray(buf.getvalue())
    data[6:10] = struct.pack("<HH", width, height)
    frame = data.index(b"\x2c")  # image descriptor
    data[frame + 5:frame + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF0) claims ``width x height``; the data after it is short."""
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(buf, "JPEG", quality=80)
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)
