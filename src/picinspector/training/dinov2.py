"""Training the DINOv2 multi-task model: the backbone-agnostic trainer of `~.multitask`, under the
names DINOv2-only versions had (``train_dinov2``, ``TrainOptions`` ...). New code imports `~.multitask`."""

from .multitask import (MODES, TrainOptions, Targets, TrainResult, multitask_loss, read_split_file,  # noqa: F401
                        split_samples, train_dinov2, train_multitask, validation_metrics)

__all__ = ["MODES", "TrainOptions", "Targets", "TrainResult", "multitask_loss", "read_split_file", "split_samples",
           "train_dinov2", "train_multitask", "validation_metrics"]
