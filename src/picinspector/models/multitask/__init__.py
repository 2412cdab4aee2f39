"""The multi-task model (six scores on 0-1 and nine scene logits from one backbone), any backbone family.

- `._config` (no torch): the run folder's ``config.json``, preprocessing, head shapes.
- `.backbones` (torch): the backbone families by name (``effnet``: EfficientNet-Lite0/1/2 from the
  registry packages; ``dinov2``), what each freezes, pools and normalises.
- `._torch` (torch): `MultiTaskNet`, saving and loading (safetensors + JSON).
- `.export` (torch, onnx): the fine-tuned network as one ONNX graph, which ``--engine effnet --model
  RUN_DIR`` serves on onnxruntime without torch.

Importing this package imports only the torch-free config module.
"""

from ._config import (CONFIG_FILE, FORMAT, FORMAT_VERSION, ONNX_FILE, WEIGHTS_FILE, HeadConfig, ModelConfig,
                      Preprocess, exif_vector, read_config, write_config)

__all__ = ["CONFIG_FILE", "FORMAT", "FORMAT_VERSION", "ONNX_FILE", "WEIGHTS_FILE", "HeadConfig", "ModelConfig",
           "Preprocess", "exif_vector", "read_config", "write_config"]
