"""The measure-group registry: the thread-pool order, results independent of it, scratch arrays."""

import threading
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pytest
from skimage import data

from picinspector.io import Photo
from picinspector.measures import MEASURE_GROUPS, measure_all, measure_units
from picinspector.measures._scratch import release, scratch


class RecordingExecutor:
    """Runs each submitted call at once and records the order of submission."""

    def __init__(self):
        self.order = []

    def submit(self, func, *args):
        self.order.append(func)
        fut = Future()
        fut.set_result(func(*args))
        return fut


def photo():
    return Photo(rgb=data.astronaut().astype(np.float32) / 255.0)


def same(a: dict, b: dict) -> bool:
    """Equal keys, and values equal to the last bits of a float (reductions over arrays at other
    addresses may round differently in the 15th digit)."""
    if list(a) != list(b):
        return False
    for k, va in a.items():
        vb = b[k]
        if isinstance(va, float) and isinstance(vb, float):
            if va != pytest.approx(vb, rel=1e-9, abs=1e-12):
                return False
        elif va != vb:
            return False
    return True


def test_pool_starts_the_costliest_groups_first_and_results_do_not_depend_on_it():
    ex = RecordingExecutor()
    pooled = measure_all(photo(), executor=ex)
    costs = {g.func: g.cost for g in MEASURE_GROUPS.values()}
    submitted = [costs[f] for f in ex.order]
    assert submitted == sorted(submitted, reverse=True)
    assert len(ex.order) == len(MEASURE_GROUPS)
    sequential = measure_all(photo())
    assert set(pooled) == set(measure_units())
    assert same(pooled, sequential)  # the same values in the same (registry) order, whatever the pool order
    with ThreadPoolExecutor(2) as pool:
        assert same(measure_all(photo(), executor=pool), pooled)


def test_opencv_runs_on_one_thread_while_the_pool_measures_and_is_restored(monkeypatch):
    """OpenCV's own pool is off while our threads measure (both would fill the same cores), for as
    long as any measurement runs, and its setting comes back after the last one."""
    import cv2

    from picinspector.measures import _registry

    seen = []
    started, release_first = threading.Event(), threading.Event()

    def group(photo):
        seen.append(cv2.getNumThreads())
        if not started.is_set():
            started.set()
            release_first.wait(10)
        return {}

    monkeypatch.setitem(MEASURE_GROUPS, "probe", _registry.MeasureGroup("probe", group, ()))
    before = cv2.getNumThreads()
    cv2.setNumThreads(3)
    try:
        with ThreadPoolExecutor(2) as pool:
            first = threading.Thread(target=measure_all, args=(photo(), ["probe"], pool))
            first.start()
            assert started.wait(10)
            measure_all(photo(), ["probe"], pool)  # a second measurement starts and ends meanwhile
            assert cv2.getNumThreads() == 1  # the first is still running: still off
            release_first.set()
            first.join(10)
        assert seen == [1, 1]
        assert cv2.getNumThreads() == 3
        measure_all(photo(), ["probe"])  # without a pool: OpenCV keeps its threads
        assert seen[-1] == 3
    finally:
        cv2.setNumThreads(before)


def test_costs_are_set_for_every_group():
    assert all(g.cost > 0 for g in MEASURE_GROUPS.values())
    assert MEASURE_GROUPS["focus"].cost > MEASURE_GROUPS["compression"].cost


def test_scratch_arrays_are_per_thread_and_grow():
    a = scratch("test.a", (4, 5))
    assert a.shape == (4, 5) and a.dtype == np.float32 and a.flags.c_contiguous
    a[:] = 1.0
    b = scratch("test.a", (2, 3))  # smaller: a view of the same memory
    assert np.shares_memory(a, b)
    c = scratch("test.a", (40, 50))  # larger: new memory
    assert c.shape == (40, 50) and not np.shares_memory(a, c)
    assert not np.shares_memory(scratch("test.b", (4, 5)), scratch("test.a", (4, 5)))
    other = []
    t = threading.Thread(target=lambda: other.append(scratch("test.a", (4, 5))))
    t.start()
    t.join()
    assert not np.shares_memory(other[0], scratch("test.a", (4, 5)))
    assert scratch("test.u8", (3,), np.uint8).dtype == np.uint8
    release()
    assert not np.shares_memory(scratch("test.a", (4, 5)), c)


def test_repeated_photos_give_identical_measures():
    """Scratch reuse leaves nothing behind: a second photo of another size, then the first again."""
    first = measure_all(photo())
    measure_all(Photo(rgb=data.coffee().astype(np.float32) / 255.0))
    assert same(measure_all(photo()), first)


@pytest.mark.parametrize("name", ["focus", "noise", "nss"])
def test_groups_with_scratch_agree_across_threads(name):
    p = photo()
    alone = measure_all(p, [name])
    with ThreadPoolExecutor(2) as pool:
        both = [pool.submit(measure_all, photo(), [name]) for _ in range(4)]
        assert all(same(f.result(), alone) for f in both)
