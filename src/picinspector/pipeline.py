"""`Inspector`: load -> measure -> score + scene -> feedback, with engines and writers chosen by name."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Protocol, Union

import numpy as np
from PIL import Image

from ._version import __version__
from .errors import AnalysisError, OutOfMemory, PicInspectorError
from .feedback import FEEDBACK_CHECKS, FEEDBACK_WRITERS
from .io import MAX_PIXELS, Photo, load_photo
from .io._load import reproducible_opencv
from .measures import measure_all
from .report import Finding, Report, SceneResult

Source = Union[str, "os.PathLike[str]", Image.Image, np.ndarray]


class Engine(Protocol):
    """What an engine does: scores and a scene for a photo, given the classic measures.

    ``predict`` may return a third item, a dict of extras for `Report.extras` (e.g. ``"embedding"``).
    Optional methods: ``use_threads(n)`` (the inspector's thread count), ``embed(photo)`` (a unit-norm
    vector, for `Inspector.embed`), ``prepare(photo)``: the engine's own work that needs only the
    pixels (effnet's network run). The inspector runs it beside the classic measures, on a thread of
    its own when it has more than one, and hands its result to ``predict(photo, measures,
    prepared=...)``.
    """

    name: str

    def predict(self, photo: Photo, measures: dict[str, Any]) -> tuple[Any, ...]: ...


class FeedbackWriter(Protocol):
    def __call__(self, photo: Photo, measures: dict[str, Any], scores: dict[str, float],
                 scene: SceneResult) -> tuple[list[Finding], str]: ...


def _classic(**options: Any) -> Engine:
    from .scoring import ClassicEngine

    return ClassicEngine(**options)


def _dinov2(**options: Any) -> Engine:
    from .models.dinov2 import Dinov2Engine

    return Dinov2Engine(**options)


def _check_dinov2(**options: Any) -> None:
    from .models.dinov2 import Dinov2Engine

    Dinov2Engine.check(**options)


def _effnet(**options: Any) -> Engine:
    from .models.effnet.engine import EffnetEngine

    return EffnetEngine(**options)


def _check_effnet(**options: Any) -> None:
    from .models.effnet.engine import EffnetEngine

    EffnetEngine.check(**options)


def default_engine(options: Any = ()) -> str:
    """The engine `Inspector` uses when none is named: ``effnet`` when it can run here
    (onnxruntime importable, its graph and heads installed) and takes the given engine ``options``
    (names), else ``classic`` (e.g. ``quality_model=...`` means the classic engine)."""
    from .models.effnet.engine import available

    return "effnet" if available() and set(options) <= {"quality_head", "scene_head", "model"} else "classic"


#: Engines by name. A factory takes the engine's own options and returns an `Engine`; deep engines
#: import their heavy dependencies inside their factory, so importing picinspector stays light.
ENGINES: dict[str, Callable[..., Engine]] = {"classic": _classic, "dinov2": _dinov2, "effnet": _effnet}

#: Engines whose factory loads a model: name -> a cheap check of the same options (raises what the
#: factory would raise, loads no weights). Others are checked by building them.
ENGINE_CHECKS: dict[str, Callable[..., None]] = {"dinov2": _check_dinov2, "effnet": _check_effnet}


def check_options(engine: str | None = None, feedback: str = "rules", *, native_detail: bool = False,
                  max_pixels: int = MAX_PIXELS, threads: int | None = None,
                  feedback_options: dict[str, Any] | None = None, **engine_options: Any) -> None:
    """Validate `Inspector` options without loading any model: what the parent of worker processes
    does, so that a deep model is loaded once per worker and not once more in the parent.

    Raises
    ------
    ValueError, ImportError, picinspector.models.WeightsNotFound
        As building the `Inspector` would.
    """
    engine = default_engine(engine_options) if engine is None else engine
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose from {sorted(ENGINES)}")
    if feedback not in FEEDBACK_WRITERS:
        raise ValueError(f"unknown feedback writer {feedback!r}; choose from {sorted(FEEDBACK_WRITERS)}")
    if threads is not None and int(threads) < 1:
        raise ValueError(f"threads must be >= 1, got {threads!r}")
    ENGINE_CHECKS.get(engine, ENGINES[engine])(**engine_options)
    FEEDBACK_CHECKS.get(feedback, FEEDBACK_WRITERS[feedback])(**(feedback_options or {}))


class Inspector:
    """Reusable analyser: build once, call `analyze` on many photos.

    Parameters
    ----------
    engine : str, optional
        Name in `ENGINES`; by default `default_engine()`: "effnet" where it can run, else "classic".
    feedback : str
        Name in `FEEDBACK_WRITERS` ("rules" by default; "vlm" for the neural writer).
    feedback_options : dict, optional
        Passed to the writer's factory (e.g. ``{"model_dir": RUN_DIR}`` for "vlm").
    native_detail : bool
        Decode large JPEGs at full resolution so that noise and fine focus are measured on native
        pixels (slower: about one full decode more per photo). Off by default: large JPEGs are
        decoded at reduced scale in the DCT domain.
    max_pixels : int
        Decompression-bomb limit; larger images are refused before decoding.
    threads : int
        Measure groups run on this many threads (default: 2, or 1 on a one-core machine), and so does
        an engine that takes a thread count (effnet's onnxruntime session). Use 1 when running several
        inspectors in parallel processes.
    **engine_options
        Passed to the engine's factory (e.g. ``model=RUN_DIR`` for deep engines).
    """

    def __init__(self, engine: str | None = None, feedback: str = "rules", *, native_detail: bool = False,
                 max_pixels: int = MAX_PIXELS, threads: int | None = None,
                 feedback_options: dict[str, Any] | None = None, **engine_options: Any) -> None:
        engine = default_engine(engine_options) if engine is None else engine
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}; choose from {sorted(ENGINES)}")
        if feedback not in FEEDBACK_WRITERS:
            raise ValueError(f"unknown feedback writer {feedback!r}; choose from {sorted(FEEDBACK_WRITERS)}")
        self.engine_name = engine
        self.engine = ENGINES[engine](**engine_options)
        #: What this inspector was built with (without ``threads``): enough to build its twin in a
        #: worker process.
        self.options: dict[str, Any] = {"engine": engine, "feedback": feedback, "native_detail": native_detail,
                                         "max_pixels": max_pixels, **engine_options}
        if feedback_options:
            self.options["feedback_options"] = dict(feedback_options)
        self.feedback_name = feedback
        self.write_feedback: FeedbackWriter = FEEDBACK_WRITERS[feedback](**(feedback_options or {}))
        self.native_detail = native_detail
        self.max_pixels = max_pixels
        self.threads = min(2, os.cpu_count() or 1) if threads is None else int(threads)
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads!r}")
        if hasattr(self.engine, "use_threads"):
            self.engine.use_threads(self.threads)
        self._pool: ThreadPoolExecutor | None = None
        self._engine_pool: ThreadPoolExecutor | None = None

    def load(self, source: Source) -> Photo:
        return load_photo(source, native_detail=self.native_detail, max_pixels=self.max_pixels)

    def analyze(self, source: Source) -> Report:
        """Analyse one photo (a path, a PIL image or an array) and return its `Report`.

        Raises
        ------
        picinspector.errors.PicInspectorError
            A typed error naming the file and the reason when the photo cannot be read or analysed.
        """
        photo = source if isinstance(source, Photo) else self.load(source)
        return self.analyze_photo(photo)

    def analyze_photo(self, photo: Photo) -> Report:
        reproducible_opencv()
        prepare = getattr(self.engine, "prepare", None)
        # The engine's pixel-only work (a network run, in C++ without the GIL) overlaps the measures,
        # which leave the second core partly idle: on a 12-MP JPEG it hides most of the network.
        pending = self._engine_thread().submit(prepare, photo) if prepare is not None and self.threads > 1 else None
        try:
            measures = measure_all(photo, executor=self._executor())
        except PicInspectorError:
            raise
        except (ValueError, ZeroDivisionError, FloatingPointError) as exc:
            raise AnalysisError(f"could not measure the image: {exc}", photo.path) from exc
        except MemoryError:
            raise OutOfMemory(f"not enough memory to measure this {photo.width}x{photo.height} image",
                              photo.path) from None
        if prepare is None:
            scores, scene, *more = self.engine.predict(photo, measures)
        else:
            prepared = pending.result() if pending is not None else prepare(photo)
            scores, scene, *more = self.engine.predict(photo, measures, prepared=prepared)
        findings, feedback = self.write_feedback(photo, measures, scores, scene)
        return Report(
            path=photo.path,
            width=photo.width,
            height=photo.height,
            format=photo.format,
            exif=dict(photo.exif),
            scores={k: round(float(v), 1) for k, v in scores.items()},
            scene=scene,
            findings=findings,
            feedback=feedback,
            measures=measures,
            engine=self.engine_name,
            version=__version__,
            extras=dict(more[0]) if more else {},
        )

    def embed(self, source: Source) -> np.ndarray:
        """The photo's embedding (a unit-norm float32 vector) from an engine that has one (effnet).

        Raises
        ------
        NotImplementedError
            The engine has no embedding (classic, dinov2).
        picinspector.errors.PicInspectorError
            As `analyze`, when the photo cannot be read.
        """
        embed = getattr(self.engine, "embed", None)
        if embed is None:
            raise NotImplementedError(f"the {self.engine_name} engine gives no embedding; use "
                                      "Inspector(engine='effnet')")
        photo = source if isinstance(source, Photo) else self.load(source)
        return embed(photo)


    def _executor(self) -> ThreadPoolExecutor | None:
        if self.threads == 1:
            return None
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="picinspector",
                                            initializer=reproducible_opencv)
        return self._pool

    def _engine_thread(self) -> ThreadPoolExecutor:
        if self._engine_pool is None:
            self._engine_pool = ThreadPoolExecutor(1, thread_name_prefix="picinspector-engine")
        return self._engine_pool

    def close(self) -> None:
        """Stop the measure threads (they also stop when the inspector is garbage-collected)."""
        for pool in (self._pool, self._engine_pool):
            if pool is not None:
                pool.shutdown(wait=True)
        self._pool = self._engine_pool = None

    def __enter__(self) -> "Inspector":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def analyze(source: Source, **options: Any) -> Report:
    """Analyse one photo with a fresh `Inspector` (see there for options)."""
    with Inspector(**options) as inspector:
        return inspector.analyze(source)
