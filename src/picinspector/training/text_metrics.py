"""Text-overlap metrics for generated descriptions (ROUGE), through the ``rouge-score`` package."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: The ROUGE variants reported, in order.
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def rouge(predictions: Sequence[str], references: Sequence[str]) -> dict[str, Any]:
    """ROUGE-1, ROUGE-2 and ROUGE-L F-measures of predictions against references.

    Parameters
    ----------
    predictions : sequence of str
        Generated texts.
    references : sequence of str
        One reference per prediction.

    Returns
    -------
    dict
        ``{"rouge1", "rouge2", "rougeL"}``: the mean F-measure over the pairs (0-1), and
        ``"per_item"``: the same three keys, each a list with one F-measure per pair; ``"n"``: the
        number of pairs.

    Raises
    ------
    ValueError
        Different lengths, or no pairs.
    TypeError
        A text that is not a string.
    ImportError
        ``rouge-score`` is not installed.

    Notes
    -----
    Scored with ``rouge_score.rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"],
    use_stemmer=True)``: lower-cased, split on non-alphanumerics and Porter-stemmed. ROUGE-N counts
    overlapping n-grams, ROUGE-L the longest common subsequence; the F-measure is the harmonic mean of
    precision (over the prediction) and recall (over the reference). A pair where either text has no
    token scores 0. ``rougeL`` is sentence-level LCS over the whole text, not the summary-level
    ``rougeLsum``.

    References
    ----------
    C.-Y. Lin, "ROUGE: A Package for Automatic Evaluation of Summaries", Text Summarization Branches
    Out (ACL 2004 workshop), pp. 74-81, 2004. https://aclanthology.org/W04-1013
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references; expected one each")
    if not predictions:
        raise ValueError("no texts to score")
    for what, texts in (("prediction", predictions), ("reference", references)):
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"{what} {i} is a {type(text).__name__}, not a string")
    try:
        from rouge_score import rouge_scorer
    except ImportError as exc:
        raise ImportError("ROUGE needs the rouge-score package: pip install rouge-score") from exc

    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    per_item: dict[str, list[float]] = {name: [] for name in ROUGE_TYPES}
    for prediction, reference in zip(predictions, references):
        scores = scorer.score(reference, prediction)  # (target, prediction)
        for name in ROUGE_TYPES:
            per_item[name].append(float(scores[name].fmeasure))
    out: dict[str, Any] = {name: sum(values) / len(values) for name, values in per_item.items()}
    out["per_item"] = per_item
    out["n"] = len(predictions)
    return out
