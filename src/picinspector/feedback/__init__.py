"""Feedback writers: findings and a paragraph. Chosen by name; each entry is a factory.

``FEEDBACK_WRITERS[name](**options)`` returns a callable ``(photo, measures, scores, scene) ->
(findings, paragraph)``. ``rules`` (the default) takes no options; ``vlm`` (the neural writer) takes
those of `picinspector.models.vlm.VLMFeedback` (``model_dir``, ``grounded``, ``device`` ...) and
imports torch only when it is built.
"""

from typing import Any, Callable

from . import rules


def _rules(**options: Any) -> Callable:
    if options:
        raise ValueError(f"the rules feedback writer takes no options, got {', '.join(sorted(options))}")
    return rules.write


def _vlm(**options: Any) -> Callable:
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
    from ..models.vlm import VLMFeedback

    return VLMFeedback(**{**options, "device": str(pick_device(options.get("device", "auto")))})


#: Writer name -> factory(**options) -> writer.
FEEDBACK_WRITERS: dict[str, Callable[..., Callable]] = {"rules": _rules, "vlm": _vlm}

__all__ = ["FEEDBACK_WRITERS", "rules"]
