"""A small table of measure groups: name -> function of a `Photo` and the outputs it documents."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from concurrent.futures import Executor
from typing import Any, Callable, Iterator

import cv2

from ..io._photo import Photo


@dataclass(frozen=True)
class Output:
    """One value a measure group reports."""

    name: str
    unit: str
    description: str


@dataclass(frozen=True)
class MeasureGroup:
    name: str
    func: Callable[[Photo], dict[str, Any]]
    outputs: tuple[Output, ...]
    #: Rough CPU cost (ms on a 1024 x 768 working image): on a thread pool the costliest groups
    #: start first, so that the threads finish together (longest-processing-time-first order).
    cost: float = 1.0


#: Every measure group, in the order they run. Filled by ``@measure_group`` in each module.
MEASURE_GROUPS: dict[str, MeasureGroup] = {}


def measure_group(name: str, outputs: list[tuple[str, str, str]], cost: float = 1.0):
    """Register ``func(photo) -> {output name: value}`` as the measure group ``name``.

    ``outputs`` lists ``(name, unit, description)`` for every key the function returns; the
    function must return exactly those keys (a value may be ``None`` where it does not apply).
    ``cost`` is the group's rough CPU time in ms on a 1024 x 768 working image (it orders the
    groups on a thread pool; results do not depend on it).
    """

    def wrap(func: Callable[[Photo], dict[str, Any]]):
        if name in MEASURE_GROUPS:
            raise ValueError(f"measure group {name!r} registered twice")
        taken = set(measure_units())
        clash = taken.intersection(o[0] for o in outputs)
        if clash:
            raise ValueError(f"measure group {name!r} reuses output names {sorted(clash)}")
        MEASURE_GROUPS[name] = MeasureGroup(name, func, tuple(Output(*o) for o in outputs), float(cost))
        return func

    return wrap


def measure_all(photo: Photo, groups: list[str] | None = None,
                executor: Executor | None = None) -> dict[str, Any]:
    """Run the named measure groups (all by default) and merge their outputs into one dict.

    With an ``executor`` (a thread pool) the groups run concurrently: they are pure functions of
    the photo and spend their time in OpenCV and NumPy, which release the GIL. The result is the
    same, in registry order, either way.
    """
    names = list(groups or MEASURE_GROUPS)
    if executor is not None:
        # The luma every group starts from is filled once, before the groups race for it. The Lab
        # image (two groups, later) is left to the first group that needs it, on a pool thread.
        _ = photo.gray
        order = sorted(names, key=lambda n: -MEASURE_GROUPS[n].cost)  # costliest first
        with opencv_single_threaded():
            futures = {name: executor.submit(MEASURE_GROUPS[name].func, photo) for name in order}
            results = [futures[name].result() for name in names]
    else:
        results = [MEASURE_GROUPS[name].func(photo) for name in names]
    out: dict[str, Any] = {}
    for name, values in zip(names, results):
        group = MEASURE_GROUPS[name]
        expected = {o.name for o in group.outputs}
        if set(values) != expected:
            raise RuntimeError(
                f"measure group {name!r} returned {sorted(values)}, documented {sorted(expected)}"
            )
        out.update(values)
    return out


_cv_lock = threading.Lock()
_cv_users = 0
_cv_threads_before = 1


@contextmanager
def opencv_single_threaded() -> Iterator[None]:
    """OpenCV's own thread pool off (one thread) while measure groups run on ours.

    The groups already fill the cores; OpenCV splitting each call over its pool as well only makes
    the two kinds of threads wait for each other (on 2 cores: ~2 ms more per 12-MP photo). OpenCV's
    setting is process-wide, so concurrent measurements (a server's requests) share one switch:
    the first to enter turns the pool off, the last to leave restores what it was. Results do not
    depend on OpenCV's thread count.
    """
    global _cv_users, _cv_threads_before
    with _cv_lock:
        if _cv_users == 0:
            _cv_threads_before = cv2.getNumThreads()
            cv2.setNumThreads(1)
        _cv_users += 1
    try:
        yield
    finally:
        with _cv_lock:
            _cv_users -= 1
            if _cv_users == 0:
                cv2.setNumThreads(_cv_threads_before)


def measure_units() -> dict[str, tuple[str, str]]:
    """``{output name: (unit, description)}`` for every registered output."""
    return {o.name: (o.unit, o.description) for g in MEASURE_GROUPS.values() for o in g.outputs}
