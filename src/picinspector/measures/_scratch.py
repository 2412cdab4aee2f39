"""Per-thread scratch arrays for the measures' full-size temporaries.

A measure group makes a handful of image-sized float32 temporaries per photo (filtered copies,
gradients, masks). Allocated afresh, each is new memory that the kernel must map page by page on
first touch; on the virtual machines this runs on that costs as much as the filtering itself (in
one test, the focus group's six gradient images took 22 ms with fresh arrays and 9 ms with reused
ones). So the hot paths write into arrays kept per thread and reused for the next photo.

Rules for callers: a scratch array is only valid until the same name is asked for again on the same
thread, so it never leaves the function that asked for it (results are copies), and every name is
unique to one use (prefix it with the module: ``"focus.fine"``). The arrays grow to the largest
size seen and are then reused as views, so photos of mixed sizes do not reallocate.
"""

from __future__ import annotations

import threading

import numpy as np

_LOCAL = threading.local()


def scratch(name: str, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """A C-contiguous array of ``shape`` and ``dtype`` owned by this thread under ``name``.

    Parameters
    ----------
    name : str
        Unique name of the use (``"module.what"``).
    shape : tuple of int
    dtype : numpy dtype

    Returns
    -------
    ndarray
        Uninitialised contents (whatever the last use left).
    """
    pool = _LOCAL.__dict__.setdefault("pool", {})
    dtype = np.dtype(dtype)
    n = 1
    for s in shape:
        n *= int(s)
    buf = pool.get((name, dtype))
    if buf is None or buf.size < n:
        buf = pool[(name, dtype)] = np.empty(max(n, 1), dtype)
    return buf[:n].reshape(shape)


def release() -> None:
    """Drop this thread's scratch arrays (they are made again when next needed)."""
    _LOCAL.__dict__.pop("pool", None)
