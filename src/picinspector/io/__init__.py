"""Loading every photo a user has into a `Photo`."""

from ._photo import WORKING_LONG_SIDE, Photo, linear_to_srgb, srgb_to_linear

__all__ = ["WORKING_LONG_SIDE", "Photo", "linear_to_srgb", "srgb_to_linear"]
