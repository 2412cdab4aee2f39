"""Input checks shared by the measure modules."""

from __future__ import annotations

import math

import cv2
import numpy as np


def check_gray(gray, min_side: int, what: str, name: str = "gray") -> np.ndarray:
    """A C-contiguous float32 (H, W) copy of ``gray``, or ValueError naming the input, the measure
    (``what``) and the reason."""
    gray = np.asarray(gray)
    if gray.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (H, W) array, got shape {gray.shape}")
    if min(gray.shape) < min_side:
        raise ValueError(f"{name} is too small for {what}: {gray.shape}, need >= {min_side} px a side")
    gray = np.ascontiguousarray(gray, dtype=np.float32)
    if not math.isfinite(float(cv2.sumElems(gray)[0])):
        raise ValueError(f"{name} contains non-finite values")
    return gray
