"""Exposure copies of training photos (`picinspector.training.exposure_copies`): the shift itself, which
photos get copies, the files, the targets priced from opinion scores, and a head fitted with them."""

import numpy as np
import pytest
from PIL import Image, ImageCms

from picinspector.training.exposure_copies import (PRICED_BY, CopyList, ExposureCopies, copy_path, copy_targets,
                                                   make_copies, shift_exposure)


def _srgb_decode(v):  # IEC 61966-2-1, written out here as the known answer
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _srgb_encode(v):
    return np.where(v <= 0.0031308, 12.92 * v, 1.055 * v ** (1 / 2.4) - 0.055)


def test_one_stop_doubles_the_linear_light_and_clips_at_white():
    grey = np.full((2, 2, 3), 0.5, np.float32)
    up = shift_exposure(grey, 1.0)
    assert up[0, 0, 0] == pytest.approx(_srgb_encode(2 * _srgb_decode(0.5)), abs=1e-4)  # 0.686
    assert shift_exposure(grey, -1.0)[0, 0, 0] == pytest.approx(_srgb_encode(_srgb_decode(0.5) / 2), abs=1e-4)
    assert shift_exposure(np.full((1, 1, 3), 0.9, np.float32), 4.0).min() == pytest.approx(1.0, abs=1e-6)  # clipped
    assert shift_exposure(np.full((1, 1, 3), 0.9, np.float32), 4.0).max() <= 1.0
    ramp = np.linspace(0, 0.6, 50, dtype=np.float32).reshape(1, 50, 1).repeat(3, 2)
    assert np.allclose(shift_exposure(shift_exposure(ramp, -1.0), 1.0), ramp, atol=1e-5)  # no clipping: undone
    assert np.all(np.diff(shift_exposure(ramp, 1.5)[0, :, 0]) >= 0)  # order of tones kept


def test_which_photos_get_copies_depends_on_the_name_and_seed_alone():
    rule = ExposureCopies(fraction=0.25, seed=0)
    names = [f"ss01_{i:04d}.jpg" for i in range(4000)]
    picked = rule.picked(names)
    assert 0.22 < picked.mean() < 0.28
    sub = names[::7][::-1]  # another list, another order: the same choice for each photo
    assert np.array_equal(rule.picked(sub), picked[::7][::-1])
    assert np.array_equal(rule.picked([f"/data/x/{n}" for n in names[:50]]), picked[:50])  # a path: its name
    assert not np.array_equal(ExposureCopies(seed=1).picked(names), picked)
    assert ExposureCopies.from_json(rule.to_json()) == rule  # as a head's meta records it
    with pytest.raises(ValueError, match="non-zero"):
        ExposureCopies(evs=(0.0, 1.0))
    with pytest.raises(ValueError, match="fraction"):
        ExposureCopies(fraction=0.0)


def test_copies_are_written_once_brighter_and_darker_and_a_bad_photo_gets_none(tmp_path):
    rng = np.random.default_rng(0)
    sources = []
    for i in range(6):
        p = tmp_path / f"p{i}.jpg"
        Image.fromarray(rng.integers(60, 190, (48, 64, 3), dtype=np.uint8)).save(p, quality=90)
        sources.append(str(p))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    sources.append(str(bad))
    rule = ExposureCopies(evs=(-2.0, -1.0, 1.0, 2.0), fraction=1.0)
    made = make_copies(sources, tmp_path / "copies", rule)
    assert len(made.paths) == 6 * 4 and set(made.source.tolist()) == set(range(6))  # none of the bad file
    assert made.paths[0].endswith(".ev-2.jpg") and copy_path(tmp_path / "copies", sources[0], 1.0).is_file()
    (tmp_path / "other").mkdir()  # a photo of the same name in another folder gets copies of its own
    assert copy_path(tmp_path / "copies", str(tmp_path / "other" / "p0.jpg"), 1.0) != \
        copy_path(tmp_path / "copies", sources[0], 1.0)
    for i in range(6):
        means = {ev: np.asarray(Image.open(made.paths[j])).mean()
                 for j, ev in zip(np.flatnonzero(made.source == i), made.ev[made.source == i])}
        own = np.asarray(Image.open(sources[i])).mean()
        assert means[-2.0] < means[-1.0] < own < means[1.0] < means[2.0]
        assert Image.open(made.paths[i * 4]).size == (64, 48)
    tagged = tmp_path / "tagged.jpg"  # a photo with a colour profile keeps it in its copies
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.open(sources[0]).save(tagged, quality=90, icc_profile=profile)
    one = make_copies([str(tagged)], tmp_path / "tagged", ExposureCopies(evs=(1.0,), fraction=1.0))
    assert Image.open(one.paths[0]).info.get("icc_profile") == profile
    stamps = [p.stat().st_mtime_ns for p in (tmp_path / "copies").iterdir()]
    again = make_copies(sources, tmp_path / "copies", rule)  # a rerun keeps the files it finds
    assert again.paths == made.paths and [p.stat().st_mtime_ns for p in (tmp_path / "copies").iterdir()] == stamps
    assert not list((tmp_path / "copies").glob("*.part"))


def _priced_problem():
    rng = np.random.default_rng(1)
    n = 200
    clip, crush = rng.uniform(0, 80, n), rng.uniform(0, 80, n)
    y = np.clip(0.8 - 0.004 * clip - 0.002 * crush + rng.normal(0, 0.02, n), 0, 1)
    src = np.repeat(np.arange(n), 2)
    ev = np.tile([-1.0, 1.0], n)
    bright, dark = PRICED_BY[1], PRICED_BY[-1]  # the measures that price brighter and darker copies
    copied = {bright: np.where(ev > 0, np.minimum(clip[src] + 30, 100), clip[src]),
              dark: np.where(ev < 0, np.minimum(crush[src] + 30, 100), crush[src])}
    real = {bright: clip, dark: crush}
    return y, real, CopyList([f"c{i}" for i in range(2 * n)], src, ev), copied


def test_a_copy_is_priced_by_what_people_give_for_more_clipping_and_never_above_its_photo():
    y, real, copies, copied = _priced_problem()
    assert set(PRICED_BY.values()) == set(real)
    train = np.arange(0, 200, 2)  # half the photos train
    rule = ExposureCopies(evs=(-1.0, 1.0), scale=1.0)
    rows, t = copy_targets(rule, y, real, train, copies, copied)
    assert set(copies.source[rows].tolist()) == set(train.tolist())  # copies of training photos only
    own = y[copies.source[rows]]
    assert np.all(t <= own + 1e-12)
    up, down = copies.ev[rows] > 0, copies.ev[rows] < 0
    # 30 more points of clipped highlights cost about 30 x 0.004 = 0.12 on this data; dark area half that
    assert np.median(own[up] - t[up]) == pytest.approx(0.12, abs=0.04)
    assert np.median(own[down] - t[down]) == pytest.approx(0.06, abs=0.03)
    _, half = copy_targets(ExposureCopies(evs=(-1.0, 1.0), scale=0.5), y, real, train, copies, copied)
    assert np.allclose(own - half, 0.5 * (own - t))
    _, none = copy_targets(ExposureCopies(evs=(-1.0, 1.0), scale=0.0), y, real, train, copies, copied)
    assert np.array_equal(none, own)


def test_a_head_fitted_with_copies_scores_them_lower_and_is_cross_validated_on_real_photos():
    from test_effnet_engine import _fake_features

    from picinspector.io import load_photo
    from picinspector.measures import measure_all
    from picinspector.models.effnet.export import stats_layout
    from picinspector.models.effnet import get_backbone
    from picinspector.training import effnet as fit

    rng = np.random.default_rng(2)
    n = 120
    y, real, _, _ = _priced_problem()
    y, clip = y[:n], real[PRICED_BY[1]][:n]
    feats = _fake_features(n, rng, y)
    base = measure_all(load_photo(rng.uniform(0, 255, (64, 64, 3)).astype(np.uint8)))
    measures = [{**base, PRICED_BY[1]: float(c), PRICED_BY[-1]: 0.0} for c in clip]
    rule = ExposureCopies(evs=(1.0,), fraction=0.5, scale=1.0)
    picked = np.flatnonzero(rule.picked([f"p{i}.jpg" for i in range(n)]))
    a, b = stats_layout(get_backbone("efficientnet-lite0"))["stage3.mean"]
    cfeats = {384: {k: v[picked].copy() for k, v in feats[384].items()}}
    cfeats[384]["stats"][:, a:b] += 4.0  # what the network sees in a brightened copy
    copies = fit.QualityCopies(rule, CopyList([f"p{i}.ev+1.jpg" for i in picked], picked, np.ones(len(picked))),
                               cfeats, [{**measures[i], PRICED_BY[1]: 95.0} for i in picked])
    plain = fit.QualityCandidate((384,), ("stage2.mean", "stage3.mean"), True, pca=None)
    with_copies = fit.QualityCandidate((384,), ("stage2.mean", "stage3.mean"), True, pca=None, exposure=rule)
    fit.QUALITY_CANDIDATES.update({"test-plain": plain, "test-copies": with_copies})
    try:
        with pytest.raises(ValueError, match="exposure copies"):
            fit.fit_quality_head(feats, measures, y, trained_on={}, candidates=["test-copies"])
        got = {name: fit.fit_quality_head(feats, measures, y, trained_on={}, candidates=[name], copies=copies)
               for name in ("test-plain", "test-copies")}
    finally:
        for name in ("test-plain", "test-copies"):
            del fit.QUALITY_CANDIDATES[name]
    for result in got.values():
        assert len(result.extra["oof"][result.chosen]) == n  # out-of-fold on the real photos only
        assert result.cv[result.chosen]["srcc"] > 0.5
    meta = got["test-copies"].head.model.meta
    assert meta["exposure_copies"]["n"] == len(picked) and meta["exposure_copies"]["scale"] == 1.0
    assert "exposure_copies" not in got["test-plain"].head.model.meta
    # the real photos alone set the standardisation: the copies are learnt in the photos' coordinates
    plain_arrays, copy_arrays = got["test-plain"].head.model.arrays, got["test-copies"].head.model.arrays
    assert np.array_equal(copy_arrays["x_mean"], plain_arrays["x_mean"])
    assert np.array_equal(copy_arrays["x_scale"], plain_arrays["x_scale"])
    from picinspector.scoring._features import feature_matrix

    spec = got["test-copies"].head.spec
    x_copy = fit.assemble_batch(spec, cfeats, feature_matrix(copies.measures, list(spec.classic)))
    x_real = fit.assemble_batch(spec, {384: {k: v[picked] for k, v in feats[384].items()}},
                                feature_matrix([measures[i] for i in picked], list(spec.classic)))
    drop = {name: float(np.mean(r.head.model.predict_raw(x_real) - r.head.model.predict_raw(x_copy)))
            for name, r in got.items()}
    assert drop["test-copies"] > drop["test-plain"] + 0.05  # the copies taught the brightened look is worse
