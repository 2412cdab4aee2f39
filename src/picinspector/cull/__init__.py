"""Culling a shoot: group bursts and near-duplicates, pick the best of each, rate, write XMP.

The steps, each usable alone::

    rows = read_results("shoot.jsonl")                    # or fresh analysis rows
    sigs = signatures_for(rows)                           # pHash, or an engine's embedding
    result = cull(rows, sigs, CullOptions())              # groups, picks, rejects, stars, reasons
    out = result.rows()                                   # the rows with a "cull" key each
    changes = plan_changes(result.items())                # XMP to write (in memory; a dry run stops here)
    apply_changes(changes, "shoot.undo.jsonl")            # write them, journalled for `undo`

See docs/cull.md for the rating mapping, the XMP fields and the benchmark.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ._decide import FAMILIES, REJECT_KINDS, STATUSES, Decision, RatingOptions, cull_score, decide, parse_keep
from ._group import Grouping, GroupingOptions, capture_time, group_photos
from ._signature import SIGNATURE_KINDS, Embedder, Signatures, compute_signatures, phash
from ._undo import UndoResult, apply_changes, free_journal_path, undo
from ._xmp import NAMESPACE, PREFIX, SIDECAR_STYLES, Change, XmpUnavailable, plan_changes, sidecar_for

__all__ = [
    "FAMILIES", "NAMESPACE", "PREFIX", "REJECT_KINDS", "SIDECAR_STYLES", "SIGNATURE_KINDS", "STATUSES",
    "Change", "CullOptions", "CullResult", "Decision", "Embedder", "Grouping", "GroupingOptions", "RatingOptions",
    "Signatures", "UndoResult", "XmpUnavailable", "apply_changes", "capture_time", "compute_signatures", "cull",
    "cull_score", "decide", "engine_embedder", "group_typicality", "free_journal_path", "group_photos", "parse_keep", "phash",
    "plan_changes", "sidecar_for", "signatures_for", "undo",
]


@dataclass(frozen=True)
class CullOptions:
    """Grouping and rating options together."""

    grouping: GroupingOptions = field(default_factory=GroupingOptions)
    rating: RatingOptions = field(default_factory=RatingOptions)


@dataclass
class CullResult:
    """The cull of one shoot: the analysed rows, in order, with a decision each."""

    analysed: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    decisions: list[Decision]
    grouping: Grouping
    signatures: Signatures
    seconds: float = 0.0

    def items(self) -> list[tuple[dict[str, Any], Decision]]:
        return list(zip(self.analysed, self.decisions))

    def rows(self) -> list[dict[str, Any]]:
        """Output rows: each analysed row with a ``cull`` object (docs/cull.md, "Output"), then the
        error rows as they came."""
        out = []
        for i, (row, d) in enumerate(self.items()):
            info: dict[str, Any] = {
                "group": d.group_id, "group_size": d.group_size, "group_rank": d.group_rank,
                "shoot_rank": d.shoot_rank, "burst": d.burst, "pick": d.pick, "status": d.status,
                "rating": d.rating, "label": d.label, "score": d.score, "reason": d.reason,
                "signature": ({"kind": self.signatures.kind, "value": self.signatures.encode(i)}
                              if not self.signatures.missing[i] else None),
            }
            stamp = _file_stamp(row.get("path"))
            if stamp is not None:
                info["file"] = stamp
            out.append({**row, "cull": info})
        return out + list(self.errors)

    def counts(self) -> dict[str, int]:
        by = {s: 0 for s in STATUSES}
        for d in self.decisions:
            by[d.status] += 1
        groups = {d.group for d in self.decisions if d.group_size > 1}
        return {"photos": len(self.decisions), "errors": len(self.errors), "groups": len(groups),
                "grouped": sum(1 for d in self.decisions if d.group_size > 1), **by}


def _file_stamp(path: Any) -> dict[str, int] | None:
    if not isinstance(path, str):
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def engine_embedder(inspector: Any) -> Embedder | None:
    """``inspector.embed`` when its engine has a photo embedding (the effnet engine), else None."""
    embed = getattr(inspector, "embed", None)
    if embed is None or not callable(getattr(getattr(inspector, "engine", None), "embed", None)):
        return None
    return embed


def _previous_signature(row: dict[str, Any], kind: str) -> np.ndarray | None:
    """A signature an earlier cull stored in ``row``, if it is of ``kind`` and the file is unchanged."""
    info = row.get("cull")
    if not isinstance(info, dict):
        return None
    sig, stamp = info.get("signature"), info.get("file")
    if not isinstance(sig, dict) or sig.get("kind") != kind or not isinstance(sig.get("value"), str):
        return None
    if stamp is not None and stamp != _file_stamp(row.get("path")):
        return None
    try:
        return Signatures.decode(kind, sig["value"])
    except ValueError:
        return None


def signatures_for(rows: Sequence[dict[str, Any]], embedder: Embedder | None = None, *, threads: int = 1,
                   bases: Sequence[str] = (), reuse: bool = True) -> tuple[Signatures, dict[int, str]]:
    """Signatures of the photos of analysed ``rows`` (an embedding with ``embedder``, else a pHash).

    A signature an earlier cull stored in the row (``cull.signature``) is reused when it is of the
    same kind and the file's size and modification time have not changed. Photo paths are looked up
    as stored, then relative to each of ``bases`` (e.g. the results file's folder).

    Returns
    -------
    (Signatures, dict)
        The signatures, and ``{row index: reason}`` for photos without one.
    """
    from ..report.html import resolve_photo

    kind = "embedding" if embedder is not None else "phash"
    paths = [resolve_photo(r["path"], bases) if isinstance(r.get("path"), str) else None for r in rows]
    known = [_previous_signature(r, kind) if reuse else None for r in rows]
    return compute_signatures(paths, embedder, threads=threads, known=known)


def group_typicality(signatures: Signatures, grouping: Grouping) -> np.ndarray:
    """Per photo: its mean signature distance to the other members of its group, in units of the
    kind's ``spread`` (`SIGNATURE_KINDS`; 0 for a photo alone)."""
    unit = SIGNATURE_KINDS[signatures.kind].spread
    out = np.zeros(len(signatures), dtype=np.float64)
    for members in grouping.members():
        if len(members) > 1:
            d = signatures.distances(members, members).astype(np.float64)
            out[members] = (d.sum(axis=1) - np.diag(d)) / (len(members) - 1) / unit
    return out


def cull(rows: Sequence[dict[str, Any]], signatures: Signatures, options: CullOptions = CullOptions()) -> CullResult:
    """Group, rank, pick, reject and rate (the culling step itself: no file is read).

    Parameters
    ----------
    rows : sequence of dict
        Result rows; error rows are set aside (carried to the output as they are). Each analysed row
        needs ``scores``; ``findings`` and ``exif.datetime`` are used when present.
    signatures : Signatures
        One per *analysed* row, in order (`signatures_for`).
    options : CullOptions
    """
    started = time.perf_counter()
    analysed = [{k: v for k, v in r.items() if k != "cull"} for r in rows if "error" not in r]
    errors = [r for r in rows if "error" in r]
    if len(signatures) != len(analysed):
        raise ValueError(f"{len(signatures)} signatures for {len(analysed)} analysed rows")
    times = [capture_time(r.get("exif")) for r in analysed]
    grouping = group_photos(signatures, times, options.grouping)
    typicality = group_typicality(signatures, grouping)
    decisions = decide(analysed, grouping.labels, grouping.runs, times, options.rating, typicality)
    return CullResult(analysed=analysed, errors=errors, decisions=decisions, grouping=grouping,
                      signatures=signatures, seconds=time.perf_counter() - started)
