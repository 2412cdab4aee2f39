"""Ratings where editors read them: XMP sidecars (or, with ``embed``, the photo's own XMP packet).

XMP is read, merged and written with exiv2 (the ``xmp`` extra, python-exiv2: the C++ library that
darktable and digiKam themselves use for their sidecars; it ships in the wheel). Merging keeps every
property of other tools (darktable's history, Lightroom's keywords, any namespace exiv2 has never
heard of); PicInspector sets only ``xmp:Rating``, ``xmp:Label``, ``xmp:MetadataDate`` and its own
namespace (`NAMESPACE`, prefix ``picinspector``). Everything is computed in memory first
(`plan_changes`), so a dry run and the undo journal see exactly the bytes that would be written.

A rating or label the user set by hand is kept unless ``overwrite``: a value counts as PicInspector's
when it equals what PicInspector recorded there last time (``picinspector:CullRating`` /
``picinspector:CullLabel``).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Sequence
from xml.etree import ElementTree

__all__ = ["NAMESPACE", "PREFIX", "SIDECAR_STYLES", "Change", "XmpUnavailable", "plan_changes", "sidecar_for",
           "xmp_fields"]

#: PicInspector's XMP namespace and its prefix.
NAMESPACE = "http://ns.picinspector.dev/xmp/1.0/"
PREFIX = "picinspector"

#: Sidecar names: "adobe" replaces the extension (photo.xmp: Lightroom, Camera Raw, Bridge, Capture
#: One, digiKam's "compatible" naming); "darktable" appends it (photo.NEF.xmp: darktable, digiKam's
#: default). "auto" uses whichever exists, else the Adobe name.
SIDECAR_STYLES = ("auto", "adobe", "darktable")

#: Formats exiv2 writes an embedded XMP packet into (``--embed``); others get a sidecar anyway.
EMBEDDABLE = (".jpg", ".jpeg", ".jpe", ".jfif", ".tif", ".tiff", ".png", ".webp")


class XmpUnavailable(ImportError):
    """The exiv2 package (the ``xmp`` extra) is not installed."""


_EXIV2: Any = None


class _Messages(logging.Handler):
    """Collects exiv2's warnings and errors (a sidecar that does not parse says so only there)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())


_MESSAGES = _Messages()


def _exiv2() -> Any:
    global _EXIV2
    if _EXIV2 is None:
        try:
            import exiv2
        except ImportError as exc:
            raise XmpUnavailable("writing XMP needs the exiv2 package: pip install \"picinspector[xmp]\" "
                                 "(or pass --no-xmp)") from exc
        logger = logging.getLogger("exiv2")
        logger.addHandler(_MESSAGES)
        logger.propagate = False
        exiv2.LogMsg.setHandler(exiv2.pythonHandler)
        exiv2.XmpProperties.registerNs(NAMESPACE, PREFIX)
        _EXIV2 = exiv2
    return _EXIV2


def sidecar_for(photo: str, style: str = "auto") -> str:
    """The sidecar path of a photo in ``style`` (`SIDECAR_STYLES`)."""
    if style not in SIDECAR_STYLES:
        raise ValueError(f"unknown sidecar style {style!r}; choose from {', '.join(SIDECAR_STYLES)}")
    adobe, darktable = os.path.splitext(photo)[0] + ".xmp", photo + ".xmp"
    if style == "adobe":
        return adobe
    if style == "darktable":
        return darktable
    if not os.path.exists(adobe) and os.path.exists(darktable):
        return darktable
    return adobe


def xmp_fields(row: dict[str, Any], decision: Any) -> dict[str, str]:
    """PicInspector's own properties for one photo: ``{name: text}`` in its namespace."""
    from ..report import SCORE_NAMES

    scores = row.get("scores") or {}
    out = {name.capitalize(): f"{scores[name]:.1f}" for name in SCORE_NAMES
           if isinstance(scores.get(name), (int, float))}
    scene = row.get("scene") or {}
    if isinstance(scene.get("label"), str):
        out["Scene"] = scene["label"]
    if isinstance(scene.get("confidence"), (int, float)):
        out["SceneConfidence"] = f"{scene['confidence']:.2f}"
    out.update({
        "Group": decision.group_id, "GroupSize": str(decision.group_size), "GroupRank": str(decision.group_rank),
        "Pick": "True" if decision.pick else "False", "Status": decision.status, "CullScore": f"{decision.score:.1f}",
        "Reason": decision.reason, "CullRating": str(decision.rating), "CullLabel": decision.label or "",
        "Engine": str(row.get("engine") or ""), "Version": str(row.get("version") or ""),
    })
    return out


@dataclass
class Change:
    """One file a run writes (or would write): what it holds before and after."""

    path: str                 # the file written (a sidecar, or the photo with embed)
    photo: str                # the photo it describes
    kind: str                 # "create" (new sidecar), "merge" (existing sidecar), "embed" (the photo itself)
    before: bytes | None      # None: the file does not exist yet
    after: bytes | None       # None: nothing to write (unchanged or skipped)
    rating: int
    label: str | None
    notes: list[str] = field(default_factory=list)  # kept ratings, fallbacks, ...
    error: str | None = None  # why this photo gets nothing

    @property
    def changes(self) -> bool:
        return self.after is not None and self.after != self.before


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def _open(data: bytes | None, sidecar: bool) -> Any:
    """An exiv2 image in memory: ``data`` (a sidecar's or photo's bytes), or a new, empty sidecar."""
    exiv2 = _exiv2()
    if data is None:
        return exiv2.ImageFactory.create(exiv2.ImageType.xmp)
    if sidecar:
        # exiv2 turns XML it cannot parse into *no* metadata, which a write would then replace: refuse
        # a file that is not well-formed XML, and one exiv2 could not decode (it says so in its log)
        try:
            ElementTree.fromstring(data.lstrip(b"\xef\xbb\xbf"))
        except ElementTree.ParseError as exc:
            raise ValueError(f"the existing sidecar is not well-formed XML ({exc}); left as it is") from None
    _MESSAGES.records.clear()
    image = exiv2.ImageFactory.open(data)
    image.readMetadata()
    if sidecar and any("XMP" in m for m in _MESSAGES.records):
        raise ValueError(f"exiv2 could not decode the existing sidecar ({'; '.join(_MESSAGES.records)}); "
                         "left as it is")
    return image


def _bytes(image: Any) -> bytes:
    io = image.io()
    io.open()
    try:
        return bytes(io.mmap()) if io.size() else b""
    finally:
        io.munmap()
        io.close()


def _get(xmp: Any, key: str) -> str | None:
    it = xmp.findKey(_exiv2().XmpKey(key))
    return None if it == xmp.end() else it.toString()


def _same_rating(a: str | None, b: str | None) -> bool:
    """Ratings compare as numbers ("3" and "3.0" are one rating; XMP's Rating is a Real)."""
    if a is None or b is None:
        return a is b
    try:
        return float(a) == float(b)
    except ValueError:
        return a.strip() == b.strip()


def _merge(data: bytes | None, sidecar: bool, fields: dict[str, str], rating: int, label: str | None,
           overwrite: bool, now: str) -> tuple[bytes | None, list[str]]:
    """New bytes (None if nothing changes) and notes."""
    image = _open(data, sidecar)
    xmp = image.xmpData()
    notes: list[str] = []
    ours_rating, ours_label = _get(xmp, f"Xmp.{PREFIX}.CullRating"), _get(xmp, f"Xmp.{PREFIX}.CullLabel")
    rating_now, label_now = _get(xmp, "Xmp.xmp.Rating"), _get(xmp, "Xmp.xmp.Label")
    wanted: dict[str, str | None] = {f"Xmp.{PREFIX}.{k}": v for k, v in fields.items()}
    if rating_now is None or overwrite or _same_rating(rating_now, ours_rating):
        wanted["Xmp.xmp.Rating"] = str(rating)
    elif not _same_rating(rating_now, str(rating)):
        notes.append(f"kept the rating {rating_now} set by hand (--overwrite replaces it)")
        wanted[f"Xmp.{PREFIX}.CullRating"] = ours_rating  # what we wrote before, if anything, stays the record
    if label_now is None or overwrite or label_now == (ours_label or None):
        wanted["Xmp.xmp.Label"] = label  # None: remove the label we set last time
    elif label_now != (label or ""):
        notes.append(f"kept the label {label_now!r} set by hand (--overwrite replaces it)")
        wanted[f"Xmp.{PREFIX}.CullLabel"] = ours_label
    changed = False
    for key, value in wanted.items():
        current = _get(xmp, key)
        if value is None or value == "":
            if current is not None:
                xmp.erase(xmp.findKey(_exiv2().XmpKey(key)))
                changed = True
        elif current != value:
            xmp[key] = value
            changed = True
    if not changed and data is not None:
        return None, notes
    xmp["Xmp.xmp.MetadataDate"] = now
    image.setXmpData(xmp)
    image.writeMetadata()
    return _bytes(image), notes


def plan_changes(items: Sequence[tuple[dict[str, Any], Any]], *, embed: bool = False, style: str = "auto",
                 overwrite: bool = False, raw_extensions: Sequence[str] | None = None) -> list[Change]:
    """What writing the ratings of ``items`` (pairs of a result row and its `Decision`) would do.

    Parameters
    ----------
    items : sequence of (row, decision)
        The row's ``path`` names the photo.
    embed : bool
        Write into JPEG, TIFF, PNG and WebP photos themselves; RAW and formats exiv2 cannot write
        (HEIC, AVIF) still get a sidecar.
    style : str
        Sidecar naming (`SIDECAR_STYLES`).
    overwrite : bool
        Replace ratings and labels set by hand.

    Returns
    -------
    list of Change
        One per photo, in order; nothing is written.

    Notes
    -----
    Two photos whose sidecars would share a name (``photo.NEF`` and ``photo.jpg`` both map to
    ``photo.xmp``) are told apart: the RAW (else the first) keeps ``photo.xmp``, the other gets
    ``photo.jpg.xmp``.
    """
    from ..io import RAW_EXTENSIONS

    raw = tuple(raw_extensions if raw_extensions is not None else RAW_EXTENSIONS)
    now = time.strftime("%Y-%m-%dT%H:%M:%S") + time.strftime("%z")[:3] + ":" + time.strftime("%z")[3:]
    targets: list[tuple[str, str]] = []  # (path written, kind)
    for row, _ in items:
        photo = row["path"]
        ext = os.path.splitext(photo)[1].lower()
        if embed and ext in EMBEDDABLE and ext not in raw:
            targets.append((photo, "embed"))
        else:
            targets.append((sidecar_for(photo, style), "sidecar"))
    # resolve shared sidecar names: the RAW keeps the plain name
    claimed: dict[str, int] = {}
    for i, ((row, _), (path, kind)) in enumerate(zip(items, targets)):
        if kind != "sidecar":
            continue
        key = os.path.normcase(os.path.abspath(path))
        if key in claimed:
            j = claimed[key]
            other = items[j][0]["path"]
            if os.path.splitext(row["path"])[1].lower() in raw and os.path.splitext(other)[1].lower() not in raw:
                targets[j] = (other + ".xmp", "sidecar")
                claimed[key] = i
            else:
                targets[i] = (row["path"] + ".xmp", "sidecar")
        else:
            claimed[key] = i

    changes = []
    for (row, decision), (path, kind) in zip(items, targets):
        photo = row["path"]
        notes: list[str] = []
        real = os.path.realpath(path)
        before = _read(real)
        change = Change(path=path, photo=photo, kind="embed" if kind == "embed" else
                        ("merge" if before is not None else "create"), before=before, after=None,
                        rating=decision.rating, label=decision.label, notes=notes)
        fields = xmp_fields(row, decision)
        try:
            if kind == "embed" and before is None:
                raise FileNotFoundError("the photo is not there any more")
            after, more = _merge(before, kind == "sidecar", fields, decision.rating, decision.label, overwrite, now)
            change.after = after
            notes += more
        except (ValueError, FileNotFoundError) as exc:
            change.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - exiv2.Exiv2Error and friends: this photo only
            if kind == "embed":  # a format exiv2 reads but cannot write into: fall back to a sidecar
                side = sidecar_for(photo, style)
                fallback = plan_changes([(row, decision)], embed=False, style=style, overwrite=overwrite)[0]
                fallback.notes.insert(0, f"could not embed ({exc}); wrote the sidecar {os.path.basename(side)}")
                changes.append(fallback)
                continue
            change.error = f"{type(exc).__name__}: {exc}"
        changes.append(change)
    return changes
