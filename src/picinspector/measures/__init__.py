"""Training-free image measures. Each module registers one group in ``MEASURE_GROUPS``."""

from ._registry import MEASURE_GROUPS, MeasureGroup, Output, measure_all, measure_group, measure_units

# Importing a module registers its group; the order here is the order they run.
from . import _focus, _noise, _exposure, _contrast, _color, _compression, _scene_cues, _nss, _gmlog  # noqa: E402,F401

__all__ = ["MEASURE_GROUPS", "MeasureGroup", "Output", "measure_all", "measure_group", "measure_units"]
