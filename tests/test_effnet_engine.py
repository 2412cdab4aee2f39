"""The effnet engine end to end (shipped graph and heads, onnxruntime, no torch), the default-engine
rule, the embedding API, and the head fitting on data the tests make."""

import json

import numpy as np
import pytest
from PIL import Image

import picinspector
from picinspector import Inspector
from picinspector.scene import SCENES

pytest.importorskip("skimage", reason="sample photos come from scikit-image (the 'samples' extra)")
from picinspector.samples import write_samples  # noqa: E402


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return {p.stem: p for p in write_samples(tmp_path_factory.mktemp("samples"))}


@pytest.fixture(scope="module")
def effnet():
    with Inspector(engine="effnet", threads=1) as ins:
        yield ins


def test_effnet_scores_a_photo_with_the_common_schema(samples, effnet):
    report = effnet.analyze(samples["chelsea"])
    d = report.to_dict()
    assert d["engine"] == "effnet" and d["scene"]["method"] == "effnet"
    assert d["scene"]["label"] == "animal" and d["scene"]["confidence"] > 0.5
    assert set(d["scene"]["probabilities"]) == set(SCENES)
    assert sum(d["scene"]["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert all(0 <= v <= 100 for v in d["scores"].values())
    emb = report.extras["embedding"]
    assert emb.dtype == np.float32 and emb.shape == (1280,) and np.linalg.norm(emb) == pytest.approx(1, abs=1e-5)
    assert "embedding" not in json.dumps(d)  # the embedding stays in the Python API
    classic = Inspector(engine="classic", threads=1).analyze(samples["chelsea"]).to_dict()
    for name in ("brightness", "colorfulness", "contrast", "noisiness", "sharpness"):  # the classic attributes
        assert d["scores"][name] == classic["scores"][name]


def test_scenes_of_the_sample_photos(samples, effnet):
    assert effnet.analyze(samples["coffee"]).scene.label == "still_life"
    assert effnet.analyze(samples["astronaut"]).scene.label == "human"
    assert effnet.analyze(samples["flower"]).scene.label == "plant"


def test_quality_falls_with_blur_and_noise(samples, effnet):
    img = np.asarray(Image.open(samples["coffee"]).convert("RGB"), np.float32) / 255
    import cv2

    blurred = [effnet.analyze((np.clip(cv2.GaussianBlur(img, (0, 0), s) if s else img, 0, 1) * 255).astype(np.uint8))
               .scores["quality"] for s in (0, 2, 4)]
    rng = np.random.default_rng(0)
    noisy = [effnet.analyze((np.clip(img + rng.normal(0, s / 255, img.shape), 0, 1) * 255).astype(np.uint8))
             .scores["quality"] for s in (0, 10, 25)]
    assert blurred[0] > blurred[1] > blurred[2]
    assert noisy[0] > noisy[1] > noisy[2]


def test_embed_gives_the_report_embedding_and_near_duplicates_are_close(samples, effnet):
    emb = effnet.embed(samples["china"])
    np.testing.assert_allclose(emb, effnet.analyze(samples["china"]).extras["embedding"], atol=1e-6)
    noisy = effnet.embed(samples["china_noisy"])
    other = effnet.embed(samples["coffee"])
    assert float(emb @ noisy) > float(emb @ other) + 0.1
    with pytest.raises(NotImplementedError, match="effnet"):
        Inspector(engine="classic").embed(samples["china"])


def test_the_network_runs_beside_the_measures_and_gives_the_same_report(samples, effnet):
    """With two threads the inspector runs the engine's `prepare` (the network) on its engine thread
    while the measures run; the report is the one the sequential one-thread inspector gives."""
    import threading

    from picinspector.models.effnet.engine import EffnetEngine

    seen = []
    original = EffnetEngine.prepare

    def spy(self, photo):
        seen.append(threading.current_thread().name)
        return original(self, photo)

    with Inspector(engine="effnet", threads=2) as two:
        two.engine.prepare = spy.__get__(two.engine)
        overlapped = two.analyze(samples["coffee"])
    assert seen and seen[0].startswith("picinspector-engine")
    sequential = effnet.analyze(samples["coffee"])
    assert overlapped.to_dict() == sequential.to_dict()
    np.testing.assert_array_equal(overlapped.extras["embedding"], sequential.extras["embedding"])


def test_an_error_in_the_network_run_reaches_the_caller(samples):
    class Broken(RuntimeError):
        pass

    def fail(photo):
        raise Broken("the network failed")

    with Inspector(engine="effnet", threads=2) as ins:
        ins.engine.prepare = fail
        with pytest.raises(Broken, match="network failed"):
            ins.analyze(samples["coffee"])


def test_the_quality_head_runs_on_one_blas_thread_per_photo():
    """Its per-photo products run on one OpenBLAS thread (idle OpenBLAS threads spin after a call and
    take a core from the next photo); a large batch keeps BLAS's own thread count."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from picinspector.models.effnet._heads import QualityHead
    from picinspector.scoring import _model

    model = QualityHead.load().model
    assert model._large
    counts = []
    kind, weight, arrays = model._members[0]

    def spy(a, z):
        counts.append(max((i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"),
                          default=None))
        return kind(a, z)

    model.__dict__["_members"] = [(spy, weight, arrays)]
    try:
        x = np.zeros((1, len(model.features)))
        model.predict_raw(x)
        model.predict_raw(np.zeros((_model.SMALL_BATCH + 1, len(model.features))))
    finally:
        del model.__dict__["_members"]
    blas = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    if not blas:
        pytest.skip("NumPy here uses no BLAS that threadpoolctl can see")
    assert counts[0] == 1
    assert counts[1] == max(blas)


def test_effnet_is_the_default_where_it_can_run(monkeypatch):
    from picinspector.models.effnet import engine

    assert engine.available()
    assert Inspector().engine_name == "effnet"
    assert picinspector.analyze(np.full((64, 64, 3), 128, np.uint8)).engine == "effnet"
    monkeypatch.setattr(engine, "available", lambda: False)
    assert Inspector().engine_name == "classic"


def test_cli_default_engine_and_forcing_classic(samples):
    from typer.testing import CliRunner

    from picinspector.cli import app

    runner = CliRunner()
    row = json.loads(runner.invoke(app, ["analyze", str(samples["flower"]), "--json"]).stdout)
    assert row["engine"] == "effnet"
    row = json.loads(runner.invoke(app, ["analyze", str(samples["flower"]), "--json", "--engine", "classic"]).stdout)
    assert row["engine"] == "classic"
    # a classic-only flag without --engine picks the engine that takes it
    row = json.loads(runner.invoke(app, ["analyze", str(samples["flower"]), "--json", "--quality-model",
                                         "handmade"]).stdout)
    assert row["engine"] == "classic"
    bad = runner.invoke(app, ["analyze", str(samples["flower"]), "--engine", "effnet", "--quality-model", "handmade"])
    assert bad.exit_code == 2


def test_batch_workers_run_effnet(samples, tmp_path):
    from picinspector.batch import run_batch

    out = tmp_path / "rows.jsonl"
    paths = [str(samples[n]) for n in ("chelsea", "coffee", "china")]
    summary = run_batch(paths, str(out), jobs=2, inspector_options={"engine": "effnet"}, progress=False)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert summary.analysed == 3 and {r["engine"] for r in rows} == {"effnet"}
    serial = {str(samples[n]): Inspector(engine="effnet", threads=1).analyze(samples[n]).to_dict()["scores"]
              for n in ("chelsea",)}
    assert next(r for r in rows if r["path"] == str(samples["chelsea"]))["scores"] == serial[str(samples["chelsea"])]


# --- heads and their fitting, on features the tests make --------------------------------------------

def _fake_features(n, rng, signal):
    from picinspector.models.effnet import get_backbone
    from picinspector.models.effnet.export import stats_layout

    width = max(b for _, b in stats_layout(get_backbone("efficientnet-lite0")).values())
    stats = rng.normal(size=(n, width)).astype(np.float32)
    a, b = stats_layout(get_backbone("efficientnet-lite0"))["stage2.mean"]
    stats[:, a:b] += 3 * np.asarray(signal, np.float32)[:, None]  # the planted signal, on a whole block
    emb = rng.normal(size=(n, 1280)).astype(np.float32)
    return {384: {"stats": stats, "embedding": emb / np.linalg.norm(emb, axis=1, keepdims=True),
                  "logits": rng.normal(size=(n, 1000)).astype(np.float32)}}


def test_a_quality_head_is_fitted_cross_validated_and_reloads(tmp_path):
    from picinspector.models.effnet._heads import QualityHead
    from picinspector.training import effnet as fit

    rng = np.random.default_rng(0)
    y = rng.uniform(0.2, 0.8, 120)
    feats = _fake_features(120, rng, y)
    from picinspector.io import load_photo
    from picinspector.measures import measure_all

    base = measure_all(load_photo((rng.uniform(0, 255, (64, 64, 3))).astype(np.uint8)))
    measures = [{**base, "focus": float(v)} for v in rng.uniform(0, 1, 120)]
    cand = fit.QualityCandidate((384,), ("stage2.mean", "stage2.std"), True, landmarks=60)
    fit.QUALITY_CANDIDATES["test"] = cand
    try:
        result = fit.fit_quality_head(feats, measures, y, trained_on={"dataset": "synthetic"}, candidates=["test"])
    finally:
        del fit.QUALITY_CANDIDATES["test"]
    assert result.cv["test"]["srcc"] > 0.6  # the planted signal is found out of fold
    path = tmp_path / "q.npz"
    result.head.model.save(path)
    head = QualityHead.load(path)
    one = {384: {k: v[0] for k, v in feats[384].items()}}
    from picinspector.scoring._features import features

    assert head.predict(one, features(measures[0])) == pytest.approx(result.head.predict(one, features(measures[0])))
    assert head.model.meta["inputs"]["classic"]  # the classic features are part of its input


def test_a_scene_head_trains_on_agreed_labels_of_several_files(tmp_path):
    from picinspector.models.effnet._heads import SceneHead
    from picinspector.training.effnet import SceneCandidate, fit_scene_head, read_scene_labels
    import picinspector.training.effnet as fit

    classes = ["animal", "human", "plant", "still_life"]
    rows = [(f"p{i}.jpg", classes[i % 4]) for i in range(80)]
    (tmp_path / "images").mkdir()
    with open(tmp_path / "a.csv", "w") as f:
        f.write("image,scene,annotator_1,annotator_2,also\n")
        for name, s in rows[:60]:
            f.write(f"{name},{s},{s},{s},\n")
        f.write("p99.jpg,,animal,plant,animal;plant\n")  # a disagreement: never trains
    with open(tmp_path / "b.csv", "w") as f:
        f.write("image,scene,annotator_1,annotator_2,also\n")
        for name, s in rows[60:]:
            f.write(f"{name},{s},{s},{s},human\n")
    table = read_scene_labels([tmp_path / "a.csv", tmp_path / "b.csv"])
    assert len(table) == 81 and table[str(tmp_path / "images" / "p99.jpg")].agreed is None
    assert table[str(tmp_path / "images" / "p70.jpg")].accepted == {"human", classes[70 % 4]}
    paths = list(table)
    labels = [table[p] for p in paths]
    rng = np.random.default_rng(1)
    target = np.array([classes.index(lab.agreed) if lab.agreed else 0 for lab in labels])
    feats = _fake_features(len(paths), rng, target)
    feats[384]["embedding"][:, :40] += 2 * np.repeat(np.eye(4)[target], 10, axis=1)
    measures = [{"face_count": float(t == 1)} for t in target]
    fit.SCENE_CANDIDATES["test"] = SceneCandidate((384,), ("embedding",), (), ("face_count",), C=1.0)
    try:
        result = fit_scene_head(feats, measures, labels, trained_on={}, candidates=["test"])
    finally:
        del fit.SCENE_CANDIDATES["test"]
    cv = result.cv["test"]
    assert cv["n"] == 61 and cv["n_agreed"] == 60  # evaluated on the first file's photos only
    assert cv["top1"] > 0.9 and result.n == 80  # both files' agreed photos train the final head
    assert np.array(cv["confusion"]).sum() == 60
    path = tmp_path / "s.npz"
    result.head.save(path)
    head = SceneHead.load(path)
    one = {384: {k: v[0] for k, v in feats[384].items()}}
    p = head.predict(one, measures[0])
    assert set(p) == set(SCENES) and sum(p.values()) == pytest.approx(1.0)
    assert max(p, key=p.get) == labels[0].agreed


def test_scene_head_standardises_as_its_training_did():
    """Training clips standardised inputs to +-Z_CLIP (`Preprocess`); the exported head must too, or a
    photo with one extreme cue (a count far beyond the training photos') gets other probabilities than
    the fitted model gives, and an export whose training rows hold such a value is refused."""
    from picinspector.models.effnet._heads import SceneHead
    from picinspector.scoring._model import Z_CLIP
    from picinspector.training.fit_quality import Preprocess

    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    pre = Preprocess.fit(x)
    coef = rng.normal(size=(3, len(SCENES)))
    head = SceneHead({"classes": list(SCENES)}, {"x_fill": pre.fill, "x_mean": pre.mean, "x_scale": pre.scale,
                                                  "coef": coef, "intercept": np.zeros(len(SCENES))})
    far = np.array([[40.0, 0.0, 0.0]])
    edge = np.array([[pre.mean[0] + Z_CLIP * pre.scale[0], 0.0, 0.0]])
    np.testing.assert_allclose(head.predict_x(far), head.predict_x(edge), atol=1e-12)
    z = pre(far)
    logits = z @ coef
    want = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(head.predict_x(far), want, atol=1e-12)


def test_a_quality_head_that_asks_for_an_unknown_classic_input_is_refused_at_load(tmp_path):
    from picinspector.models.effnet._heads import QualityHead
    from picinspector.models.effnet.engine import QUALITY_HEAD
    from picinspector.scoring._model import ModelFileError

    QualityHead.load(QUALITY_HEAD)  # the shipped head loads
    with np.load(QUALITY_HEAD) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta")))
    meta["inputs"]["classic"][-1] = "not_a_measure"
    meta["features"][-1] = "classic.not_a_measure"
    bad = tmp_path / "head.npz"
    np.savez(bad, meta=np.array(json.dumps(meta)), **arrays)
    with pytest.raises(ModelFileError, match="not_a_measure"):
        QualityHead.load(bad)


def test_a_pca_quality_head_exports_its_projection_and_predicts_as_fitted(tmp_path):
    from picinspector.models.effnet._heads import QualityHead
    from picinspector.training import effnet as fit

    rng = np.random.default_rng(3)
    y = rng.uniform(0.2, 0.8, 100)
    feats = _fake_features(100, rng, y)
    from picinspector.io import load_photo
    from picinspector.measures import measure_all

    measures = [measure_all(load_photo((rng.uniform(0, 255, (64, 64, 3))).astype(np.uint8)))] * 100
    cand = fit.QualityCandidate((384,), ("stage2.mean", "stage2.std", "stage3.mean"), False, pca=6)
    fit.QUALITY_CANDIDATES["test-pca"] = cand
    try:
        result = fit.fit_quality_head(feats, measures, y, trained_on={}, candidates=["test-pca"])
    finally:
        del fit.QUALITY_CANDIDATES["test-pca"]
    assert result.cv["test-pca"]["srcc"] > 0.6  # the planted block survives a 6-component projection
    model = result.head.model
    assert model.arrays["x_proj"].shape == (len(model.features), 6)
    assert model.arrays["m0_support_vectors"].shape == (100, 6)
    path = tmp_path / "q.npz"
    model.save(path)
    again = QualityHead.load(path)
    one = {384: {k: v[:1] for k, v in feats[384].items()}}
    x = fit.assemble_batch(again.spec, one, None)
    assert again.model.predict_raw(x) == pytest.approx(model.predict_raw(x), abs=1e-9)
    # a refit on the same rows is the same head (the projection's signs are fixed)
    fit.QUALITY_CANDIDATES["test-pca"] = cand
    try:
        twice = fit.fit_quality_head(feats, measures, y, trained_on={}, candidates=["test-pca"])
    finally:
        del fit.QUALITY_CANDIDATES["test-pca"]
    assert np.array_equal(twice.head.model.arrays["x_proj"], model.arrays["x_proj"])


def _scene_problem(rng, n=240):
    """Three classes told apart by a weak embedding signal; 'others' is rare (one photo in eight)."""
    from picinspector.training.effnet import SceneLabel

    truth = np.where(rng.uniform(size=n) < 0.125, SCENES.index("others"),
                     rng.choice([SCENES.index("animal"), SCENES.index("human")], n))
    labels = [SceneLabel(SCENES[t], frozenset({SCENES[t]}), int(i >= n // 2)) for i, t in enumerate(truth)]
    feats = _fake_features(n, rng, np.zeros(n))
    code = {SCENES.index("animal"): 0, SCENES.index("human"): 1, SCENES.index("others"): 2}
    feats[384]["embedding"][:, :30] += 0.3 * np.repeat(np.eye(3)[[code[t] for t in truth]], 10, axis=1)
    return feats, [{}] * n, labels, truth


def test_a_boosted_scene_class_is_predicted_more_often():
    import picinspector.training.effnet as fit

    rng = np.random.default_rng(5)
    feats, _, labels, truth = _scene_problem(rng)
    # two overlapping cues (few inputs, so that the fit is not separable and class weights matter)
    means = {SCENES.index("animal"): (0, 0), SCENES.index("human"): (1, 0), SCENES.index("others"): (0.5, 1)}
    cues = np.array([means[t] for t in truth]) + rng.normal(0, 0.8, (len(truth), 2))
    measures = [{"cue_a": a, "cue_b": b} for a, b in cues]
    others = SCENES.index("others")
    share = {}
    for boost in (1.0, 20.0):
        fit.SCENE_CANDIDATES["test"] = fit.SceneCandidate((384,), (), (), ("cue_a", "cue_b"), C=1.0,
                                                          boost=(("others", boost),))
        try:
            result = fit.fit_scene_head(feats, measures, labels, trained_on={}, candidates=["test"])
        finally:
            del fit.SCENE_CANDIDATES["test"]
        probs = result.head.predict_x(cues)
        share[boost] = (float(np.mean(probs.argmax(1) == others)), float(probs[:, others].mean()))
        assert result.head.meta["learner"]["boost"] == {"others": boost}
    assert share[20.0][0] > share[1.0][0] + 0.1 and share[20.0][1] > share[1.0][1] + 0.1
    fit.SCENE_CANDIDATES["test"] = fit.SceneCandidate((384,), ("embedding",), (), (), boost=(("nope", 2.0),))
    try:
        with pytest.raises(ValueError, match="nope"):
            fit.fit_scene_head(feats, measures, labels, trained_on={}, candidates=["test"])
    finally:
        del fit.SCENE_CANDIDATES["test"]


def test_scene_cross_validation_over_every_file_when_asked():
    import picinspector.training.effnet as fit

    feats, measures, labels, _ = _scene_problem(np.random.default_rng(6))
    fit.SCENE_CANDIDATES["test"] = fit.SceneCandidate((384,), ("embedding",), (), (), C=0.05)
    try:
        first = fit.fit_scene_head(feats, measures, labels, trained_on={}, candidates=["test"])
        every = fit.fit_scene_head(feats, measures, labels, trained_on={}, candidates=["test"], cv_all=True)
    finally:
        del fit.SCENE_CANDIDATES["test"]
    assert first.cv["test"]["n"] == sum(lab.source == 0 for lab in labels) == 120
    assert every.cv["test"]["n"] == len(labels) == np.array(every.cv["test"]["confusion"]).sum()
    assert every.head.meta["cv"]["evaluated_on"] == "photos of every label file"


def test_a_quality_head_whose_projection_does_not_fit_its_members_is_refused(tmp_path):
    from picinspector.models.effnet._heads import QualityHead
    from picinspector.models.effnet.engine import QUALITY_HEAD
    from picinspector.scoring._model import ModelFileError

    with np.load(QUALITY_HEAD) as z:
        arrays = {k: z[k] for k in z.files}
    assert "x_proj" in arrays
    arrays["x_proj"] = arrays["x_proj"][:, :-1]  # one projected dimension fewer than the support vectors
    bad = tmp_path / "head.npz"
    np.savez(bad, **arrays)
    with pytest.raises(ModelFileError, match="support_vectors"):
        QualityHead.load(bad)


def test_weighting_the_cues_makes_the_scene_head_lean_on_them_and_the_export_keeps_the_weight(tmp_path):
    """``cue_weight`` scales the cues after standardisation, so the L2 penalty holds them back less: the
    head trusts a cue that carries the class over an embedding that carries it only weakly."""
    import picinspector.training.effnet as fit

    rng = np.random.default_rng(7)
    feats, _, labels, truth = _scene_problem(rng)
    cue = (truth == SCENES.index("others")).astype(float) + rng.normal(0, 0.35, len(truth))
    measures = [{"cue_a": float(v)} for v in cue]
    got = {}
    for weight in (1.0, 10.0):
        fit.SCENE_CANDIDATES["test"] = fit.SceneCandidate((384,), ("embedding",), (), ("cue_a",), C=0.02,
                                                          cue_weight=weight)
        try:
            got[weight] = fit.fit_scene_head(feats, measures, labels, trained_on={}, candidates=["test"])
        finally:
            del fit.SCENE_CANDIDATES["test"]
    x = fit.assemble_batch(got[1.0].head.spec, feats, np.array([[m["cue_a"]] for m in measures]))
    others = SCENES.index("others")
    moved = x.copy()
    moved[:, -1] += 1.0  # the cue alone moves by about one standard deviation
    # how far the log-odds of "others" move with the cue: much further when the cue weighs more
    lift = {w: float(np.mean(np.log(r.head.predict_x(moved)[:, others]) - np.log(r.head.predict_x(x)[:, others])))
            for w, r in got.items()}
    assert lift[10.0] > 2 * lift[1.0] > 0
    from picinspector.models.effnet._heads import SceneHead

    got[10.0].head.save(tmp_path / "s.npz")  # the weight lives in the exported scaling
    assert SceneHead.load(tmp_path / "s.npz").predict_x(moved) == pytest.approx(got[10.0].head.predict_x(moved))
    assert got[10.0].cv["test"]["recall"]["others"] >= got[1.0].cv["test"]["recall"]["others"]
