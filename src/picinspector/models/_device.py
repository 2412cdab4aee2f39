"""Which torch device to run on."""

from __future__ import annotations

from typing import Any


def pick_device(device: Any = "auto") -> Any:
    """``auto`` (or None): CUDA when available, else Apple MPS, else the CPU; otherwise the named
    device (``cpu``, ``cuda``, ``cuda:1``, ``mps``) as a ``torch.device``."""
    import torch

    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)
