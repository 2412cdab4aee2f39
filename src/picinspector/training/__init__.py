"""Training and evaluation helpers (not imported by ``picinspector.analyze``).

`metrics` holds the agreement metrics (SRCC, KRCC, PLCC, RMSE after a 4-parameter logistic) and the
scene-label metrics; it needs only numpy and scipy.
"""

from .metrics import (
    average_precision,
    krcc,
    logistic4,
    logistic4_fit,
    mean_average_precision,
    per_class_average_precision,
    plcc,
    quality_metrics,
    rmse,
    srcc,
    top1_any_hit,
)

__all__ = [
    "average_precision", "krcc", "logistic4", "logistic4_fit", "mean_average_precision",
    "per_class_average_precision", "plcc", "quality_metrics", "rmse", "srcc", "top1_any_hit",
]
