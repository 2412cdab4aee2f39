"""Visual signatures for finding near-duplicates: a perceptual hash with a colour layout, or an
engine's embedding.

A signature is a small vector per photo whose distance to another photo's says how alike the two
look. Two kinds exist (`SIGNATURE_KINDS`):

- ``phash``, computed here from a reduced decode of the photo (NumPy + OpenCV, no model): the 64-bit
  DCT perceptual hash (structure) and a 6 x 6 CIELAB colour layout (colour, and a coarse structure
  that small shifts and crops barely move). Its distance is the share of hash bits that differ plus
  a quarter of the colour layouts' distance (`phash_distances`): about 0 for copies, 0.1-0.4 for
  crops, shifts and exposure steps of one frame, 0.5 and more for different scenes.
- ``embedding``, the unit-norm photo embedding of an engine that has one (``Inspector.embed``, e.g.
  the effnet engine); its distance is the cosine distance ``1 - cos`` (0-2).
"""

from __future__ import annotations

import base64
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

__all__ = ["SIGNATURE_KINDS", "SignatureKind", "Signatures", "colour_layout", "compute_signatures", "phash",
           "phash_distances", "phash_signature", "photo_signature"]

#: Side of the grey image the hash's DCT runs on, and of the low-frequency block it keeps.
HASH_SIDE, HASH_BLOCK = 32, 8
HASH_BYTES = HASH_BLOCK * HASH_BLOCK // 8
#: Side of the CIELAB colour layout, and its weight in the ``phash`` distance.
LAYOUT_SIDE, LAYOUT_WEIGHT = 6, 0.25
LAYOUT_BYTES = LAYOUT_SIDE * LAYOUT_SIDE * 3


@dataclass(frozen=True)
class SignatureKind:
    """One kind of signature: its unit and default thresholds (see docs/cull.md, "Grouping")."""

    name: str
    unit: str
    #: At or below this distance two photos are near-duplicates, whenever they were taken.
    near: float
    #: At or below this distance two photos of one burst (taken in one run of frames, each within
    #: ``burst_gap`` seconds of the previous) belong together: looser, as the subject moves.
    burst: float
    #: The unit of a frame's distance from the rest of its group when frames are ranked (typicality):
    #: fixed per kind, so that ``--near`` and ``--burst`` change the groups, not the ranking in them.
    spread: float


#: Kinds by name. Thresholds were set on the grouping benchmark (bench/cull_groups.py, docs/cull.md).
SIGNATURE_KINDS: dict[str, SignatureKind] = {
    "phash": SignatureKind("phash", "hash bits share + colour layout / 4", near=0.45, burst=0.60, spread=0.45),
    "embedding": SignatureKind("embedding", "cosine distance", near=0.19, burst=0.30, spread=0.15),
}


def phash(gray: np.ndarray) -> np.ndarray:
    """The 64-bit DCT perceptual hash of a grey image, as 8 packed bytes.

    Parameters
    ----------
    gray : ndarray, (H, W)
        Any range and dtype; at least 8 x 8 pixels.

    Returns
    -------
    ndarray of uint8, (8,)
        Bit ``i`` (row-major over the 8 x 8 lowest frequencies) is set where that DCT coefficient is
        above the block's median (the DC term takes part, as in pHash's ``ph_dct_imagehash``, so the
        hash is unchanged by a uniform brightness shift only through the median).

    Notes
    -----
    The image is reduced to 32 x 32 by area averaging, the 2-D DCT-II taken, and the 8 x 8 block of
    lowest frequencies compared with its median. Exposure steps, blur, noise, re-compression and
    resizing leave the low frequencies nearly as they are; a different scene changes about half the
    bits. Distances are Hamming distances (`Signatures.distances`).

    References
    ----------
    C. Zauner, "Implementation and Benchmarking of Perceptual Image Hash Functions", Master's thesis,
    Upper Austria University of Applied Sciences, Hagenberg, 2010 (the pHash library's DCT hash).
    """
    import cv2

    gray = np.asarray(gray, dtype=np.float32)
    if gray.ndim != 2 or min(gray.shape) < HASH_BLOCK:
        raise ValueError(f"phash needs a 2-D image of at least {HASH_BLOCK} x {HASH_BLOCK} pixels, got {gray.shape}")
    small = cv2.resize(gray, (HASH_SIDE, HASH_SIDE), interpolation=cv2.INTER_AREA)
    block = cv2.dct(small)[:HASH_BLOCK, :HASH_BLOCK].ravel()
    return np.packbits(block > np.median(block))


def colour_layout(rgb: np.ndarray) -> np.ndarray:
    """A 6 x 6 CIELAB colour layout of an sRGB image, as 108 bytes (L* x 2.55, a* + 128, b* + 128).

    Parameters
    ----------
    rgb : ndarray, (H, W, 3)
        sRGB in [0, 1] (float) or 0-255 (uint8).

    Notes
    -----
    The image is reduced by area averaging to 6 x 6 and converted to CIELAB (D65). At that size a
    shift or crop of a few percent moves less than a cell, and exposure changes move L* mostly as a
    whole (the distance z-scores L*, `phash_distances`), while two scenes differ in where their
    colours are. It is the idea of MPEG-7's Colour Layout descriptor, without its DCT.

    References
    ----------
    B. S. Manjunath, J.-R. Ohm, V. V. Vasudevan and A. Yamada, "Color and texture descriptors", IEEE
    Transactions on Circuits and Systems for Video Technology 11(6):703-715, 2001,
    doi:10.1109/76.927424.
    """
    import cv2

    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < LAYOUT_SIDE:
        raise ValueError(f"a colour layout needs an (H, W, 3) image of at least {LAYOUT_SIDE} px, got {rgb.shape}")
    rgb = rgb.astype(np.float32) / (255.0 if rgb.dtype == np.uint8 or rgb.max() > 1.5 else 1.0)
    small = cv2.resize(np.clip(rgb, 0, 1), (LAYOUT_SIDE, LAYOUT_SIDE), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2Lab)
    lab[..., 0] *= 2.55
    lab[..., 1:] += 128.0
    return np.clip(np.rint(lab), 0, 255).astype(np.uint8).ravel()


def _small_rgb(path: str) -> np.ndarray:
    """The photo as displayed (EXIF orientation applied), small, sRGB uint8: JPEGs are decoded at a
    reduced scale in the DCT domain (at least 64 px); other formats go through the project's loader."""
    from PIL import Image, ImageOps

    from ..io import load_photo

    if os.path.splitext(path)[1].lower() in (".jpg", ".jpeg", ".jpe", ".jfif"):
        try:
            with Image.open(path) as img:
                if img.format == "JPEG" and img.mode in ("RGB", "L"):
                    img.draft("RGB", (64, 64))
                    return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
        except (OSError, ValueError, SyntaxError):
            pass  # the loader below names the problem
    rgb = np.asarray(load_photo(path).rgb)
    return np.repeat(rgb[..., None], 3, axis=2) if rgb.ndim == 2 else rgb


def phash_signature(rgb: np.ndarray) -> np.ndarray:
    """The ``phash`` signature of an sRGB image: `phash` of its grey (8 bytes), then its
    `colour_layout` (108 bytes)."""
    rgb = np.asarray(rgb)
    scale = 1.0 if rgb.dtype == np.uint8 or rgb.max() > 1.5 else 255.0
    gray = rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) * scale
    return np.concatenate([phash(gray), colour_layout(rgb)])


#: An embedder: a photo path -> a unit-norm float32 vector (``Inspector.embed``).
Embedder = Callable[[str], np.ndarray]


def photo_signature(path: str, embedder: Embedder | None = None) -> np.ndarray:
    """The signature of one photo file: ``embedder(path)`` normalised, or its `phash`."""
    if embedder is not None:
        vector = np.asarray(embedder(path), dtype=np.float32).ravel()
        norm = float(np.linalg.norm(vector))
        if not np.isfinite(norm) or norm == 0:
            raise ValueError("the embedding is zero or not finite")
        return vector / norm
    return phash_signature(_small_rgb(path))


def _layout_features(layout: np.ndarray) -> np.ndarray:
    """Colour layouts (n, 108) as vectors whose Euclidean distance is the layout distance: L* z-scored
    per photo (exposure steps move it as a whole), a* and b* in units of 20."""
    lab = layout.reshape(len(layout), LAYOUT_SIDE * LAYOUT_SIDE, 3).astype(np.float32)
    light = lab[..., 0] / 2.55
    light = (light - light.mean(axis=1, keepdims=True)) / np.maximum(light.std(axis=1, keepdims=True), 2.0)
    chroma = (lab[..., 1:] - 128.0).reshape(len(layout), -1) / 20.0
    return np.concatenate([light, chroma], axis=1) / LAYOUT_SIDE


def phash_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``phash`` distances between signature rows ``a`` (n, 116) and ``b`` (m, 116): the share of the
    64 hash bits that differ plus `LAYOUT_WEIGHT` times the colour layouts' distance.

    The weight and the thresholds were set on the grouping benchmark (bench/cull_groups.py): the
    hash separates scenes finely but moves with crops and shifts, the layout the other way round.
    """
    bits_a = np.unpackbits(a[:, :HASH_BYTES], axis=1).astype(np.float32)
    bits_b = np.unpackbits(b[:, :HASH_BYTES], axis=1).astype(np.float32)
    # Hamming distance as two products: bits where a is 1 and b is 0, plus the reverse
    hamming = bits_a @ (1.0 - bits_b).T + (1.0 - bits_a) @ bits_b.T
    fa, fb = _layout_features(a[:, HASH_BYTES:]), _layout_features(b[:, HASH_BYTES:])
    sq = (fa * fa).sum(1)[:, None] + (fb * fb).sum(1)[None, :] - 2.0 * fa @ fb.T
    return hamming / (8 * HASH_BYTES) + LAYOUT_WEIGHT * np.sqrt(np.maximum(sq, 0.0))


@dataclass
class Signatures:
    """Signatures of many photos, one row each, of one kind.

    ``values`` is (n, 116) uint8 for ``phash`` (8 bytes of packed hash bits, then the 108 of the
    colour layout) and (n, d) float32 for ``embedding``.
    ``missing`` marks photos without a signature (they group with nothing).
    """

    kind: str
    values: np.ndarray
    missing: np.ndarray

    def __post_init__(self) -> None:
        if self.kind not in SIGNATURE_KINDS:
            raise ValueError(f"unknown signature kind {self.kind!r}; choose from {sorted(SIGNATURE_KINDS)}")
        self.missing = np.asarray(self.missing, dtype=bool)
        if len(self.values) != len(self.missing):
            raise ValueError("values and missing differ in length")

    def __len__(self) -> int:
        return len(self.values)

    def distances(self, rows: Sequence[int] | slice = slice(None), cols: Sequence[int] | slice = slice(None)
                  ) -> np.ndarray:
        """Distances between the photos ``rows`` and ``cols`` (all by default), float32, in the kind's
        unit; ``inf`` where either photo has no signature."""
        a, b = self.values[rows], self.values[cols]
        if self.kind == "phash":
            d = phash_distances(a, b)
        else:
            d = 1.0 - np.asarray(a, np.float32) @ np.asarray(b, np.float32).T
            np.clip(d, 0.0, 2.0, out=d)
        gone = np.logical_or.outer(self.missing[rows], self.missing[cols])
        d[gone] = np.inf
        return d

    def encode(self, i: int) -> str | None:
        """Photo ``i``'s signature as text (base64; float16 for embeddings), None if missing."""
        if self.missing[i]:
            return None
        raw = self.values[i] if self.kind == "phash" else np.asarray(self.values[i], np.float16)
        return base64.b64encode(np.ascontiguousarray(raw).tobytes()).decode("ascii")

    @staticmethod
    def decode(kind: str, text: str) -> np.ndarray:
        """The inverse of `encode` (ValueError for text that is not a signature of ``kind``)."""
        raw = base64.b64decode(text.encode("ascii"), validate=True)
        if kind == "phash":
            if len(raw) != HASH_BYTES + LAYOUT_BYTES:
                raise ValueError(f"a phash signature is {HASH_BYTES + LAYOUT_BYTES} bytes")
            return np.frombuffer(raw, dtype=np.uint8).copy()
        if len(raw) % 2:
            raise ValueError("an embedding is float16")
        return np.frombuffer(raw, dtype=np.float16).astype(np.float32)

    @classmethod
    def stack(cls, kind: str, vectors: Sequence[np.ndarray | None]) -> "Signatures":
        """Signatures from one vector per photo (None where there is none)."""
        missing = np.array([v is None for v in vectors], dtype=bool)
        present = [v for v in vectors if v is not None]
        if kind == "phash":
            width, dtype = HASH_BYTES + LAYOUT_BYTES, np.uint8
        else:
            width, dtype = (len(present[0]) if present else 1), np.float32
        values = np.zeros((len(vectors), width), dtype=dtype)
        for i, v in enumerate(vectors):
            if v is not None:
                if len(v) != width:
                    raise ValueError(f"signature {i} has {len(v)} values, expected {width}")
                values[i] = v
        return cls(kind, values, missing)


def compute_signatures(paths: Iterable[str | None], embedder: Embedder | None = None, threads: int = 1,
                       known: Sequence[np.ndarray | None] | None = None
                       ) -> tuple[Signatures, dict[int, str]]:
    """Signatures of photo files (``phash``, or ``embedding`` with an ``embedder``).

    Parameters
    ----------
    paths : iterable of str or None
        Photo files; None for a photo that cannot be found.
    embedder : callable, optional
        ``path -> vector`` (``Inspector.embed``); without one, `phash` is used.
    threads : int
        Decoding threads (decoders release the GIL). An embedder runs on one thread.
    known : sequence, optional
        Signatures already computed (e.g. from an earlier run), None where one must be computed.

    Returns
    -------
    (Signatures, dict)
        The signatures, and ``{index: reason}`` for the photos without one.
    """
    from ..errors import PicInspectorError

    paths = list(paths)
    kind = "embedding" if embedder is not None else "phash"
    known = list(known) if known is not None else [None] * len(paths)
    problems: dict[int, str] = {}

    def one(i: int) -> np.ndarray | None:
        if known[i] is not None:
            return known[i]
        if paths[i] is None:
            problems[i] = "photo not found"
            return None
        try:
            return photo_signature(paths[i], embedder)
        except PicInspectorError as exc:
            problems[i] = exc.reason
        except (OSError, ValueError) as exc:
            problems[i] = f"{type(exc).__name__}: {exc}"
        return None

    todo = range(len(paths))
    if threads > 1 and embedder is None and len(paths) > 8:
        with ThreadPoolExecutor(threads, thread_name_prefix="picinspector-signature") as pool:
            vectors = list(pool.map(one, todo))
    else:
        vectors = [one(i) for i in todo]
    return Signatures.stack(kind, vectors), problems
