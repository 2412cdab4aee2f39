"""Scene cues as measures: the raw evidence behind the cue-based scene estimate.

The cues are computed by :func:`picinspector.scene.measure_cues` (see its cue functions for the
method and references); registering them as a measure group puts them in every report, lets them
run beside the other groups, and lets the classic engine turn them into scene probabilities
without measuring twice.
"""

from __future__ import annotations

from ..io._photo import Photo
from ..scene import measure_cues
from ._registry import measure_group

_CUES = [
    ("face_count", "count", "Frontal faces found (OpenCV Haar cascade, Viola & Jones 2001) on a 256-px copy"),
    ("face_area_fraction", "0-1", "Area of the largest face box over the frame"),
    ("mean_lightness", "L* 0-100", "Mean lightness of the 256-px copy used by the scene cues"),
    ("dark_fraction", "0-1", "Share of pixels with L* < 25"),
    ("point_lights", "count", "Small bright blobs on a dark background (lamps, windows at night)"),
    ("exif_low_light", "0, 0.5 or 1", "EXIF says low light: exposure >= 1/15 s and/or ISO >= 1600"),
    ("sky_fraction", "0-1", "Share of the frame that is smooth, bright sky connected to the top edge"),
    ("sky_top_fraction", "0-1", "Share of the top tenth that passes the sky test"),
    ("sky_bottom_fraction", "0-1", "Share of the bottom tenth that passes the sky test"),
    ("horizon", "fraction of the height", "Median depth of the sky from the top"),
    ("cardinal_edge_ratio", "0-1", "Share of gradient energy within 10 degrees of horizontal or vertical"),
    ("vertical_edge_ratio", "0-1", "Share of gradient energy on vertical edges"),
    ("edge_density", "luma change per pixel", "Mean gradient magnitude of the 256-px copy"),
    ("green_fraction", "0-1", "Share of pixels with a foliage hue and enough saturation"),
    ("textured_green_fraction", "0-1", "Share of pixels that are green and textured (vegetation)"),
    ("centre_contrast", "Lab distance", "Colour difference between the centre and its surround"),
    ("surround_texture", "luma change per pixel", "Mean texture of the ring around the centre"),
    ("centre_texture_ratio", "ratio", "Centre texture over surround texture"),
    ("centre_bloom", "0-1", "Share of the centre that is saturated, non-green colour (flowers, objects)"),
    ("warmth", "Lab units", "Mean b* plus half the mean a* over mid-tone pixels"),
    ("fur_fraction", "0-1", "Share of pixels with moderate, fine, unsaturated texture (fur-like)"),
]


@measure_group("scene_cues", outputs=_CUES, cost=27)
def measure_scene_cues(photo: Photo) -> dict:
    """Registered adapter: :func:`picinspector.scene.measure_cues` on the working image and EXIF."""
    return measure_cues(photo.rgb, photo.exif)
