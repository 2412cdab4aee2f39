"""ImageNet-1k class names, and groups of classes that speak for a SPAQ scene.

The names are in ``imagenet_classes.txt`` beside this module (written once from timm's data files; see
`~.export.write_class_names`). ImageNet's WordNet order puts the animals first (classes 0-397), the
foods at 924-969, geological formations at 970-980, three kinds of person at 981-983 and plants and
fungi at 984-997; the other groups below were assigned by reading the class names. The scene head
reads each group's total probability (in log form), next to whatever else it was fitted on.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

CLASS_NAMES_FILE = Path(__file__).with_name("imagenet_classes.txt")


def _r(a: int, b: int) -> tuple[int, ...]:
    return tuple(range(a, b + 1))


#: Group -> ImageNet class indices.
GROUPS: dict[str, tuple[int, ...]] = {
    "animal": _r(0, 397),
    "food": (*_r(924, 969), 923),  # dishes, fruit, drinks; 923 "plate" (a plate of food)
    "landscape": _r(970, 980),  # alp, bubble, cliff, coral reef, geyser, lakeside, promontory, sandbar, ...
    "plant": (*_r(984, 997), 738),  # rapeseed, daisy, ..., fungi; 738 "pot" (a flowerpot)
    "person": (981, 982, 983,  # ballplayer, groom, scuba diver; then things worn on a person
               399, 400, 433, 439, 445, 451, 452, 457, 459, 465, 474, 501, 515, 518, 552, 560, 568, 570, 578,
               601, 608, 610, 614, 617, 629, 638, 639, 643, 652, 655, 667, 678, 679, 689, 691, 697, 735, 775,
               796, 808, 834, 836, 837, 841, 842, 869, 887, 903, 906),
    "building": (410, 415, 424, 425, 437, 442, 449, 454, 460, 467, 483, 497, 498, 500, 509, 525, 536, 538, 557,
                 562, 580, 582, 634, 637, 640, 660, 663, 668, 682, 698, 704, 706, 716, 718, 727, 733, 743, 755,
                 762, 788, 821, 825, 832, 839, 853, 858, 860, 863, 865, 873, 888, 900, 912, 915, 919, 920),
    "vehicle": (403, 404, 405, 407, 436, 444, 466, 468, 472, 484, 510, 511, 547, 554, 555, 565, 569, 576, 609,
                625, 627, 628, 654, 656, 657, 661, 665, 670, 671, 675, 694, 705, 717, 734, 751, 757, 779, 780,
                812, 814, 817, 820, 829, 833, 864, 866, 867, 870, 871, 874, 880, 895, 908, 914),
    "interior": (406, 421, 423, 431, 434, 435, 453, 492, 493, 495, 516, 520, 526, 532, 534, 539, 548, 556, 559,
                 564, 579, 598, 619, 624, 648, 651, 664, 669, 687, 721, 736, 741, 750, 753, 760, 765, 782, 789,
                 794, 799, 811, 819, 827, 831, 846, 851, 854, 857, 861, 892, 894, 896, 897, 904, 905),
}
_GROUPED = {i for idx in GROUPS.values() for i in idx}
#: Everything else: man-made objects (tools, bottles, instruments, toys, ...), still-life subjects.
GROUPS["object"] = tuple(i for i in range(1000) if i not in _GROUPED)

#: Floor for a group's probability before the log (so that an absent group is a finite value).
LOG_FLOOR = 1e-4


@lru_cache(maxsize=1)
def class_names() -> tuple[str, ...]:
    """The 1000 class names (first lemma of each), in the classifier's order."""
    names = []
    for line in CLASS_NAMES_FILE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            index, _wnid, lemmas = line.split("\t")
            if int(index) != len(names):
                raise ValueError(f"{CLASS_NAMES_FILE}: class {index} out of order")
            names.append(lemmas.split(",")[0].strip())
    if len(names) != 1000:
        raise ValueError(f"{CLASS_NAMES_FILE}: {len(names)} classes instead of 1000")
    return tuple(names)


@lru_cache(maxsize=1)
def _group_matrix(groups: tuple[str, ...]) -> np.ndarray:
    m = np.zeros((1000, len(groups)))
    for j, g in enumerate(groups):
        m[list(GROUPS[g]), j] = 1.0
    return m


def group_log_probs(probs: np.ndarray, groups: tuple[str, ...] | list[str]) -> np.ndarray:
    """``log(max(sum of the group's class probabilities, LOG_FLOOR))`` per group, for (..., 1000)."""
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise ValueError(f"unknown ImageNet groups {unknown}; choose from {sorted(GROUPS)}")
    return np.log(np.maximum(np.asarray(probs, np.float64) @ _group_matrix(tuple(groups)), LOG_FLOOR))
