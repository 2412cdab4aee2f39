"""Backbone outputs of many photos, computed once and kept in a resumable cache (for fitting heads).

Each photo goes through exactly what inference does: `picinspector.io.load_photo` (working
resolution), `picinspector.models.effnet._runtime.network_input` at each shorter side, the shipped
ONNX graph. The cache is one ``.npz`` per backbone and shorter side (``<dir>/<backbone>-s<side>.npz``),
holding ``paths``, ``stats``, ``embedding``, ``logits`` and a JSON ``meta`` with the graph's SHA-256;
a cache made by another graph is refused. It is written every `SAVE_EVERY` photos, so an interrupted
extraction resumes. Photos that cannot be read are listed with their error and skipped.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..models.effnet._config import file_sha256, get_backbone

#: Photos between two saves of the cache.
SAVE_EVERY = 250
_CHUNK = 16


@dataclass
class FeatureSet:
    """Backbone outputs of photos at one shorter side, rows in ``paths`` order."""

    paths: list[str]
    stats: np.ndarray  # (n, D) float32
    embedding: np.ndarray  # (n, C) float32
    logits: np.ndarray  # (n, 1000) float32
    meta: dict[str, Any]

    def rows(self, paths: Sequence[str]) -> np.ndarray:
        """Row indices of ``paths`` (absolute paths); KeyError for one not here."""
        index = {p: i for i, p in enumerate(self.paths)}
        return np.array([index[os.path.abspath(p)] for p in paths], dtype=np.int64)


def _cache_file(folder: Path, backbone: str, side: int) -> Path:
    return folder / f"{backbone}-s{side}.npz"


def _load(path: Path, graph_sha: str) -> tuple[dict[str, list], dict[str, str]]:
    if not path.is_file():
        return {}, {}
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["meta"]))
        if meta.get("graph_sha256") != graph_sha:
            raise ValueError(f"{path} was made with another graph ({meta.get('graph_sha256')}); delete it and rerun")
        rows = {str(p): (s, e, lg) for p, s, e, lg in zip(f["paths"], f["stats"], f["embedding"], f["logits"])}
    return rows, dict(meta.get("errors", {}))


def _save(path: Path, rows: dict, errors: dict[str, str], meta: dict[str, Any]) -> None:
    paths = sorted(rows)
    tmp = path.with_name(path.name + ".part.npz")
    np.savez(tmp, paths=np.array(paths, dtype=str),
             stats=np.stack([rows[p][0] for p in paths]).astype(np.float32) if paths else np.zeros((0, 0), np.float32),
             embedding=np.stack([rows[p][1] for p in paths]).astype(np.float32) if paths else np.zeros((0, 0), np.float32),
             logits=np.stack([rows[p][2] for p in paths]).astype(np.float32) if paths else np.zeros((0, 0), np.float32),
             meta=np.array(json.dumps({**meta, "errors": errors})))
    tmp.replace(path)


_WORKER: Any = None


def _init(backbone: str) -> None:
    global _WORKER
    import cv2

    from ..models.effnet import Backbone

    cv2.setNumThreads(1)
    _WORKER = Backbone(backbone, threads=1)


def _extract(paths: list[str], sides: tuple[int, ...]) -> list[tuple[str, Any]]:
    """(path, {side: (stats, embedding, logits)} or an error message) for each path."""
    from ..errors import PicInspectorError
    from ..io import load_photo

    out = []
    for path in paths:
        try:
            photo = load_photo(path)
        except PicInspectorError as exc:
            out.append((path, f"{exc.kind}: {exc}"))
            continue
        res = {}
        for side in sides:
            o = _WORKER.run(photo.rgb, side)
            res[side] = (o.stats, o.embedding, o.logits)
        out.append((path, res))
    return out


def backbone_features(paths: Sequence[str], cache: str | Path, *, backbone: str = "efficientnet-lite0",
                      sides: Sequence[int] = (384,), jobs: int = 1,
                      progress: Callable[[int, int], None] | None = None) -> dict[int, FeatureSet]:
    """Backbone outputs of ``paths`` at each shorter side, through the cache folder ``cache``.

    Returns ``{side: FeatureSet}`` holding the photos that could be read (paths made absolute); the
    others are in each set's ``meta["errors"]``.
    """
    from ..models.effnet import ensure_graph

    cfg = get_backbone(backbone)
    graph_sha = file_sha256(ensure_graph(cfg))
    folder = Path(cache)
    folder.mkdir(parents=True, exist_ok=True)
    sides = tuple(int(s) for s in sides)
    meta = {"format": "picinspector-effnet-features", "backbone": cfg.name, "graph_sha256": graph_sha}
    stores = {s: _load(_cache_file(folder, cfg.name, s), graph_sha) for s in sides}
    wanted = [os.path.abspath(p) for p in paths]
    todo = [p for p in dict.fromkeys(wanted) if any(p not in stores[s][0] and p not in stores[s][1] for s in sides)]
    chunks = [todo[i:i + _CHUNK] for i in range(0, len(todo), _CHUNK)]
    done = 0

    def absorb(results: list[tuple[str, Any]]) -> None:
        nonlocal done
        for path, res in results:
            for s in sides:
                if isinstance(res, str):
                    stores[s][1][path] = res
                else:
                    stores[s][0][path] = res[s]
        before = done // SAVE_EVERY
        done += len(results)
        if done // SAVE_EVERY > before:
            for s in sides:
                _save(_cache_file(folder, cfg.name, s), *stores[s], {**meta, "side": s})
        if progress:
            progress(done, len(todo))

    if chunks:
        try:
            if jobs <= 1:
                _init(cfg.name)
                for chunk in chunks:
                    absorb(_extract(chunk, sides))
            else:
                ctx = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init, initargs=(cfg.name,)) as pool:
                    for results in pool.map(_extract, chunks, [sides] * len(chunks)):
                        absorb(results)
        finally:
            for s in sides:
                _save(_cache_file(folder, cfg.name, s), *stores[s], {**meta, "side": s})
    out = {}
    for s in sides:
        rows, errors = stores[s]
        keep = [p for p in dict.fromkeys(wanted) if p in rows]
        out[s] = FeatureSet(keep, np.stack([rows[p][0] for p in keep]) if keep else np.zeros((0, 0), np.float32),
                            np.stack([rows[p][1] for p in keep]) if keep else np.zeros((0, 0), np.float32),
                            np.stack([rows[p][2] for p in keep]) if keep else np.zeros((0, 0), np.float32),
                            {**meta, "side": s, "errors": {p: errors[p] for p in wanted if p in errors}})
    return out
