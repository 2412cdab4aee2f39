"""The SmolVLM + LoRA feedback writer on a tiny random Idefics3 built offline (tests/_tiny_vlm.py).

The real training loop runs for a few steps on four synthetic image/caption pairs; nothing is
downloaded (HF_HUB_OFFLINE is set for every test).
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("transformers")

from _tiny_vlm import IMAGE_SEQ_LEN, build_tiny_vlm
from PIL import Image

from picinspector.datasets import CaptionSample
from picinspector.models import WeightsNotFound
from picinspector.pipeline import default_engine
from picinspector.models import vlm as vlm_mod
from picinspector.training import lora
from picinspector.pipeline import default_engine  # noqa: E402

CAPTIONS = [
    "The photo is sharp and well exposed, with bright colours.",
    "The photo is blurry and dark, with dull colours and low contrast.",
    "A noisy night scene: grain in the shadows and a dark sky.",
    "A bright portrait, slightly soft, with clean skin tones.",
]

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")

#: Options of the shared run: large steps, so that a tiny model learns within a few epochs.
FAST = {"lr": 1e-2, "grad_accum": 1, "progress": False, "seed": 0}


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny matrices: one thread is fastest, and it keeps a busy machine from stalling every op on
    thread synchronisation (seen: 11 us per linear layer on one thread, 8 ms on two)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("vlm")


@pytest.fixture(scope="module")
def base(workdir):
    return build_tiny_vlm(workdir / "base")


@pytest.fixture(scope="module")
def samples(workdir):
    """Four distinct images: sharp/bright, blurred/dark, noisy/dark, bright/soft."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:64]
    out = []
    for i, text in enumerate(CAPTIONS):
        img = np.zeros((48, 64, 3), np.float32)
        img[..., i % 3] = 0.8 * ((xx // (4 + 4 * i) + yy // 6) % 2)
        img += [0.6, 0.05, 0.1, 0.5][i]
        if i == 2:
            img += rng.normal(0, 0.15, img.shape)
        path = workdir / f"img{i}.png"
        Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(path)
        out.append(CaptionSample(str(path), text))
    return out


@pytest.fixture(scope="module")
def run(base, samples, workdir):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        return lora.train_vlm(samples, base, workdir / "run", epochs=8, **FAST)


def _base_tensors(base):
    from safetensors.torch import load_file

    return load_file(str(Path(base) / "model.safetensors"))


def _gen_ids(loaded, image, grounding=None, n=12):
    batch = loaded.inputs(image, grounding)
    with torch.inference_mode():
        out = loaded.model.generate(**batch, max_new_tokens=n, do_sample=False,
                                    pad_token_id=loaded.processor.tokenizer.pad_token_id)
    return out[0, batch["input_ids"].shape[1]:].tolist()


def _logits(loaded, image):
    batch = loaded.inputs(image)
    with torch.inference_mode():
        return loaded.model(**batch).logits


def _in_memory(run):
    return vlm_mod.VLM(run.model, run.processor, vlm_mod.read_settings(run.run_dir), "in memory")


# --------------------------------------------------------------------------------------------------
# Prompts and examples


def test_grounded_prompt_states_the_measures():
    plain = vlm_mod.build_prompt()
    grounded = vlm_mod.build_prompt({"scores": {"quality": 41.6, "sharpness": 12}, "scene": "night",
                                     "findings": ["Motion blur horizontally (about 2 degrees)."]})
    assert grounded.startswith(plain)
    assert "quality 42" in grounded and "sharpness 12" in grounded and "Scene: night." in grounded
    assert "Motion blur horizontally (about 2 degrees)" in grounded
    assert "Findings: none." in vlm_mod.build_prompt({"findings": []})
    with pytest.raises(ValueError, match="sharpnes"):
        vlm_mod.build_prompt({"scores": {"sharpnes": 3}})
    with pytest.raises(ValueError, match="0, 100"):
        vlm_mod.build_prompt({"scores": {"quality": 140}})
    with pytest.raises(ValueError, match="unknown grounding"):
        vlm_mod.build_prompt({"score": {}})


def test_labels_cover_the_answer_only(base, samples):
    processor = vlm_mod.load_processor(base)
    answer = CAPTIONS[1]
    ex = lora.encode_example(processor, samples[1].image, "Describe it.", answer, image_size=32)
    ids, labels = ex["input_ids"], ex["labels"]
    assert ids.shape == labels.shape == ex["attention_mask"].shape
    answered = labels != lora.IGNORE_INDEX
    n = int(answered.sum())
    # The answer is one contiguous block at the end, its labels equal to its ids ...
    assert answered[-n:].all() and not answered[:-n].any()
    assert torch.equal(labels[-n:], ids[-n:])
    tok = processor.tokenizer
    assert tok.decode(ids[-n:], skip_special_tokens=True).strip() == answer
    assert ids[-1] == tok.convert_tokens_to_ids("<end_of_utterance>")
    # ... and the prompt (with every image token) is exactly what inference feeds the model.
    prompt = vlm_mod.encode_prompt(processor, samples[1].image, "Describe it.", 32)["input_ids"][0]
    assert torch.equal(ids[:-n], prompt)
    assert int((ids == processor.image_token_id).sum()) == IMAGE_SEQ_LEN
    assert ex["pixel_values"].shape == (1, 3, 32, 32)

    batch = lora.collate([ex, lora.encode_example(processor, samples[0].image, "Describe it.", "Sharp.", 32)],
                         pad_id=tok.pad_token_id)
    assert batch["input_ids"].shape == batch["labels"].shape == (2, len(ids))
    padded = batch["attention_mask"] == 0
    assert padded[1].any() and not padded[0].any()
    assert (batch["labels"][padded] == lora.IGNORE_INDEX).all()


def test_target_regex_selects_language_model_projections_only():
    import re

    rx = re.compile(lora.target_modules("attention"))
    assert rx.fullmatch("model.text_model.layers.3.self_attn.q_proj")
    assert rx.fullmatch("model.text_model.layers.0.self_attn.o_proj")
    assert not rx.fullmatch("model.vision_model.encoder.layers.0.self_attn.q_proj")
    assert not rx.fullmatch("model.text_model.layers.0.mlp.up_proj")
    assert re.fullmatch(lora.target_modules("attention+mlp"), "model.text_model.layers.1.mlp.down_proj")
    with pytest.raises(ValueError, match="attention"):
        lora.target_modules("everything")


# --------------------------------------------------------------------------------------------------
# Training


def test_loss_goes_down_and_only_lora_weights_change(run, base):
    losses = [row["train_loss"] for row in run.history]
    assert len(losses) == 8 and run.global_step == 8 * 4
    assert losses[-1] < 0.7 * losses[0], losses

    before = _base_tensors(base)
    lora_names = []
    for name, param in run.model.named_parameters():
        if "lora_" in name:
            lora_names.append(name)
            assert param.requires_grad
            continue
        assert not param.requires_grad, name
        key = name.replace("base_model.model.", "", 1).replace(".base_layer", "")
        assert torch.equal(param.detach(), before[key]), f"{key} changed"
    assert lora_names and all(".text_model.layers." in n and ".self_attn." in n for n in lora_names)
    assert not any("vision_model" in n for n in lora_names)
    # The B matrices start at zero: training moved them.
    assert all(p.abs().sum() > 0 for n, p in run.model.named_parameters() if "lora_B" in n)


def test_run_folder_contents_and_metrics(run):
    out = run.run_dir
    for name in ("adapter_model.safetensors", "adapter_config.json", vlm_mod.SETTINGS_FILE, "metrics.csv",
                 "metrics.json", "tokenizer.json"):
        assert (out / name).is_file(), name
    settings = vlm_mod.read_settings(out)
    assert settings["image_size"] == 32 and settings["lora"]["rank"] == 8 and not settings["grounded"]
    assert settings["metrics"]["final_train_loss"] == pytest.approx(run.history[-1]["train_loss"])
    assert len(json.loads((out / "metrics.json").read_text())) == 8
    assert (out / "metrics.csv").read_text().splitlines()[0].startswith("epoch,global_step,train_loss")
    # One checkpoint per epoch, no pickle anywhere.
    assert len(list((out / "checkpoints").iterdir())) == 8
    assert not [p for p in out.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".ckpt")]


def test_adapter_reloads_to_identical_generations(run, samples):
    loaded = vlm_mod.load_vlm(run.run_dir)
    assert "run folder" in loaded.source
    live = _in_memory(run)
    for sample in samples:
        assert torch.allclose(_logits(loaded, sample.image), _logits(live, sample.image), atol=1e-6)
        assert _gen_ids(loaded, sample.image) == _gen_ids(live, sample.image)
        assert loaded.generate(sample.image, max_new_tokens=16) == live.generate(sample.image, max_new_tokens=16)
    # Training taught the words of the captions: the text is not empty.
    assert any(loaded.generate(s.image, max_new_tokens=16) for s in samples)


def test_resume_continues_from_the_saved_step(base, samples, workdir):
    # Photos loaded by two worker processes: the same batches, the same weights.
    straight = lora.train_vlm(samples, base, workdir / "straight", max_steps=4, workers=2, **FAST)
    first = lora.train_vlm(samples, base, workdir / "resumed", max_steps=2, **FAST)
    assert first.stopped == "max_steps" and first.global_step == 2 and first.resumed_from is None
    assert (workdir / "resumed" / "checkpoints" / "step-000002" / "optimizer.safetensors").is_file()
    second = lora.train_vlm(samples, base, workdir / "resumed", max_steps=4, **FAST)
    assert second.resumed_from.name == "step-000002" and second.global_step == 4
    a = dict(straight.model.named_parameters())
    b = dict(second.model.named_parameters())
    for name in (n for n in a if "lora_" in n):
        assert torch.allclose(a[name], b[name], atol=1e-6), name
    with pytest.raises(ValueError, match="rank"):
        lora.train_vlm(samples, base, workdir / "resumed", rank=4, max_steps=5, **FAST)


def test_interrupt_saves_the_last_step_and_resumes(base, samples, workdir, monkeypatch):
    load = lora._load_image
    calls = []

    def interrupted_on_the_third_photo(sample):
        calls.append(sample)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as Ctrl-C would, in the middle of step 3
        return load(sample)

    monkeypatch.setattr(lora, "_load_image", interrupted_on_the_third_photo)
    with pytest.raises(KeyboardInterrupt):
        lora.train_vlm(samples, base, workdir / "interrupted", epochs=1, **FAST)
    assert [p.name for p in (workdir / "interrupted" / "checkpoints").iterdir()] == ["step-000002"]
    monkeypatch.setattr(lora, "_load_image", load)
    done = lora.train_vlm(samples, base, workdir / "interrupted", epochs=1, **FAST)
    assert done.resumed_from.name == "step-000002" and done.global_step == 4 and done.epochs_done == 1


def test_grounded_run_with_the_samples_prompt(base, samples, workdir):
    asked = [CaptionSample(s.image, s.description, "Rate this photo.") for s in samples[:2]]
    result = lora.train_vlm(asked, base, workdir / "grounded", grounded=True, epochs=1, **FAST)
    settings = vlm_mod.read_settings(result.run_dir)
    assert settings["grounded"] is True and settings["instruction"] == "Rate this photo."
    writer = vlm_mod.VLMFeedback(result.run_dir, grounded=None, max_new_tokens=4)
    assert writer.grounded is True
    assert writer.vlm.prompt({"scores": {"quality": 50}}).startswith("Rate this photo.\nMeasured scores")


def test_merge_gives_the_same_generations(run, samples, workdir):
    merged_dir = lora.merge_vlm(run.run_dir, workdir / "merged")
    assert (merged_dir / "model.safetensors").is_file() and not (merged_dir / "adapter_config.json").exists()
    merged = vlm_mod.load_vlm(merged_dir)
    assert "merged model" in merged.source and merged.settings["merged"]
    adapter = vlm_mod.load_vlm(run.run_dir)
    for sample in samples:
        assert torch.allclose(_logits(merged, sample.image), _logits(adapter, sample.image), atol=1e-4)
        assert _gen_ids(merged, sample.image) == _gen_ids(adapter, sample.image)


def test_evaluate_reports_rouge_and_contradictions(run, samples):
    summary, rows = lora.evaluate_vlm(samples, run.run_dir, progress=False, max_new_tokens=24)
    assert summary["n"] == len(rows) == 4 and summary["grounded"] is False
    for key in ("rouge1", "rouge2", "rougeL"):
        assert 0.0 <= summary[key] <= 1.0
        assert all(0.0 <= row[key] <= 1.0 for row in rows)
    assert "contradiction_rate" not in summary
    assert [r["reference"] for r in rows] == CAPTIONS

    pytest.importorskip("picinspector.feedback.captions")
    truths = [{"scores": {"sharpness": 90.0, "brightness": 10.0}, "scenes": []}] * 4
    summary, rows = lora.evaluate_vlm(samples, run.run_dir, truths=truths, grounded=True, progress=False,
                                      max_new_tokens=24)
    assert summary["grounded"] is True
    assert 0.0 <= summary["contradiction_rate"] <= 1.0
    assert all(isinstance(r["contradictions"], list) for r in rows)


def test_vlm_feedback_writes_a_paragraph_for_a_loaded_photo(run, samples):
    from picinspector import Inspector
    from picinspector.feedback import rules
    from picinspector.io import load_photo

    photo = load_photo(samples[1].image)
    report = Inspector(threads=1).analyze(photo)
    writer = vlm_mod.VLMFeedback(run.run_dir, grounded=True, max_new_tokens=16)
    findings, paragraph = writer(photo, report.measures, report.scores, report.scene)
    assert [f for f in findings if f.kind != "vlm_no_text"] == rules.write(photo, report.measures, report.scores,
                                                                           report.scene)[0]
    assert isinstance(paragraph, str) and paragraph
    # Deterministic: the same photo gets the same paragraph.
    assert writer(photo, report.measures, report.scores, report.scene)[1] == paragraph
    grounding = vlm_mod.grounding_from(report.scores, report.scene, findings)
    assert f"quality {report.scores['quality']:.0f}" in writer.vlm.prompt(grounding)

    # A model that writes nothing: the rules paragraph, and a finding that says so
    writer.vlm.generate = lambda *args, **kwargs: ""
    findings, paragraph = writer(photo, report.measures, report.scores, report.scene)
    assert paragraph == rules.write(photo, report.measures, report.scores, report.scene)[1]
    assert findings[-1].kind == "vlm_no_text" and findings[-1].severity == "info"


# --------------------------------------------------------------------------------------------------
# Weights and imports


def test_missing_base_names_what_to_download(tmp_path, samples, run):
    with pytest.raises(WeightsNotFound, match="hf download HuggingFaceTB/SmolVLM-256M-Instruct"):
        vlm_mod.load_vlm(tmp_path / "no-such-folder")
    with pytest.raises(WeightsNotFound, match="hf download picinspector-tests/no-such-vlm"):
        vlm_mod.load_vlm("picinspector-tests/no-such-vlm")
    with pytest.raises(WeightsNotFound, match="HF_HUB_OFFLINE"):
        lora.train_vlm(samples, "picinspector-tests/no-such-vlm", tmp_path / "run", progress=False)
    # A run folder whose base has gone says which base it needs.
    moved = tmp_path / "moved-run"
    moved.mkdir()
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        (moved / name).write_bytes((run.run_dir / name).read_bytes())
    settings = vlm_mod.read_settings(run.run_dir)
    vlm_mod.write_settings(moved, {**settings, "base": str(tmp_path / "gone")})
    with pytest.raises(WeightsNotFound, match="gone"):
        vlm_mod.load_vlm(moved)


def test_importing_picinspector_does_not_import_torch():
    code = ("import sys, picinspector, picinspector.models.vlm, picinspector.training.lora; "
            "print('torch' in sys.modules, 'transformers' in sys.modules, 'peft' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1] / "src")
    assert out.stdout.split() == ["False", "False", "False"]


def test_missing_images_are_named_before_loading_the_model(tmp_path):
    samples = [CaptionSample(str(tmp_path / f"gone{i}.jpg"), "A photo.") for i in range(5)]
    with pytest.raises(FileNotFoundError, match=r"none of the 5 images is usable: .*gone0\.jpg "
                                                r"\(does not exist\).* and 2 more"):
        lora.train_vlm(samples, tmp_path / "no-base", tmp_path / "run", progress=False)


def test_unreadable_photos_are_skipped_and_reported(tmp_path, base, samples):
    """A missing file, a file that is no image, and a JPEG cut short (found only when decoded): the
    run trains on the rest and lists all three with their reasons."""
    import io

    buf = io.BytesIO()
    Image.fromarray(np.full((48, 64, 3), 120, np.uint8)).save(buf, format="JPEG")
    (tmp_path / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (tmp_path / "text.jpg").write_bytes(b"this is not a JPEG")
    broken = [CaptionSample(str(tmp_path / name), "A photo.") for name in ("cut.jpg", "text.jpg", "gone.jpg")]
    result = lora.train_vlm([*samples, *broken], base, tmp_path / "run", epochs=1, **FAST)
    assert set(result.bad_images) == {str(tmp_path / n) for n in ("cut.jpg", "text.jpg", "gone.jpg")}
    assert "does not exist" in result.bad_images[str(tmp_path / "gone.jpg")]
    listed = (tmp_path / "run" / "bad_images.txt").read_text()
    assert all(name in listed for name in ("cut.jpg", "text.jpg", "gone.jpg"))
    assert result.epochs_done == 1 and result.history[0]["batches"] == len(samples)


# --------------------------------------------------------------------------------------------------
# The command line: train, eval (with and without grounding), analyze --feedback vlm


def test_cli_train_eval_and_analyze_with_the_vlm_writer(tmp_path, base, samples):
    from typer.testing import CliRunner

    from picinspector.cli import app
    from picinspector.datasets import write_captions

    runner = CliRunner(env={"COLUMNS": "300"})
    captions = tmp_path / "captions.jsonl"
    write_captions(samples, captions)
    run_dir, merged = tmp_path / "run", tmp_path / "merged"
    res = runner.invoke(app, ["train", "--engine", "vlm", "--captions", str(captions), "--base", str(base), "-o",
                              str(run_dir), "--epochs", "2", "--lr", "1e-2", "--grad-accum", "1", "--device", "cpu",
                              "--no-progress", "--merge", str(merged)])
    assert res.exit_code == 0, res.output
    assert (run_dir / "adapter_model.safetensors").is_file() and "merged model" in res.output
    assert list(merged.glob("*.safetensors"))

    res = runner.invoke(app, ["eval", "--engine", "vlm", "--captions", str(captions), "--model", str(run_dir),
                              "--compare-grounding", "--json", "--device", "cpu", "--max-new-tokens", "8"])
    assert res.exit_code == 0, res.output
    results = json.loads(res.stdout)["results"]
    assert [r["grounded"] for r in results] == [True, False]
    assert all(0.0 <= r["rougeL"] <= 1.0 and r["n"] == 4 for r in results)

    photo = str(samples[1].image)
    res = runner.invoke(app, ["analyze", photo, "--feedback", "vlm", "--vlm-model", str(run_dir), "--json",
                              "--device", "cpu"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout.strip().splitlines()[-1])
    assert row["engine"] == default_engine() and isinstance(row["feedback"], str) and row["feedback"]

    res = runner.invoke(app, ["analyze", photo, "--vlm-model", str(run_dir)])
    assert res.exit_code == 2 and "applies to --feedback vlm" in res.output
    res = runner.invoke(app, ["analyze", photo, "--feedback", "vlm"])
    assert res.exit_code == 2 and "--vlm-model" in res.output
    res = runner.invoke(app, ["eval", "--engine", "vlm", "--captions", str(captions)])
    assert res.exit_code == 2 and "--model" in res.output


def test_evaluation_skips_unreadable_photos_and_names_them(run, samples, tmp_path):
    (tmp_path / "text.png").write_bytes(b"no image here")
    broken = CaptionSample(str(tmp_path / "text.png"), "A photo.", meta={"scores": {"quality": 50.0}})
    truths = [{"scores": {"quality": 50.0}}] * (len(samples) + 1)
    summary, rows = lora.evaluate_vlm([*samples[:2], broken, *samples[2:]], run.run_dir, truths=truths,
                                      max_new_tokens=4, progress=False)
    assert summary["n"] == len(samples) == len(rows)
    assert [f["image"] for f in summary["failed"]] == [str(tmp_path / "text.png")]
    assert summary["failed"][0]["kind"] == "not_an_image" and "text.png" in summary["failed"][0]["message"]
    assert str(tmp_path / "text.png") not in [r["image"] for r in rows]


def test_option_check_loads_nothing_and_fails_like_loading(run, tmp_path):
    from picinspector.pipeline import check_options

    check_options(feedback="vlm", feedback_options={"model_dir": str(run.run_dir), "device": "cpu"})
    with pytest.raises(WeightsNotFound, match="not a folder"):
        check_options(feedback="vlm", feedback_options={"model_dir": str(tmp_path / "nothing/here/x")})
    with pytest.raises(ValueError, match="needs a model"):
        check_options(feedback="vlm")
