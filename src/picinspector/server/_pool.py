"""A bounded pool of analyses: one `Inspector` shared by a few threads, with a waiting-room limit."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Sequence


class AnalysisPool:
    """Run at most ``concurrency`` analyses at once, with at most ``queue`` more waiting.

    The measures spend their time in OpenCV and NumPy, which release the GIL, so threads run
    analyses in parallel while sharing one inspector (one model in memory). `reserve` is all or
    nothing: a request for more photos than there is room for gets none (the caller answers 503).
    """

    def __init__(self, concurrency: int, queue: int) -> None:
        self.concurrency = concurrency
        self.capacity = concurrency + queue
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix="picinspector-analysis")
        self._lock = threading.Lock()
        self._pending = 0   # submitted and not yet finished (running + waiting)
        self._running = 0

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"running": self._running, "waiting": self._pending - self._running,
                    "capacity": self.capacity}

    def submit_all(self, calls: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[Future] | None:
        """Submit every ``(function, args)`` or none: None when they do not all fit."""
        with self._lock:
            if self._pending + len(calls) > self.capacity:
                return None
            self._pending += len(calls)
        futures = []
        for fn, args in calls:
            future = self._executor.submit(self._run, fn, args)
            future.add_done_callback(self._release)  # also when cancelled before it started
            futures.append(future)
        return futures

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        with self._lock:
            self._running += 1
        try:
            return fn(*args)
        finally:
            with self._lock:
                self._running -= 1

    def _release(self, _future: Future) -> None:
        with self._lock:
            self._pending -= 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
