"""The DINOv2 engine: model, preprocessing, training loop, checkpoints, serving, weight resolution.

Everything runs on the CPU with a tiny random backbone built here from a config (hidden 32, 2 layers)
and a SPAQ-format dataset written by the test (xlsx annotations + JPEGs whose MOS follows their blur).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
openpyxl = pytest.importorskip("openpyxl")

from typer.testing import CliRunner  # noqa: E402

from picinspector import Inspector  # noqa: E402
from picinspector.cli import app  # noqa: E402
from picinspector.datasets import load_dataset  # noqa: E402
from picinspector.models import WeightsNotFound, resolve_weights  # noqa: E402
from picinspector.models.dinov2 import (HeadConfig, MultiTaskIQA, Preprocess, exif_vector, load_backbone,  # noqa: E402
                                        load_model, read_config, save_model)
from picinspector.report import SCORE_NAMES  # noqa: E402
from picinspector.scene import SCENES  # noqa: E402
from picinspector.training.dinov2 import TrainOptions, Targets, train_dinov2  # noqa: E402

SIDE = 28  # two 14-px patches: the tiny backbone's input side


@pytest.fixture(scope="module")
def backbone_dir(tmp_path_factory) -> Path:
    """A tiny random DINOv2 saved like a downloaded one (config.json + model.safetensors)."""
    torch.manual_seed(0)
    config = transformers.Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2,
                                       image_size=SIDE, patch_size=14)
    folder = tmp_path_factory.mktemp("backbone")
    transformers.Dinov2Model(config).save_pretrained(folder)
    return folder


def _write_spaq(root: Path, n: int = 16, scenes: bool = True, bad: bool = False) -> Path:
    """SPAQ layout: photos blurred more and more, MOS and sharpness falling with the blur."""
    rng = np.random.default_rng(1)
    (root / "TestImage").mkdir(parents=True)
    rows = [["Image name", "MOS", "Brightness", "Colorfulness", "Contrast", "Noisiness", "Sharpness"]]
    scene_rows = [["Image name", "Animal", "Cityscape", "Human", "Indoor scene", "Landscape", "Night scene", "Plant",
                   "Still-life", "Others"]]
    for i in range(n):
        base = rng.random((40, 56, 3))
        img = gaussian_filter(base, (i / 4, i / 4, 0)) if i else base
        name = f"{i:05d}.jpg"
        Image.fromarray((img * 255).astype(np.uint8)).save(root / "TestImage" / name, quality=95)
        q = 95.0 - 5 * i
        rows.append([name, q, 40 + i, 50.0, 60 - i, 55.0, q])
        onehot = [0] * 9
        onehot[4 if i % 2 else 7] = 1
        scene_rows.append([name, *onehot])
    if bad:
        (root / "TestImage" / "99999.jpg").write_bytes(b"not a jpeg at all")
        rows.append(["99999.jpg", 50.0, 50, 50, 50, 50, 50])
    ann = root / "Annotations"
    ann.mkdir()
    for path, table in [(ann / "MOS and Image attribute scores.xlsx", rows)] + (
            [(ann / "Scene category labels.xlsx", scene_rows)] if scenes else []):
        book = openpyxl.Workbook()
        for row in table:
            book.active.append(row)
        book.save(path)
    return root


@pytest.fixture(scope="module")
def spaq(tmp_path_factory) -> Path:
    return _write_spaq(tmp_path_factory.mktemp("spaq"))


def _opts(backbone: Path, **kw) -> TrainOptions:
    base = dict(backbone=str(backbone), mode="full", epochs=3, batch_size=4, lr=3e-3, backbone_lr=1e-3,
                short_side=SIDE, crops=2, device="cpu", patience=50)
    return TrainOptions(**{**base, **kw})


def _train(spaq_root: Path, run: Path, backbone: Path, **kw):
    _, samples = load_dataset(spaq_root, "spaq")
    return train_dinov2(samples, run, _opts(backbone, **kw), dataset={"root": str(spaq_root), "format": "spaq"},
                        progress=False, log=lambda line: None)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, spaq, backbone_dir) -> Path:
    run = tmp_path_factory.mktemp("run")
    _train(spaq, run, backbone_dir, epochs=2)
    return run


# --------------------------------------------------------------------------------------------------
# Preprocessing and the network


@pytest.mark.parametrize("shape", [(37, 53), (53, 37), (16, 200), (300, 29), (28, 28)])
def test_views_keep_aspect_and_cover_the_long_side(shape):
    pre = Preprocess(short_side=SIDE, crops=3)
    rgb = np.random.default_rng(0).random((*shape, 3), dtype=np.float32)
    resized = pre.resized(rgb)
    assert min(resized.shape[:2]) == SIDE
    ratio_in, ratio_out = max(shape) / min(shape), max(resized.shape[:2]) / min(resized.shape[:2])
    assert ratio_out == pytest.approx(ratio_in, rel=0.05)
    views = pre.test_views(rgb)
    assert views.shape == (3, 3, SIDE, SIDE) and views.dtype == np.float32
    origins = pre.crop_origins(resized.shape)
    long_axis = int(resized.shape[1] >= resized.shape[0]) ^ 1  # 0: rows, 1: columns
    starts = [o[1 - long_axis] if long_axis == 0 else o[0] for o in origins]
    assert min(starts) == 0 and max(starts) == max(resized.shape[:2]) - SIDE


def test_views_are_normalised_with_imagenet_statistics():
    pre = Preprocess(short_side=SIDE, crops=1)
    gray = np.full((SIDE, SIDE, 3), 0.485, np.float32)
    x = pre.test_views(gray)
    assert abs(float(x[0, 0].mean())) < 1e-5  # red channel: (0.485 - 0.485) / 0.229
    assert float(x[0, 2].mean()) == pytest.approx((0.485 - 0.406) / 0.225, abs=1e-4)


def test_train_view_is_seeded_and_flips():
    pre = Preprocess(short_side=SIDE, crops=1)
    rgb = np.random.default_rng(0).random((40, 90, 3), dtype=np.float32)
    a = pre.train_view(rgb, np.random.default_rng([0, 1, 2]))
    b = pre.train_view(rgb, np.random.default_rng([0, 1, 2]))
    assert np.array_equal(a, b) and a.shape == (3, SIDE, SIDE)
    differs = {bool(np.array_equal(pre.train_view(rgb, np.random.default_rng([0, 1, k])), a)) for k in range(3, 12)}
    assert False in differs


def test_forward_on_odd_sizes(backbone_dir):
    backbone, where = load_backbone(backbone_dir)
    assert "local folder" in where
    model = MultiTaskIQA(backbone, HeadConfig(in_features=64, hidden=16, exif=True)).eval()
    pre = Preprocess(short_side=SIDE, crops=2)
    for shape in [(31, 47), (97, 41)]:
        x = torch.from_numpy(pre.test_views(np.random.default_rng(0).random((*shape, 3), dtype=np.float32)))
        out = model(x, torch.from_numpy(np.stack([exif_vector({"iso": 800})] * 2)))
        assert out["scores"].shape == (2, 6) and out["scene_logits"].shape == (2, 9)
        assert torch.isfinite(out["scores"]).all()
    # DINOv2 interpolates its position embeddings: a non-square input that is not the config's size works too
    assert model(torch.zeros(1, 3, 42, 70))["scores"].shape == (1, 6)


def test_heads_must_match_the_backbone(backbone_dir):
    backbone, _ = load_backbone(backbone_dir)
    with pytest.raises(ValueError, match="heads expect 100 features"):
        MultiTaskIQA(backbone, HeadConfig(in_features=100))


def test_exif_vector():
    v = exif_vector({"iso": 100, "exposure_time_s": 1 / 60, "f_number": 2.0})
    assert np.allclose(v, [0, 1, 0, 1, 0, 1])
    v = exif_vector({"iso": 1600, "exposure_time_s": "bad", "f_number": -1})
    assert v[0] == pytest.approx(1.0) and v[1] == 1 and v[2:].tolist() == [0, 0, 0, 0]
    assert not exif_vector(None).any()


def test_targets_mask_missing_labels(spaq):
    _, samples = load_dataset(spaq, "spaq")
    samples[0].attributes.pop("sharpness")
    samples[1].scenes = []
    t = Targets.of(samples[:3])
    assert t.score_mask[:, 0].all() and not t.score_mask[0, SCORE_NAMES.index("sharpness")]
    assert t.scores[2, 0] == pytest.approx(samples[2].mos01)
    assert t.scene_mask.tolist() == [True, False, True]
    assert t.scenes[0].sum() == 1


# --------------------------------------------------------------------------------------------------
# Training, checkpoints, resuming


def test_training_loss_goes_down_and_writes_the_run_folder(tmp_path, spaq, backbone_dir):
    result = _train(spaq, tmp_path / "run", backbone_dir, epochs=6)
    losses = [row["train_loss"] for row in result.history]
    assert len(losses) == 6
    assert losses[-1] < 0.8 * losses[0], losses
    run = tmp_path / "run"
    for name in ("run.json", "split.json", "metrics.csv", "metrics.json", "config.json", "model.safetensors",
                 "checkpoint/state.safetensors", "checkpoint/state.json"):
        assert (run / name).is_file(), name
    split = json.loads((run / "split.json").read_text())
    assert len(split["val"]) == 3 and len(split["train"]) == 13 and not set(split["val"]) & set(split["train"])
    config = json.loads((run / "config.json").read_text())
    assert config["labels"]["scores"] == list(SCORE_NAMES) and config["labels"]["scenes"] == list(SCENES)
    assert config["preprocessing"]["short_side"] == SIDE and config["backbone"]["source"].startswith(str(backbone_dir))
    assert config["metrics"]["epoch"] == result.best_epoch
    assert "quality_srcc" in config["metrics"] and "scene_map" in config["metrics"]
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"epoch", "train_loss", "val_loss", "quality_srcc", "quality_plcc", "scene_map"} <= set(header)


def test_frozen_mode_trains_only_the_heads_on_cached_features(tmp_path, spaq, backbone_dir):
    result = _train(spaq, tmp_path / "run", backbone_dir, mode="frozen", epochs=8, lr=1e-2)
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < 0.8 * losses[0], losses
    assert (tmp_path / "run" / "features.safetensors").is_file()
    trained, _ = load_model(tmp_path / "run")
    original, _ = load_backbone(backbone_dir)
    for (name, a), b in zip(trained.backbone.state_dict().items(), original.state_dict().values()):
        assert torch.equal(a, b), name


def test_resume_continues_exactly_where_it_stopped(tmp_path, spaq, backbone_dir):
    straight = _train(spaq, tmp_path / "straight", backbone_dir, epochs=4)

    def interrupt_after_epoch_2(line: str) -> None:
        if line.startswith("epoch 2/4"):
            raise KeyboardInterrupt

    _, samples = load_dataset(spaq, "spaq")
    with pytest.raises(KeyboardInterrupt):
        train_dinov2(samples, tmp_path / "resumed", _opts(backbone_dir, epochs=4), dataset={"root": str(spaq)},
                     progress=False, log=interrupt_after_epoch_2)
    assert json.loads((tmp_path / "resumed" / "checkpoint" / "state.json").read_text())["epoch"] == 2
    second = train_dinov2(samples, tmp_path / "resumed", _opts(backbone_dir, epochs=4), dataset={"root": str(spaq)},
                          progress=False, log=lambda line: None)
    assert second.resumed_from == 2 and [r["epoch"] for r in second.history] == [1, 2, 3, 4]
    for a, b in zip(straight.history, second.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)
    a, _ = load_model(tmp_path / "straight")
    b, _ = load_model(tmp_path / "resumed")
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(x, y, atol=1e-6), name
    # finished: the same command again trains nothing more
    again = train_dinov2(samples, tmp_path / "resumed", _opts(backbone_dir, epochs=4), dataset={"root": str(spaq)},
                         progress=False, log=lambda line: None)
    assert again.history == second.history and again.resumed_from == 4


def test_resume_refuses_other_settings_unless_restarted(tmp_path, spaq, backbone_dir):
    _train(spaq, tmp_path / "run", backbone_dir, epochs=1)
    with pytest.raises(ValueError, match="other settings.*lr"):
        _train(spaq, tmp_path / "run", backbone_dir, epochs=1, lr=1e-4)
    _, samples = load_dataset(spaq, "spaq")
    fresh = train_dinov2(samples, tmp_path / "run", _opts(backbone_dir, epochs=1, lr=1e-4), progress=False,
                         dataset={"root": str(spaq)}, log=lambda line: None, restart=True)
    assert fresh.resumed_from == 0 and fresh.epochs_run == 1


def test_early_stopping(tmp_path, spaq, backbone_dir):
    result = _train(spaq, tmp_path / "run", backbone_dir, epochs=12, patience=1, lr=0.0, backbone_lr=0.0)
    assert result.stopped_early and result.epochs_run < 12 and result.best_epoch == 1


def test_split_file_and_unreadable_images(tmp_path, backbone_dir):
    root = _write_spaq(tmp_path / "data", n=8, scenes=False, bad=True)
    (tmp_path / "val.txt").write_text("image\n00001.jpg\n00006.jpg\n")
    from picinspector.training.dinov2 import read_split_file

    _, samples = load_dataset(root, "spaq")
    result = train_dinov2(samples, tmp_path / "run", _opts(backbone_dir, epochs=1), progress=False,
                          val_names=read_split_file(tmp_path / "val.txt"), dataset={"root": str(root)},
                          log=lambda line: None)
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert sorted(Path(p).name for p in split["val"]) == ["00001.jpg", "00006.jpg"]
    assert list(result.bad_images) == [str(root / "TestImage" / "99999.jpg")]
    assert "99999.jpg" in (tmp_path / "run" / "bad_images.txt").read_text()
    config = read_config(tmp_path / "run")
    assert config.trained_scenes is False  # no scene file: the engine falls back to the cue-based scene
    report = Inspector(engine="dinov2", model=str(tmp_path / "run")).analyze(str(root / "TestImage" / "00002.jpg"))
    assert report.scene.method != "dinov2" and abs(sum(report.scene.probabilities.values()) - 1) < 0.01


# --------------------------------------------------------------------------------------------------
# Saving, loading, serving


def test_save_reload_gives_identical_outputs(tmp_path, run_dir):
    model, config = load_model(run_dir)
    x = torch.from_numpy(config.preprocess.test_views(np.random.default_rng(3).random((50, 70, 3),
                                                                                      dtype=np.float32)))
    with torch.inference_mode():
        before = model(x)
    save_model(model, config, tmp_path / "copy")
    again, config2 = load_model(tmp_path / "copy")
    with torch.inference_mode():
        after = again(x)
    assert torch.equal(before["scores"], after["scores"]) and torch.equal(before["scene_logits"], after["scene_logits"])
    assert config2.to_dict() == config.to_dict()
    assert not list(tmp_path.glob("copy/*.pt")) and not list(tmp_path.glob("copy/*.bin"))


def test_engine_report_has_the_full_schema(run_dir, spaq):
    photo = str(spaq / "TestImage" / "00004.jpg")
    a = Inspector(engine="dinov2", model=str(run_dir)).analyze(photo).to_dict()
    b = Inspector(engine="dinov2", model=str(run_dir), crops=1).analyze(photo).to_dict()
    assert a["engine"] == "dinov2" and set(a["scores"]) == set(SCORE_NAMES)
    assert all(0 <= v <= 100 for v in a["scores"].values())
    assert a["scene"]["method"] == "dinov2" and set(a["scene"]["probabilities"]) == set(SCENES)
    assert a["scene"]["label"] == max(a["scene"]["probabilities"], key=a["scene"]["probabilities"].get)
    assert a["findings"] is not None and a["feedback"] and a["measures"]
    assert a["scores"] != b["scores"]  # crops=1 looks at one view instead of averaging two
    again = Inspector(engine="dinov2", model=str(run_dir)).analyze(photo).to_dict()
    assert again["scores"] == a["scores"]


def test_cli_analyze_and_eval_with_the_dinov2_engine(run_dir, spaq):
    runner = CliRunner()
    photo = str(spaq / "TestImage" / "00003.jpg")
    res = runner.invoke(app, ["analyze", photo, "--engine", "dinov2", "--model", str(run_dir), "--json",
                              "--device", "cpu"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout.strip().splitlines()[-1])
    assert row["engine"] == "dinov2" and set(row["scores"]) == set(SCORE_NAMES)
    res = runner.invoke(app, ["analyze", photo, "--engine", "dinov2", "--model", str(run_dir), "--json", "--bf16"])
    assert res.exit_code == 0, res.output
    fast = json.loads(res.stdout.strip().splitlines()[-1])
    assert all(abs(fast["scores"][k] - row["scores"][k]) < 5 for k in SCORE_NAMES)
    res = runner.invoke(app, ["eval", "--dataset", str(spaq), "--engine", "dinov2", "--model", str(run_dir),
                              "--json", "--no-progress"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["counts"]["scored"] == 16 and summary["quality"]["overall"]["n"] == 16
    assert set(summary["attributes"]) == set(SCORE_NAMES[1:]) and summary["scenes"]["n"] == 16


def test_cli_train_runs_and_resumes(tmp_path, spaq, backbone_dir):
    runner = CliRunner()
    args = ["train", "--engine", "dinov2", "--dataset", str(spaq), "--backbone", str(backbone_dir), "--epochs", "1",
            "-o", str(tmp_path / "run"), "--input-size", str(SIDE), "--crops", "1", "--batch-size", "8",
            "--device", "cpu", "--no-progress"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "best epoch 1" in res.output and (tmp_path / "run" / "model.safetensors").is_file()
    res = runner.invoke(app, [*args[:8], "2", *args[9:]])
    assert res.exit_code == 0 and "resuming" in res.output and "epoch 2/2" in res.output


def test_cli_errors_are_one_clear_line(tmp_path, spaq, backbone_dir, monkeypatch):
    runner = CliRunner(env={"COLUMNS": "400"})  # no wrapping inside Rich's error panel
    photo = str(spaq / "TestImage" / "00003.jpg")
    res = runner.invoke(app, ["analyze", photo, "--engine", "dinov2"])
    assert res.exit_code == 2 and "--model" in res.output
    res = runner.invoke(app, ["analyze", photo, "--engine", "dinov2", "--model", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and "not a folder" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["analyze", photo, "--quality-model", "handmade", "--engine", "dinov2", "--model", "x"])
    assert res.exit_code == 2 and "applies to the classic engine" in res.output
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    res = runner.invoke(app, ["train", "--dataset", str(spaq), "--backbone", "facebook/dinov2-small", "-o",
                              str(tmp_path / "run"), "--no-progress"])
    assert res.exit_code == 2, res.output
    assert "hf download facebook/dinov2-small" in res.output and "HF_HUB_OFFLINE" in res.output
    # the failed start left no run record: the same folder takes a run with a backbone that exists
    res = runner.invoke(app, ["train", "--dataset", str(spaq), "--backbone", str(backbone_dir), "-o",
                              str(tmp_path / "run"), "--no-progress", "--epochs", "1", "--input-size", str(SIDE),
                              "--crops", "1", "--device", "cpu"])
    assert res.exit_code == 0, res.output


# --------------------------------------------------------------------------------------------------
# Weight resolution


def test_missing_backbone_says_what_to_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(WeightsNotFound) as info:
        load_backbone("vit-b14")
    text = str(info.value)
    assert "facebook/dinov2-base" in text and "config.json" in text and "model.safetensors" in text
    assert "hf download" in text and "--local-dir" in text
    with pytest.raises(WeightsNotFound, match="is not a folder"):
        load_backbone(str(tmp_path / "no" / "such" / "folder"))
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(WeightsNotFound, match="lacks model.safetensors"):
        load_backbone(str(tmp_path / "half"))


def test_weights_resolve_from_the_hugging_face_cache(tmp_path, monkeypatch, backbone_dir):
    """A model in the standard cache layout is found by its Hub id, offline, without any request."""
    cache = tmp_path / "hub"
    snap = cache / "models--acme--tiny-dinov2" / "snapshots" / "0123456789abcdef0123456789abcdef01234567"
    snap.mkdir(parents=True)
    for f in backbone_dir.iterdir():
        (snap / f.name).write_bytes(f.read_bytes())
    (cache / "models--acme--tiny-dinov2" / "refs").mkdir()
    (cache / "models--acme--tiny-dinov2" / "refs" / "main").write_text(snap.name)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    found = resolve_weights("acme/tiny-dinov2", files=("config.json", "model.safetensors"))
    assert found.source == "Hugging Face cache" and found.path == snap
    model, where = load_backbone("acme/tiny-dinov2")
    assert "Hugging Face cache" in where and model.config.hidden_size == 32


def test_random_backbones_have_the_published_sizes():
    from picinspector.models.dinov2 import BACKBONES, backbone_config

    assert {k: backbone_config(k).hidden_size for k in BACKBONES} == {"vit-s14": 384, "vit-b14": 768,
                                                                       "vit-l14": 1024}
    with pytest.raises(ValueError, match="unknown backbone size"):
        load_backbone("random:vit-x")


def test_worker_processes_load_the_model_and_the_parent_does_not(run_dir, spaq):
    """With -j 2 the parent only checks the options (reads config.json): the weights load in the workers."""
    from picinspector.batch import iter_rows
    from picinspector.models import dinov2 as dinov2_module
    from picinspector.pipeline import check_options

    dinov2_module._cached_model.cache_clear()
    photos = [str(spaq / "TestImage" / f"{i:05d}.jpg") for i in range(3)]
    rows = list(iter_rows(photos, jobs=2, inspector_options={"engine": "dinov2", "model": str(run_dir),
                                                              "device": "cpu"}))
    by_path = {r["path"]: r for r in rows}  # rows come in the order they finish
    assert sorted(by_path) == photos and all(r["engine"] == "dinov2" for r in rows)
    assert dinov2_module._cached_model.cache_info().currsize == 0
    one = Inspector(engine="dinov2", model=str(run_dir), device="cpu").analyze(photos[1]).to_dict()
    assert by_path[photos[1]]["scores"] == one["scores"]
    # the check raises what building would raise
    with pytest.raises(WeightsNotFound, match="lacks config.json"):
        check_options(engine="dinov2", model=str(spaq))
    with pytest.raises(ValueError, match="crops must be >= 1"):
        check_options(engine="dinov2", model=str(run_dir), crops=0)
