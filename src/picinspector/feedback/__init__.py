"""Feedback writers: findings and a paragraph. Chosen by name; each entry is a factory.

``FEEDBACK_WRITERS[name](**options)`` returns a callable ``(photo, measures, scores, scene) ->
(findings, paragraph)``. ``rules`` (the default) takes ``calibration`` (a file made by
``picinspector fit-feedback``; default: the shipped one); ``vlm`` (the neural writer) takes
those of `picinspector.models.vlm.VLMFeedback` (``model_dir``, ``grounded``, ``device`` ...) and
imports torch only when it is built.
"""

from typing import Any, Callable

from . import rules


def _rules(calibration: Any = None, **options: Any) -> Callable:
    if options:
        raise ValueError(f"the rules feedback writer takes only a calibration, got {', '.join(sorted(options))}")
    if calibration is None:
        return rules.write
    from .calibration import Calibration

    return rules.RulesWriter(calibration if isinstance(calibration, Calibration) else Calibration.load(calibration))


def _vlm_options(options: dict[str, Any]) -> dict[str, Any]:
    """The options with the device resolved; ImportError with the install hint without the vlm extra."""
    if options.get("model_dir") is None:
        raise ValueError("the vlm feedback writer needs a model: --vlm-model RUN_DIR (a folder made by "
                         "`picinspector train --engine vlm`, or a merged export)")
    try:
        import peft  # noqa: F401 - the writer needs these; fail here with the install hint
        import torch  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"the vlm feedback writer needs PyTorch, transformers and peft ({exc}): pip install "
                          "torch==2.13.0 (CPU build; or the build for your GPU), then pip install "
                          "\"picinspector[vlm]\"") from exc
    from ..models._device import pick_device

    return {**options, "device": str(pick_device(options.get("device", "auto")))}


def _vlm(**options: Any) -> Callable:
    from ..models.vlm import VLMFeedback

    return VLMFeedback(**_vlm_options(options))


def _check_vlm(**options: Any) -> None:
    from ..models.vlm import VLMFeedback

    VLMFeedback.check(**_vlm_options(options))


#: Writer name -> factory(**options) -> writer.
FEEDBACK_WRITERS: dict[str, Callable[..., Callable]] = {"rules": _rules, "vlm": _vlm}

#: Writers whose factory loads a model: name -> a cheap check of the same options (raises what the
#: factory would raise, loads nothing). Others are checked by building them.
FEEDBACK_CHECKS: dict[str, Callable[..., None]] = {"vlm": _check_vlm}

__all__ = ["FEEDBACK_CHECKS", "FEEDBACK_WRITERS", "rules"]
