"""Deep models: the DINOv2 multi-task engine, the VLM feedback writer, and where their weights come from.

Importing this package does not import torch; the model modules do, when they are used.
"""

from ._weights import ResolvedWeights, WeightsNotFound, hub_offline, hub_reachable, resolve_weights

__all__ = ["ResolvedWeights", "WeightsNotFound", "hub_offline", "hub_reachable", "resolve_weights"]
