"""Grouping bursts and near-duplicates from capture times and visual signatures.

Two photos are *alike* when their signature distance is at most ``near`` (near-duplicates, whenever
they were taken), or at most ``burst`` when both were taken in one *run* of frames: photos sorted by
capture time, each within ``burst_gap`` seconds of the previous. Groups are the clusters of average
linkage on the distance divided by the pair's threshold, cut at 1: a photo joins a group only when it
is alike the group's members on average, so a chain of slightly different frames cannot merge two
scenes (single linkage would). With ``max_gap``, photos taken further apart than that never group.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Sequence

import numpy as np

from ._signature import SIGNATURE_KINDS, Signatures

__all__ = ["GroupingOptions", "Grouping", "capture_time", "group_photos", "time_runs"]

_ISO_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})?$")


def capture_time(exif: dict[str, Any] | None) -> float | None:
    """Seconds (POSIX, float) of a result row's ``exif["datetime"]`` (ISO 8601, as `io` writes it:
    the fraction of a second and the UTC offset when the camera recorded them); None without one.

    A time without an offset is read as if it were UTC: photos of one camera compare correctly, which
    is all grouping needs.
    """
    text = (exif or {}).get("datetime")
    if not isinstance(text, str):
        return None
    match = _ISO_RE.match(text.strip())
    if match is None:
        return None
    y, mo, d, h, mi, s, frac, tz = match.groups()
    try:
        stamp = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=timezone.utc)
    except ValueError:
        return None
    seconds = stamp.timestamp() + (float("0." + frac) if frac else 0.0)
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        seconds -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    return seconds


@dataclass(frozen=True)
class GroupingOptions:
    """How photos are grouped (the CLI's ``--near``, ``--burst``, ``--burst-gap``, ``--max-gap``).

    ``near`` and ``burst`` are in the signature kind's unit; None takes the kind's default
    (`SIGNATURE_KINDS`).
    """

    near: float | None = None
    burst: float | None = None
    burst_gap: float = 2.0
    max_gap: float | None = None

    def thresholds(self, kind: str) -> tuple[float, float]:
        spec = SIGNATURE_KINDS[kind]
        near = spec.near if self.near is None else float(self.near)
        burst = spec.burst if self.burst is None else float(self.burst)
        if near < 0 or burst < 0:
            raise ValueError("similarity thresholds must be >= 0")
        return near, max(near, burst)


@dataclass
class Grouping:
    """Result of `group_photos`: ``labels[i]`` is photo i's group (0, 1, ... in order of each group's
    earliest photo), ``runs[i]`` its run of frames (-1 without a capture time)."""

    labels: np.ndarray
    runs: np.ndarray
    kind: str
    near: float
    burst: float

    @property
    def count(self) -> int:
        return int(self.labels.max()) + 1 if len(self.labels) else 0

    def members(self) -> list[np.ndarray]:
        """Indices of each group's photos, in photo order."""
        order = np.argsort(self.labels, kind="stable")
        bounds = np.flatnonzero(np.diff(self.labels[order])) + 1
        return np.split(order, bounds) if len(order) else []


def time_runs(times: Sequence[float | None], gap: float) -> np.ndarray:
    """Run ids: photos sorted by time, a new run wherever the step to the previous exceeds ``gap``
    seconds; -1 for photos without a time."""
    runs = np.full(len(times), -1, dtype=np.int64)
    timed = [(t, i) for i, t in enumerate(times) if t is not None]
    timed.sort()
    run, last = -1, None
    for t, i in timed:
        if last is None or t - last > gap:
            run += 1
        runs[i] = run
        last = t
    return runs


def _components(adjacent_blocks, n: int) -> np.ndarray:
    """Connected components (labels) of the graph whose edges the blocks list."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rows = np.concatenate([b[0] for b in adjacent_blocks]) if adjacent_blocks else np.zeros(0, np.int64)
    cols = np.concatenate([b[1] for b in adjacent_blocks]) if adjacent_blocks else np.zeros(0, np.int64)
    graph = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def group_photos(signatures: Signatures, times: Sequence[float | None], options: GroupingOptions = GroupingOptions(),
                 block: int = 2048) -> Grouping:
    """Group photos into bursts and near-duplicates.

    Parameters
    ----------
    signatures : Signatures
        One per photo (`compute_signatures`).
    times : sequence of float or None
        Capture times in seconds (`capture_time`), None where unknown.
    options : GroupingOptions
    block : int
        Rows of the distance matrix computed at once (memory: ``block * n`` floats).

    Returns
    -------
    Grouping

    Notes
    -----
    The scaled distance of photos i and j is ``d(i, j) / t(i, j)``, where ``t`` is ``burst`` for two
    photos of one run and ``near`` otherwise (and infinite beyond ``max_gap``). Groups are the
    clusters of average linkage (UPGMA) on it, cut at 1. Average-linkage clusters at a cut lie within
    the connected components of the graph "scaled distance <= 1" (the single-linkage clusters at the
    same cut), so the linkage runs per component: exact, and the full n x n matrix is never held for
    a large shoot.

    References
    ----------
    R. R. Sokal and C. D. Michener, "A statistical method for evaluating systematic relationships",
    University of Kansas Science Bulletin 38:1409-1438, 1958 (UPGMA). SciPy ``scipy.cluster.hierarchy``.
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    n = len(signatures)
    if len(times) != n:
        raise ValueError(f"{len(times)} times for {n} signatures")
    near, burst = options.thresholds(signatures.kind)
    runs = time_runs(times, options.burst_gap)
    t = np.array([np.nan if x is None else x for x in times], dtype=np.float64)
    eps = 1e-9

    def scaled(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        d = signatures.distances(rows, cols).astype(np.float64)
        same_run = (runs[rows][:, None] == runs[cols][None, :]) & (runs[rows][:, None] >= 0)
        out = d / np.where(same_run, burst + eps, near + eps)
        if options.max_gap is not None:
            dt = np.abs(t[rows][:, None] - t[cols][None, :])
            out[dt > options.max_gap] = np.inf  # NaN (a time unknown) compares False: no limit
        return out

    index = np.arange(n)
    edges = []
    for start in range(0, n, block):
        rows = index[start:start + block]
        s = scaled(rows, index)
        r, c = np.nonzero(s <= 1.0)
        keep = r + start < c  # each pair once; no self-loops
        edges.append((r[keep] + start, c[keep]))
    component = _components(edges, n) if n else np.zeros(0, np.int64)

    labels = np.full(n, -1, dtype=np.int64)
    next_label = 0
    order = np.argsort(component, kind="stable")
    bounds = np.flatnonzero(np.diff(component[order])) + 1
    for members in (np.split(order, bounds) if n else []):
        if len(members) <= 2:  # one photo, or a pair that is alike: nothing to cluster
            labels[members] = next_label
            next_label += 1
            continue
        s = scaled(members, members)
        s = np.minimum(s, 1e6)  # linkage needs finite distances; 1e6 never joins at a cut of 1
        s = (s + s.T) / 2
        np.fill_diagonal(s, 0.0)
        tree = linkage(squareform(s, checks=False), method="average")
        sub = fcluster(tree, t=1.0, criterion="distance")
        for value in np.unique(sub):
            labels[members[sub == value]] = next_label
            next_label += 1

    # number groups by their earliest photo (time, then input order), so ids read as the shoot goes
    first: dict[int, tuple[float, int]] = {}
    for i in range(n):
        key = (t[i] if not np.isnan(t[i]) else np.inf, i)
        if labels[i] not in first or key < first[labels[i]]:
            first[labels[i]] = key
    renumber = {old: new for new, old in enumerate(sorted(first, key=first.get))}
    labels = np.array([renumber[x] for x in labels], dtype=np.int64)
    return Grouping(labels=labels, runs=runs, kind=signatures.kind, near=near, burst=burst)
