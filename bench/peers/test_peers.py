"""Tests of the peer benchmark's own code (part of the main suite; alone:
``.venv/bin/python -m pytest bench/peers -q``). The BRISQUE and PIQE tests skip when the peers are not
installed (``make bench-peers`` installs them)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _peers  # noqa: E402


def _peer_distortions():
    spec = importlib.util.spec_from_file_location("_peer_distortions", HERE / "distortions.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _photo() -> np.ndarray:
    """A real photo: scikit-image's astronaut through picinspector.samples (skips without scikit-image)."""
    pytest.importorskip("skimage", reason="the sample photo comes from scikit-image (the 'samples' extra)")
    from picinspector.samples import load_sample

    return np.ascontiguousarray(load_sample("astronaut"))


# --- statistics --------------------------------------------------------------------------------------

def test_agreement_flips_sign_for_lower_is_better():
    rng = np.random.default_rng(1)
    mos = rng.uniform(0, 1, 200)
    good = mos + rng.normal(0, 0.1, mos.size)
    up = _peers.agreement(good, mos, lower_better=False)
    down = _peers.agreement(-good, mos, lower_better=True)
    assert up["srcc"] > 0.8 and up["krcc"] > 0.6
    keys = ("srcc", "plcc", "krcc")
    assert [down[k] for k in keys] == pytest.approx([up[k] for k in keys])
    assert up["fit"] == "logistic4" and up["plcc"] > 0.8
    assert _peers.agreement(-good, mos, lower_better=False)["srcc"] == pytest.approx(-up["srcc"])


def test_run_end_to_end_on_a_made_dataset(tmp_path, capsys):
    """PicInspector on photos blurred more and more, labelled with falling MOS: positive agreement."""
    import cv2
    from PIL import Image

    import run

    img = _photo()[::2, ::2]
    (tmp_path / "images").mkdir()
    lines = ["image,mos,subset"]
    for i, sigma in enumerate(np.linspace(0, 4, 8)):
        out = img if sigma == 0 else cv2.GaussianBlur(img, (0, 0), float(sigma))
        Image.fromarray(out).save(tmp_path / "images" / f"p{i}.jpg", quality=95)
        lines.append(f"p{i}.jpg,{1 - i / 8:.3f},made")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    # out-of-fold predictions of a fit-quality report join as a row (reversed here: SRCC -1)
    import json

    report = tmp_path / "cv.json"
    report.write_text(json.dumps({"chosen": "c", "cv": {"c": {"srcc_folds": [0, 0]}},
                                  "oof": {"c": {str(tmp_path / "images" / f"p{i}.jpg"): i / 8 for i in range(8)}}}))
    run.main(["--dataset", str(tmp_path), "--n", "8", "--methods", "picinspector", "--oof", str(report)])
    lines = capsys.readouterr().out.splitlines()
    row = next(line for line in lines if line.startswith("| PicInspector quality"))
    srcc = float(row.split("|")[2])
    assert srcc > 0.9
    row = next(line for line in lines if line.startswith("| PicInspector effnet head c, out-of-fold (2-fold"))
    assert float(row.split("|")[2]) == pytest.approx(-1.0)


def test_level_srcc_directions():
    ld = _peer_distortions()
    assert ld.level_srcc([90, 80, 70, 60, 50], lower_better=False) == pytest.approx(-1)
    assert ld.level_srcc([10, 20, 30, 40, 50], lower_better=True) == pytest.approx(-1)
    assert ld.level_srcc([5, 5, 5, 5, 5], lower_better=True) == 0.0


def test_methods_registry_rejects_unknown_names():
    assert _peers.parse_methods("brisque, piqe") == ["brisque", "piqe"]
    with pytest.raises(ValueError, match="niqe"):
        _peers.parse_methods("brisque,niqe")


# --- peers (skip when not installed) -----------------------------------------------------------------

def test_brisque_shim_gives_flat_features_and_worse_score_when_blurred():
    pytest.importorskip("brisque")
    import cv2
    from PIL import Image

    model = _peers._flat_brisque_class()()
    feats = model.calculate_brisque_features(np.random.default_rng(2).uniform(0, 1, (64, 64)), 7, 7 / 6)
    assert feats.dtype == np.float64 and feats.shape == (18,)
    score = _peers.METHODS["brisque"].make(1)
    img = _photo()
    sharp = score(Image.fromarray(img))
    blurred = score(Image.fromarray(cv2.GaussianBlur(img, (0, 0), 3)))
    assert np.isfinite(sharp) and blurred > sharp + 5  # lower is better


def test_piqe_reads_rgb_in_the_right_channel_order_and_worsens_with_noise():
    pytest.importorskip("pypiqe")
    import cv2
    from PIL import Image
    from pypiqe import piqe

    img = _photo()
    score = _peers.METHODS["piqe"].make(1)
    clean = score(Image.fromarray(img))
    assert clean == pytest.approx(piqe(np.ascontiguousarray(img[..., ::-1]))[0])  # pypiqe expects BGR
    noisy = np.clip(img + np.random.default_rng(3).normal(0, 20, img.shape), 0, 255).astype(np.uint8)
    assert score(Image.fromarray(noisy)) > clean  # lower is better
    swapped = piqe(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))[0]  # what passing RGB straight in would give
    assert swapped != pytest.approx(clean)  # so the order check above can tell the two apart
