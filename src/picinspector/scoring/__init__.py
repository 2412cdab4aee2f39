"""Scores from measures: the five attribute scores and the overall quality of the classic engine."""

from ._attributes import ATTRIBUTE_SCORES, attribute_scores
from ._classic import ClassicEngine
from ._quality import QUALITY_TERMS, quality_score, quality_terms

__all__ = ["ATTRIBUTE_SCORES", "attribute_scores", "ClassicEngine", "QUALITY_TERMS", "quality_score",
           "quality_terms"]
