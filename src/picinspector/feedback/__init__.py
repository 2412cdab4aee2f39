"""Feedback writers: findings and a paragraph from the measures. Chosen by name."""

from typing import Callable

from . import rules

#: Writer name -> callable(photo, measures, scores, scene) -> (findings, paragraph).
FEEDBACK_WRITERS: dict[str, Callable] = {"rules": rules.write}

__all__ = ["FEEDBACK_WRITERS", "rules"]
