"""The Ray Data pipeline: paths -> bytes -> a pool of analysing actors -> rows committed by the driver.

::

    from_arrow(paths)          blocks of paths still to do (resume has removed the done ones)
      .map_batches(Analyser)   actors: one Inspector each (its model loaded once); for each batch, the
                               bytes of each path or URI (or its typed read error), then the rows
      .iter_batches()          the driver: commits rows to the store (Parquet parts or JSON lines)

The analysis of one photo is the local batch's: an `Inspector` built from the same options, the
same loader (`picinspector.io.load_photo_bytes` on the bytes), ``Report.to_dict()`` with the path
as the input gave it, or `picinspector.report.error_row`.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..batch import RunCounts
from ._sources import iter_chunks, path_key, read_source

__all__ = ["RaySummary", "analyse_bytes", "run_ray"]

#: Photos per call of an actor (and per read task). Small enough that a batch of large photos stays
#: well under Ray Data's block size, large enough that per-call overheads vanish.
BATCH_SIZE = 8


@dataclass
class RaySummary(RunCounts):
    """What a `run_ray` call did: the `~picinspector.batch.RunCounts` of the local batch, and more.

    Times are seconds from the start of the call: ``init_s`` until Ray was up (started or joined),
    ``first_row_s`` until the first rows came back (Ray's fixed start-up: planning, starting the
    actors and loading their models, plus one batch), ``elapsed_s`` until the end. ``first_rows``
    is how many rows came with that first batch (for a throughput "once started").
    """

    actors: int = 0
    address: str | None = None
    init_s: float = 0.0
    first_row_s: float = 0.0
    first_rows: int = 0
    elapsed_s: float = 0.0
    parts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# Worker side (runs in Ray tasks and actors)


def analyse_bytes(inspector: Any, path: str, data: bytes) -> dict[str, Any]:
    """The result row of one photo given as the bytes of its file, as the local batch makes it."""
    from ..io import load_photo_bytes
    from ..report import error_row

    try:
        photo = load_photo_bytes(data, path=path, native_detail=inspector.native_detail,
                                 max_pixels=inspector.max_pixels)
        row = inspector.analyze(photo).to_dict()
    except Exception as exc:  # noqa: BLE001 - one bad image becomes an error row; the run goes on
        return error_row(path, exc)
    row["path"] = path
    return row


def read_batch(batch):
    """A table of paths -> paths, bytes, and the typed read error of those that failed."""
    import pyarrow as pa

    from ..errors import PicInspectorError

    paths = batch.column("path").to_pylist()
    data, kinds, messages = [], [], []
    for path in paths:
        try:
            blob, kind, message = read_source(path), None, None
        except PicInspectorError as exc:
            blob, kind, message = None, exc.kind, exc.reason
        except Exception as exc:  # noqa: BLE001 - an unexpected filesystem error is this file's row
            blob, kind, message = None, "internal_error", f"{type(exc).__name__}: {exc}"
        data.append(blob)
        kinds.append(kind)
        messages.append(message)
    return pa.table({"path": pa.array(paths, pa.string()), "data": pa.array(data, pa.large_binary()),
                     "error_kind": pa.array(kinds, pa.string()), "error_message": pa.array(messages, pa.string())})


class Analyser:
    """Ray actor: one `Inspector` (its model loaded once, when the actor starts); a batch of paths ->
    their bytes (`read_batch`) -> rows.

    ``output_format`` "parquet" returns tables with the result schema; "jsonl" returns the
    `picinspector.batch.JsonlWriter` lines (``path``, ``failed``, ``line``), byte for byte what a
    local run writes.
    """

    def __init__(self, options: dict[str, Any], version: str, output_format: str, threads: int = 1) -> None:
        from .. import __version__

        if version != __version__:
            raise RuntimeError(f"this Ray worker has picinspector {__version__}, the driver {version}: install "
                               "the same version on every node")
        import cv2

        cv2.setNumThreads(threads)  # parallelism comes from the actors, as in the local pool
        from ..pipeline import Inspector

        self.inspector = Inspector(**{"threads": threads, **options})
        self.output_format = output_format

    def __call__(self, batch):
        batch = read_batch(batch)
        rows = []
        paths = batch.column("path").to_pylist()
        kinds = batch.column("error_kind").to_pylist()
        messages = batch.column("error_message").to_pylist()
        blobs = batch.column("data")
        for i, path in enumerate(paths):
            if kinds[i] is not None:
                rows.append({"path": path, "error": {"kind": kinds[i], "message": messages[i]}})
            else:
                rows.append(analyse_bytes(self.inspector, path, blobs[i].as_py()))
        if self.output_format == "jsonl":
            return _lines_table(rows)
        from ._schema import rows_to_table

        return rows_to_table(rows)


def _lines_table(rows: Sequence[dict[str, Any]]):
    import pyarrow as pa

    from ..batch import JsonlWriter
    from ..report import error_row

    lines, failed = [], []
    for row in rows:
        try:
            line = JsonlWriter.format_row(row)
        except (ValueError, TypeError) as exc:  # as the local batch: a row its writer cannot format
            row = error_row(row.get("path"), exc)
            line = JsonlWriter.format_row(row)
        lines.append(line)
        failed.append("error" in row)
    return pa.table({"path": pa.array([r.get("path") for r in rows], pa.string()),
                     "failed": pa.array(failed, pa.bool_()), "line": pa.array(lines, pa.string())})


# --------------------------------------------------------------------------------------------------
# Driver side


def _start_ray(address: str | None, num_cpus: int | None, object_store_memory: int | None) -> bool:
    """Start a local Ray (no address) or join a cluster; False when Ray was already up (left running)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reporting, no network call
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True, "configure_logging": False}
    if address is None:
        kwargs.update(num_cpus=num_cpus, object_store_memory=object_store_memory)
    ray.init(address=address, **kwargs)
    return True


def _default_actors(cpus_per_actor: float, gpus_per_actor: float) -> int:
    import ray

    resources = ray.cluster_resources()
    by_cpu = int(resources.get("CPU", 1) // max(cpus_per_actor, 1e-9))
    if gpus_per_actor > 0:
        by_gpu = int(resources.get("GPU", 0) // gpus_per_actor)
        if by_gpu < 1:
            raise ValueError(f"the Ray cluster has {resources.get('GPU', 0):g} GPUs; {gpus_per_actor:g} per actor "
                             "asks for more")
        return max(1, min(by_cpu, by_gpu))
    return max(1, by_cpu)


class _Stop(Exception):
    pass


def run_ray(paths: Sequence[str], output: str | os.PathLike[str], *, inspector_options: Any = None,
            address: str | None = None, actors: int | None = None, cpus_per_actor: float = 1.0,
            gpus_per_actor: float = 0.0, batch_size: int = BATCH_SIZE, retry_errors: bool = False,
            progress: bool = True, part_rows: int = 2000, part_seconds: float = 30.0,
            num_cpus: int | None = None, object_store_memory: int | None = None,
            on_commit: Callable[[int], None] | None = None, actor_class: type | None = None) -> RaySummary:
    """Analyse ``paths`` on Ray into ``output``, resuming a previous run.

    Parameters
    ----------
    paths : sequence of str
        Local paths and URIs (e.g. from `picinspector.distributed.expand_inputs`); duplicates
        (`path_key`) are analysed once.
    output : str or path-like
        A folder of Parquet parts (created if missing), or a ``.jsonl`` file. Paths already in it are
        skipped.
    inspector_options : dict or Inspector, optional
        Keyword arguments for `picinspector.Inspector` (an inspector gives its ``options``). Checked
        here without loading a model; each actor builds its own inspector.
    address : str, optional
        A Ray cluster to join (``"auto"``, ``"ray://head:10001"``, ``"head:6379"``); without one a
        local Ray is started (and stopped at the end). A Ray already initialised in this process
        is used as it is.
    actors : int, optional
        Size of the actor pool; default: as many as the cluster's CPUs (and GPUs) allow.
    cpus_per_actor, gpus_per_actor : float
        Ray resources of each actor; ``gpus_per_actor`` > 0 for a deep engine on GPUs (a fraction
        shares a GPU between actors). Measure threads per actor = ``int(cpus_per_actor)``.
    batch_size : int
        Photos per actor call.
    retry_errors : bool
        Remove the error rows from ``output`` and analyse those paths again.
    progress : bool
        Ray Data's progress bars.
    part_rows, part_seconds : int, float
        The driver commits what came back (one Parquet part, or appended lines) every ``part_rows``
        rows or ``part_seconds`` seconds, whichever is first, and at the end or on Ctrl-C; a run
        killed with SIGKILL loses at most that much.
    num_cpus, object_store_memory : int, optional
        For a local Ray only (tests, benchmarks).
    on_commit : callable, optional
        Called with the number of rows committed so far, after each commit (tests stop a run there).
    actor_class : type, optional
        A subclass of `Analyser` to run instead of it.

    Returns
    -------
    RaySummary

    Raises
    ------
    ValueError
        Bad output (a file that is not a results file, another run holding it), bad options.
    """
    from ..pipeline import Inspector, check_options
    from ._store import open_store

    started = time.perf_counter()
    if isinstance(inspector_options, Inspector):
        options = dict(inspector_options.options)
    else:
        options = dict(inspector_options or {})
        check_options(**options)  # a clear error now, before Ray starts; no model loads here
    for name, value in (("batch_size", batch_size), ("part_rows", part_rows)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if actors is not None and (isinstance(actors, bool) or not isinstance(actors, int) or actors < 1):
        raise ValueError(f"actors must be a positive integer, got {actors!r}")
    if cpus_per_actor <= 0 or gpus_per_actor < 0:
        raise ValueError("cpus_per_actor must be > 0 and gpus_per_actor >= 0")

    store = open_store(output)
    try:
        return _run(store, list(paths), options, address=address, actors=actors, cpus_per_actor=cpus_per_actor,
                    gpus_per_actor=gpus_per_actor, batch_size=batch_size, retry_errors=retry_errors,
                    progress=progress, part_rows=part_rows, part_seconds=part_seconds, num_cpus=num_cpus,
                    object_store_memory=object_store_memory, on_commit=on_commit, started=started,
                    actor_class=actor_class or Analyser)
    finally:
        store.close()


def _run(store, paths: list[str], options: dict[str, Any], *, address, actors, cpus_per_actor, gpus_per_actor,
         batch_size, retry_errors, progress, part_rows, part_seconds, num_cpus, object_store_memory, on_commit,
         started, actor_class) -> RaySummary:
    from ..batch import still_to_do

    summary = RaySummary(output=store.output)
    existing = store.existing()
    if retry_errors:
        retry = store.drop_errors()
        paths = [*paths, *retry]
        existing = [(p, e) for p, e in existing if not e]
    done = {path_key(p) for p, _ in existing}
    todo = still_to_do(paths, done, summary, key=path_key)
    if not todo:  # nothing to do: no Ray start-up at all
        summary.elapsed_s = time.perf_counter() - started
        return summary

    owns_ray = _start_ray(address, num_cpus, object_store_memory)
    try:
        import ray
        import ray.data

        summary.init_s = time.perf_counter() - started
        summary.address = ray.get_runtime_context().gcs_address
        summary.actors = actors or _default_actors(cpus_per_actor, gpus_per_actor)
        _execute(store, todo, options, summary, batch_size=batch_size, cpus_per_actor=cpus_per_actor,
                 gpus_per_actor=gpus_per_actor, progress=progress, part_rows=part_rows,
                 part_seconds=part_seconds, on_commit=on_commit, started=started, actor_class=actor_class)
    finally:
        if owns_ray:
            import ray

            ray.shutdown()
    summary.elapsed_s = time.perf_counter() - started
    return summary


#: Retries of an actor task whose actor died (a lost node, a crash). After them the block is dropped,
#: and its photos are analysed again one per task (see `_execute`).
TASK_RETRIES = 2

_CRASH_MESSAGE = ("a Ray worker died while analysing this file alone (out of memory, or a crash in a decoder); "
                  "rerun with --retry-errors to try it again")


def _dataset(todo: list[str], options: dict[str, Any], summary: RaySummary, store, *, batch_size, chunk,
             cpus_per_actor, gpus_per_actor, actor_class, alone: bool = False):
    import pyarrow as pa
    import ray.data

    from .. import __version__

    blocks = [pa.table({"path": pa.array(c, pa.string())}) for c in iter_chunks(todo, chunk)]
    threads = max(1, int(cpus_per_actor))
    # Reading runs inside the actors (each reads the bytes of its own batch, then analyses them): no
    # bytes travel through the object store, and no read task can wait for a CPU that the actors hold
    # (a separate read stage deadlocks a cluster whose CPUs all went to actors).
    resources: dict[str, float] = {"num_cpus": cpus_per_actor}
    if gpus_per_actor:
        resources["num_gpus"] = gpus_per_actor
    import warnings

    with warnings.catch_warnings():  # Ray 2.60 would have max_restarts/max_task_retries named differently
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        return ray.data.from_arrow(blocks).map_batches(
            actor_class, batch_size=batch_size, batch_format="pyarrow",
            # alone: one task at a time per actor, so that a photo that kills its actor takes no other with it
            compute=ray.data.ActorPoolStrategy(size=min(summary.actors, len(blocks)),
                                               max_tasks_in_flight_per_actor=1 if alone else None),
            max_restarts=-1, max_task_retries=TASK_RETRIES,
            fn_constructor_kwargs={"options": options, "version": __version__, "output_format": store.format,
                                   "threads": threads}, **resources)


def _execute(store, todo: list[str], options: dict[str, Any], summary: RaySummary, *, batch_size, cpus_per_actor,
             gpus_per_actor, progress, part_rows, part_seconds, on_commit, started, actor_class) -> None:
    """Run the pipeline over ``todo``; then, for the photos of blocks lost with a dead worker, once more
    with one photo per block; those lost again get an ``internal_error`` row (as in the local pool)."""
    import pyarrow as pa
    import ray.data

    from ._schema import rows_to_table

    ctx = ray.data.DataContext.get_current()
    saved = (ctx.enable_progress_bars, ctx.max_errored_blocks, getattr(ctx, "enable_rich_progress_bars", None),
             getattr(ctx, "use_ray_tqdm", None))
    ctx.enable_progress_bars = progress
    if progress and saved[2] is not None:  # Ray Data's Rich bars (per stage: count, rows/s, time); its tqdm
        ctx.enable_rich_progress_bars, ctx.use_ray_tqdm = True, False  # ones drew nothing in a driver here
    ctx.max_errored_blocks = -1  # a block whose worker kept dying is dropped, not the whole run (see above)
    pending: list[Any] = []
    pending_rows = 0
    received: set[str] = set()
    last_commit = time.monotonic()

    def commit() -> None:
        nonlocal pending, pending_rows, last_commit
        if not pending:
            return
        table = pa.concat_tables(pending)
        if store.format == "jsonl":
            store.commit(table.column("line").to_pylist())
            failed = sum(table.column("failed").to_pylist())
        else:
            store.commit(table)
            failed = table.num_rows - table.column("error").null_count
        summary.failed += failed
        summary.analysed += table.num_rows - failed
        summary.parts += 1
        pending, pending_rows, last_commit = [], 0, time.monotonic()
        if on_commit is not None:
            on_commit(summary.analysed + summary.failed)

    def take(table) -> None:
        nonlocal pending_rows
        keys = [path_key(p) for p in table.column("path").to_pylist()]
        fresh = [i for i, k in enumerate(keys) if k not in received]
        if len(fresh) < len(keys):  # a block Ray ran twice (after a worker failure): keep one copy
            table = table.take(pa.array(fresh, pa.int64()))
        received.update(keys)
        if not summary.first_row_s:
            summary.first_row_s = time.perf_counter() - started
            summary.first_rows = table.num_rows
        pending.append(table)
        pending_rows += table.num_rows
        if pending_rows >= part_rows or time.monotonic() - last_commit >= part_seconds:
            commit()

    def on_term(signum, frame):  # SIGTERM stops like Ctrl-C: commit what came back, then exit
        raise KeyboardInterrupt

    # Blocks of paths (one actor task each): about 32 per actor, so that the actors finish together (the
    # last block is the tail of the run), and at most 16 batches each, so that rows come back steadily.
    chunk = max(1, min(16 * batch_size, -(-len(todo) // (32 * summary.actors))))
    previous = signal.signal(signal.SIGTERM, on_term) if _main_thread() else None
    try:
        ds = _dataset(todo, options, summary, store, batch_size=batch_size, chunk=chunk,
                      cpus_per_actor=cpus_per_actor, gpus_per_actor=gpus_per_actor, actor_class=actor_class)
        for table in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            take(table)
        lost = [p for p in todo if path_key(p) not in received]
        if lost:
            summary.extra["lost_with_workers"] = len(lost)
            ds = _dataset(lost, options, summary, store, batch_size=1, chunk=1, cpus_per_actor=cpus_per_actor,
                          gpus_per_actor=gpus_per_actor, actor_class=actor_class, alone=True)
            for table in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
                take(table)
            crashed = [p for p in lost if path_key(p) not in received]
            if crashed:
                rows = [{"path": p, "error": {"kind": "internal_error", "message": _CRASH_MESSAGE}} for p in crashed]
                if store.format == "jsonl":
                    take(_lines_table(rows))
                else:
                    take(rows_to_table(rows))
        commit()
    except KeyboardInterrupt:
        summary.interrupted = True
        commit()
    finally:
        ctx.enable_progress_bars, ctx.max_errored_blocks = saved[:2]
        if saved[2] is not None:
            ctx.enable_rich_progress_bars, ctx.use_ray_tqdm = saved[2:]
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
