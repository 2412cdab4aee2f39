"""The quality model: exporters reproduce scikit-learn, files round-trip without pickle, a fit is
deterministic, and the classic engine uses a fitted file."""

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="fitting needs scikit-learn (the 'fit' extra)")
pytest.importorskip("skimage", reason="sample photos come from scikit-image (the 'samples' extra)")

import cv2  # noqa: E402

from picinspector import Inspector  # noqa: E402
from picinspector.measures import measure_all  # noqa: E402
from picinspector.io import load_photo  # noqa: E402
from picinspector.samples import load_sample  # noqa: E402
from picinspector.scoring._features import feature_matrix, features  # noqa: E402
from picinspector.scoring._model import ModelFileError, QualityModel  # noqa: E402
from picinspector.training import fit_quality as fq  # noqa: E402


@pytest.fixture(scope="module")
def labelled():
    """Real photos with graded blur and noise; the 'MOS' falls with the total degradation."""
    rng = np.random.default_rng(0)
    measures, mos = [], []
    for name in ("astronaut", "coffee", "chelsea", "china", "flower", "motorcycle"):
        base = load_sample(name).astype(np.float32) / 255
        for blur in (0.0, 1.0, 2.0, 3.0):
            for noise in (0.0, 8.0):
                img = cv2.GaussianBlur(base, (0, 0), blur) if blur else base
                img = np.clip(img + rng.normal(0, noise / 255, img.shape).astype(np.float32), 0, 1)
                measures.append(measure_all(load_photo(img)))
                mos.append(1.0 - 0.2 * blur - 0.02 * noise + rng.normal(0, 0.02))
    return measures, np.array(mos)


@pytest.mark.parametrize("learner", sorted(fq.LEARNERS))
def test_each_exporter_reproduces_sklearn(learner):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 5))
    y = np.tanh(x[:, 0]) + 0.3 * x[:, 1] ** 2 + rng.normal(0, 0.05, 120)
    names = [f"term_{i}" if i < 2 else f"f{i}" for i in range(5)]
    cand = next(c for c, members in fq.CANDIDATES.items() if list(members) == [learner])
    pre, fitted = fq._fit_candidate(cand, x, y, names, seed=0)
    model = fq.export(cand, pre, fitted, names, x, meta={})  # raises if predictions differ
    x_new = rng.normal(size=(30, 5))
    np.testing.assert_allclose(model.predict_raw(x_new), fq._predict_candidate(cand, pre, fitted, x_new),
                               atol=fq.EXPORT_TOLERANCE)


def test_fit_is_deterministic_and_round_trips_without_pickle(labelled, tmp_path):
    measures, mos = labelled
    kwargs = dict(trained_on={"dataset": "test"}, candidates=["ridge", "svr+trees"], folds=3, seed=7)
    a = fq.fit_quality(measures, mos, **kwargs)
    b = fq.fit_quality(measures, mos, **kwargs)
    assert a.chosen == b.chosen and a.cv == b.cv
    assert a.model.arrays.keys() == b.model.arrays.keys()
    for k in a.model.arrays:
        np.testing.assert_array_equal(a.model.arrays[k], b.model.arrays[k])
    assert a.cv[a.chosen]["srcc"] > 0.8  # the labels follow blur and noise, which the measures see
    path = tmp_path / "q.npz"
    a.model.save(path)
    with np.load(path, allow_pickle=False) as data:  # plain arrays only
        assert "meta" in data.files
    loaded = QualityModel.load(path)
    x = feature_matrix(measures, loaded.features)
    np.testing.assert_allclose(loaded.predict_raw(x), a.model.predict_raw(x), atol=1e-12)
    assert loaded.meta["trained_on"] == {"dataset": "test"} and loaded.meta["cv"]["seed"] == 7


def test_the_engine_uses_a_fitted_file_and_its_score_follows_blur(labelled, tmp_path):
    measures, mos = labelled
    result = fq.fit_quality(measures, mos, trained_on={"dataset": "test"}, candidates=["svr"], folds=3)
    path = tmp_path / "q.npz"
    result.model.save(path)
    base = load_sample("coffee").astype(np.float32) / 255
    with Inspector(quality_model=str(path)) as ins:  # blur levels between the trained ones
        q = [ins.analyze(cv2.GaussianBlur(base, (0, 0), s)).scores["quality"] for s in (0.5, 1.5, 2.5)]
    assert q[0] > q[1] > q[2]
    assert all(0 <= v <= 100 for v in q)


def test_bad_model_files_give_clear_errors(tmp_path, labelled):
    missing = tmp_path / "nope.npz"
    with pytest.raises(ModelFileError, match="not found"):
        QualityModel.load(missing)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="not a readable"):
        QualityModel.load(junk)
    measures, mos = labelled
    model = fq.fit_quality(measures, mos, trained_on={}, candidates=["ridge"], folds=3).model
    model.meta["features"] = model.meta["features"][:-1] + ["a_feature_nobody_computes"]
    with pytest.raises(ModelFileError, match="a_feature_nobody_computes"):
        model.score(features(measures[0]))


def test_too_few_photos_and_unknown_candidates_are_refused(labelled):
    measures, mos = labelled
    with pytest.raises(ValueError, match="too few"):
        fq.fit_quality(measures[:4], mos[:4], trained_on={}, folds=5)
    with pytest.raises(ValueError, match="unknown candidates"):
        fq.fit_quality(measures, mos, trained_on={}, candidates=["magic"])
