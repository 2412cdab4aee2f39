"""The effnet engine's heads: small fitted models over the backbone's outputs, read with NumPy only.

Both heads are ``.npz`` files of plain arrays plus a JSON ``meta`` (loaded with
``allow_pickle=False``; nothing is unpickled), made by ``picinspector fit-quality --engine effnet``
and ``picinspector fit-scene``.

- **Quality** (`QualityHead`): a `picinspector.scoring._model.QualityModel` file (the classic
  engine's format and learners) whose input vector is described by ``meta["inputs"]``: the backbone,
  the shorter sides it runs at, which blocks of the graph's ``stats`` output are read at each side
  (`~.export.stats_layout`), and which classic features (`picinspector.scoring._features`) follow.
- **Scene** (`SceneHead`): multinomial logistic regression over ``meta["inputs"]`` (blocks of the
  backbone outputs and classic scene cues), giving the nine SPAQ probabilities.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ...scoring._model import Z_CLIP, ModelFileError, QualityModel, _read_npz, save_npz
from ._config import get_backbone

#: The heads shipped in the package.
QUALITY_HEAD = Path(__file__).with_name("quality_head.npz")
SCENE_HEAD = Path(__file__).with_name("scene_head.npz")

SCENE_FORMAT = "picinspector-scene-head"
SCENE_FORMAT_VERSION = 1


@dataclass(frozen=True)
class InputSpec:
    """What a head reads, in order: for each shorter side, the listed blocks of ``stats`` (names of
    `~.export.stats_layout`, e.g. ``"stage3.mean"``) or ``"embedding"`` / ``"probs"`` / ``"logits"``;
    then the named classic features or measures."""

    backbone: str
    sides: tuple[int, ...]
    blocks: tuple[str, ...]  # read at every side
    classic: tuple[str, ...] = ()  # names of picinspector.scoring._features.features or measures
    classic_source: str = "features"  # "features" (quality model features) or "measures" (raw values)
    groups: tuple[str, ...] = ()  # ImageNet class groups summed (see _imagenet.GROUPS), log-probability

    def to_json(self) -> dict[str, Any]:
        return {"backbone": self.backbone, "sides": list(self.sides), "blocks": list(self.blocks),
                "classic": list(self.classic), "classic_source": self.classic_source, "groups": list(self.groups)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "InputSpec":
        return cls(d["backbone"], tuple(int(s) for s in d["sides"]), tuple(d["blocks"]), tuple(d.get("classic", ())),
                   d.get("classic_source", "features"), tuple(d.get("groups", ())))

    def names(self) -> list[str]:
        """One name per input value (for the model file's feature list)."""
        from .export import stats_layout

        cfg = get_backbone(self.backbone)
        layout = stats_layout(cfg)
        widths = {"embedding": cfg.arch.head_channels, "probs": cfg.arch.num_classes,
                  "logits": cfg.arch.num_classes}
        out = []
        for side in self.sides:
            for block in self.blocks:
                n = layout[block][1] - layout[block][0] if block in layout else widths[block]
                out += [f"s{side}.{block}.{i}" for i in range(n)]
            out += [f"s{side}.group.{g}" for g in self.groups]
        return out + [f"classic.{c}" for c in self.classic]


def _backbone_parts(spec: InputSpec, stats: np.ndarray, emb: np.ndarray, logits: np.ndarray) -> list[np.ndarray]:
    """The backbone blocks of ``spec`` at one side, from arrays with any leading shape."""
    from ._imagenet import group_log_probs
    from .export import stats_layout

    layout = stats_layout(get_backbone(spec.backbone))
    parts: list[np.ndarray] = []
    probs = _softmax(logits) if "probs" in spec.blocks or spec.groups else None
    for block in spec.blocks:
        if block in layout:
            a, b = layout[block]
            parts.append(stats[..., a:b])
        elif block == "embedding":
            parts.append(emb)
        elif block == "logits":
            parts.append(logits)
        elif block == "probs":
            parts.append(probs)
        else:
            raise ModelFileError(f"unknown input block {block!r}")
    if spec.groups:
        parts.append(group_log_probs(probs, spec.groups))
    return parts


def assemble(spec: InputSpec, outputs: Mapping[int, Any], classic: Mapping[str, Any]) -> np.ndarray:
    """One photo's input vector for ``spec``: the graph outputs at each side (``{side: Outputs}``, or
    mappings with ``stats``, ``embedding``, ``logits``) and its classic values (name -> number)."""
    parts: list[np.ndarray] = []
    for side in spec.sides:
        o = outputs[side]
        parts += _backbone_parts(spec, _field(o, "stats"), _field(o, "embedding"), _field(o, "logits"))
    parts.append(np.array([_number(c, classic) for c in spec.classic]))
    return np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in parts])


def assemble_batch(spec: InputSpec, outputs: Mapping[int, Any], classic: np.ndarray | None) -> np.ndarray:
    """Many photos' input rows: ``outputs[side]`` holds (n, .) ``stats``, ``embedding`` and ``logits``
    (e.g. a training feature set), ``classic`` the (n, len(spec.classic)) classic values."""
    parts: list[np.ndarray] = []
    for side in spec.sides:
        o = outputs[side]
        parts += _backbone_parts(spec, _field(o, "stats"), _field(o, "embedding"), _field(o, "logits"))
    if spec.classic:
        parts.append(np.asarray(classic, dtype=np.float64))
    return np.concatenate([np.asarray(p, dtype=np.float64) for p in parts], 1)


def _field(o: Any, name: str) -> np.ndarray:
    return np.asarray(o[name] if isinstance(o, Mapping) else getattr(o, name))


def _number(name: str, values: Mapping[str, Any]) -> float:
    v = values.get(name)
    return math.nan if v is None else float(v)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def _known_inputs(meta: Mapping[str, Any]) -> frozenset[str]:
    """The input names a quality head's meta can ask for: its spec's backbone parts, and the classic
    ones this version computes (quality-model features or measures, as ``classic_source`` says)."""
    from ...measures import measure_units
    from ...scoring._features import known_feature_names

    spec = InputSpec.from_json(meta["inputs"])
    classic = known_feature_names() if spec.classic_source == "features" else frozenset(measure_units())
    return frozenset(n for n in spec.names() if not n.startswith("classic.") or n[len("classic."):] in classic)


class QualityHead:
    """Quality 0-1 from the backbone outputs and the classic features (a `QualityModel` file)."""

    def __init__(self, model: QualityModel) -> None:
        if "inputs" not in model.meta:
            raise ModelFileError("not an effnet quality head (its meta has no 'inputs')")
        self.model = model
        self.spec = InputSpec.from_json(model.meta["inputs"])

    @classmethod
    def load(cls, path: str | Path = QUALITY_HEAD) -> "QualityHead":
        return cls(QualityModel.load(path, known=_known_inputs))

    def predict(self, outputs: Mapping[int, Any], classic: Mapping[str, float]) -> float:
        """Prediction on the 0-1 target scale (not clipped)."""
        return float(self.model.predict_raw(assemble(self.spec, outputs, classic)[None])[0])


@dataclass
class SceneHead:
    """Multinomial logistic regression: ``softmax(((x - mean) / scale) @ coef + intercept)``."""

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def spec(self) -> InputSpec:
        return InputSpec.from_json(self.meta["inputs"])

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @classmethod
    def load(cls, path: str | Path = SCENE_HEAD) -> "SceneHead":
        path = Path(path)
        if not path.is_file():
            raise ModelFileError(f"{path}: scene head not found; fit one with `picinspector fit-scene`")
        try:
            arrays = dict(_read_npz(path))  # sizes checked before anything is allocated, nothing unpickled
            meta = json.loads(str(arrays.pop("meta")))
        except (OSError, ValueError, KeyError) as exc:
            raise ModelFileError(f"{path}: not a readable scene head ({exc})") from exc
        if meta.get("format") != SCENE_FORMAT or meta.get("format_version") != SCENE_FORMAT_VERSION:
            raise ModelFileError(f"{path}: not a {SCENE_FORMAT} v{SCENE_FORMAT_VERSION} file")
        n = len(meta["classes"])
        if arrays["coef"].shape[1] != n or arrays["intercept"].shape != (n,):
            raise ModelFileError(f"{path}: coefficient shapes do not match {n} classes")
        return cls(meta, arrays)

    def save(self, path: str | Path) -> None:
        save_npz(path, self.meta, self.arrays)

    def predict_x(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (n, classes) for raw input rows (n, d)."""
        a = self.arrays
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        z = (np.where(np.isfinite(x), x, a["x_fill"]) - a["x_mean"]) / a["x_scale"]
        z = np.clip(z, -Z_CLIP, Z_CLIP)  # as the training's standardisation (`Preprocess`) did
        return _softmax(z @ a["coef"].astype(np.float64) + a["intercept"])

    def predict(self, outputs: Mapping[int, Any], classic: Mapping[str, float]) -> dict[str, float]:
        p = self.predict_x(assemble(self.spec, outputs, classic)[None])[0]
        return dict(zip(self.classes, (float(v) for v in p)))


def classic_values(spec: InputSpec, measures: Mapping[str, Any]) -> dict[str, float]:
    """The classic values a head reads, from one photo's measures."""
    if not spec.classic:
        return {}
    if spec.classic_source == "features":
        from ...scoring._features import features

        return features(dict(measures))
    return {k: measures.get(k) for k in spec.classic}


def needed_sides(*specs: InputSpec) -> list[int]:
    """Every shorter side any of ``specs`` runs the backbone at, ascending."""
    return sorted({s for spec in specs for s in spec.sides})


def check_same_backbone(specs: Sequence[InputSpec]) -> str:
    names = {s.backbone for s in specs}
    if len(names) != 1:
        raise ModelFileError(f"the heads were fitted on different backbones: {sorted(names)}")
    return names.pop()
