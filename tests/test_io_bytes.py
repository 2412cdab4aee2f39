"""`picinspector.io.load_photo_bytes` and `read_file_bytes`: the same Photo, and the same typed errors, as
`load_photo` on the file (what Ray workers and any reader of object storage rely on)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from picinspector.io import load_photo, load_photo_bytes, read_file_bytes


def _save(pixels: np.ndarray, path: Path, long_side: int = 256) -> str:
    im = Image.fromarray(pixels)
    scale = long_side / max(im.size)
    im = im.resize((max(16, round(im.width * scale)), max(16, round(im.height * scale))), Image.Resampling.LANCZOS)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, **({"quality": 88} if path.suffix == ".jpg" else {}))
    return str(path)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, list[str]]:
    from skimage import data

    folder = tmp_path_factory.mktemp("bytes")
    rng = np.random.default_rng(0)
    wide = (rng.random((64, 80, 3)) * 65535).astype(np.uint16)
    good = [_save(data.astronaut(), folder / "a.jpg"), _save(data.coffee(), folder / "b.png"),
            _save(data.camera(), folder / "c.png")]
    import cv2

    cv2.imwrite(str(folder / "d16.png"), wide)  # 16-bit colour: the OpenCV path of the loader
    good.append(str(folder / "d16.png"))
    jpeg = Path(good[0]).read_bytes()
    (folder / "f_truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    (folder / "g_text.jpg").write_text("not a photo at all\n")
    (folder / "h_empty.png").write_bytes(b"")
    bad = [str(folder / n) for n in ("f_truncated.jpg", "g_text.jpg", "h_empty.png")]
    return {"folder": [str(folder)], "good": good, "bad": bad, "missing": [str(folder / "nope.jpg")]}


def test_bytes_loader_gives_the_path_loaders_photo(photos):
    for path in photos["good"]:
        a = load_photo(path)
        b = load_photo_bytes(read_file_bytes(path), path=path)
        assert (a.width, a.height, a.format, a.path, a.exif, a.bit_depth) == (b.width, b.height, b.format, b.path,
                                                                             b.exif, b.bit_depth)
        assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.detail, b.detail)
    assert load_photo_bytes(read_file_bytes(photos["good"][3])).bit_depth == 16  # the 16-bit (OpenCV) path ran


def test_bytes_loader_gives_the_path_loaders_errors(photos):
    for path in photos["bad"] + photos["missing"] + photos["folder"]:
        with pytest.raises(Exception) as by_path:
            load_photo(path)
        with pytest.raises(Exception) as by_bytes:
            load_photo_bytes(read_file_bytes(path), path=path)
        assert (type(by_bytes.value), str(by_bytes.value)) == (type(by_path.value), str(by_path.value)), path
    with pytest.raises(TypeError):
        load_photo_bytes("a.jpg")
