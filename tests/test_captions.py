"""Caption datasets, reference descriptions from labels and measures, claim checking, ROUGE."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter

from picinspector.datasets import (
    CAPTION_FORMATS,
    CaptionSample,
    DatasetError,
    Sample,
    detect_caption_format,
    load_caption_csv,
    load_caption_jsonl,
    load_captions,
    load_llava,
    load_qinstruct,
    write_captions,
)
from picinspector.feedback.captions import (
    BANDS,
    CLAIMS,
    band_of,
    captions_from_labels,
    captions_from_measures,
    captions_from_reports,
    contradiction_rate,
    contradictions,
    describe,
    extract_claims,
)
from picinspector.report import SCORE_NAMES
from picinspector.scene import SCENES
from picinspector.training.text_metrics import rouge


def _write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------------
# Loaders


def test_qinstruct_conversations_one_sample_per_pair(tmp_path):
    path = _write_json(tmp_path / "q_instruct.json", [
        {"id": "a", "image": "imgs/a.jpg",
         "conversations": [{"from": "human", "value": "<image>\nHow is the clarity of this image?"},
                           {"from": "gpt", "value": "The image is blurry."}]},
        {"id": "b", "image": "imgs/b.jpg",
         "conversations": [{"from": "system", "value": "You rate photos."},
                           {"from": "human", "value": "Is it noisy? <image>"},
                           {"from": "gpt", "value": "Yes, quite noisy."},
                           {"from": "human", "value": "And the exposure?"},
                           {"from": "gpt", "value": "It is dark."}]},
    ])
    out = load_qinstruct(path)
    assert [s.description for s in out] == ["The image is blurry.", "Yes, quite noisy.", "It is dark."]
    assert [s.prompt for s in out] == ["How is the clarity of this image?", "Is it noisy?", "And the exposure?"]
    assert out[0].image == str(tmp_path / "imgs" / "a.jpg")
    assert out[1].image == out[2].image == str(tmp_path / "imgs" / "b.jpg")
    assert out[0].meta == {"id": "a"}
    assert [s.meta for s in out[1:]] == [{"id": "b", "turn": 0}, {"id": "b", "turn": 1}]


def test_qinstruct_description_fields(tmp_path):
    absolute = str(tmp_path / "elsewhere" / "e.jpg")
    path = _write_json(tmp_path / "pathway.json", [
        {"image": "a.jpg", "text": "Sharp and clean.", "source": "spaq"},
        {"image": "b.jpg", "description": "Dull colours."},
        {"image": "c.jpg", "caption": "Overexposed sky.", "question": "<image> Describe it."},
        {"image": "d.jpg", "output": "Low contrast."},
        {"image": absolute, "conversations": [{"from": "user", "value": "<image>"},
                                              {"from": "assistant", "value": "Fine."}]},
    ])
    out = load_qinstruct(path)
    assert [s.description for s in out] == ["Sharp and clean.", "Dull colours.", "Overexposed sky.", "Low contrast.",
                                            "Fine."]
    assert [s.prompt for s in out] == [None, None, "Describe it.", None, None]
    assert out[0].meta == {"source": "spaq"}
    assert out[3].image == str(tmp_path / "d.jpg")
    assert out[4].image == absolute
    assert detect_caption_format(path) == "qinstruct"


def test_llava(tmp_path):
    path = _write_json(tmp_path / "llava.json", [
        {"id": "000001", "image": "coco/1.jpg",
         "conversations": [{"from": "human", "value": "What is shown?\n<image>"},
                           {"from": "gpt", "value": "A dog on a sofa."}]},
    ])
    assert detect_caption_format(path) == "llava"
    (sample,) = load_llava(path)
    assert sample == CaptionSample(str(tmp_path / "coco" / "1.jpg"), "A dog on a sofa.", "What is shown?",
                                   {"id": "000001"})
    assert load_captions(path) == [sample]
    assert load_captions(tmp_path) == [sample]  # a folder holding one annotation file
    # The Q-Instruct loader reads the same file the same way (shared conversation code).
    assert load_qinstruct(path) == [sample]


def test_csv_with_aliases_and_extra_columns(tmp_path):
    path = tmp_path / "captions.csv"
    path.write_text("Filename,Caption,Prompt,rater\nx/1.png,\"Blurry, dark.\",Describe it,ann\n"
                    "2.png,Vivid colours.,,\n", encoding="utf-8")
    out = load_caption_csv(path)
    assert out == [CaptionSample(str(tmp_path / "x" / "1.png"), "Blurry, dark.", "Describe it", {"rater": "ann"}),
                   CaptionSample(str(tmp_path / "2.png"), "Vivid colours.", None, {})]
    assert detect_caption_format(path) == "csv"
    assert load_captions(path, format="csv") == out


def test_jsonl_round_trip(tmp_path):
    samples = [
        CaptionSample(str(tmp_path / "imgs" / "a.jpg"), "Très net, pas de bruit.", "Décris la photo.",
                      {"scores": {"sharpness": 91.5}, "scenes": ["night"]}),
        CaptionSample(str(tmp_path / "b.png"), "Dark.", None, {}),
    ]
    out = tmp_path / "new" / "folder" / "captions.jsonl"
    assert write_captions(samples, out) == 2
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert lines[0]["image"] == os.path.join("..", "..", "imgs", "a.jpg")  # relative to the output's folder
    assert "prompt" not in lines[1]
    assert "Très net" in out.read_text(encoding="utf-8")  # UTF-8, not \u escapes
    assert detect_caption_format(out) == "jsonl"
    assert load_captions(out) == samples
    assert load_caption_jsonl(out) == samples


def test_write_captions_refuses_reserved_meta_keys(tmp_path):
    with pytest.raises(ValueError, match="reserved"):
        write_captions([CaptionSample("a.jpg", "x", None, {"prompt": "y"})], tmp_path / "c.jsonl")


def test_formats_registry_and_unknown_names(tmp_path):
    assert set(CAPTION_FORMATS) == {"qinstruct", "llava", "csv", "jsonl"}
    path = _write_json(tmp_path / "a.json", [])
    with pytest.raises(ValueError, match="unknown caption format"):
        load_captions(path, format="coco")
    (tmp_path / "a.txt").write_text("x", encoding="utf-8")
    with pytest.raises(DatasetError, match="suffix"):
        detect_caption_format(tmp_path / "a.txt")
    with pytest.raises(DatasetError, match="does not exist"):
        load_captions(tmp_path / "missing.jsonl")


def _human(text="<image> How is it?"):
    return {"from": "human", "value": text}


def _gpt(text="Fine."):
    return {"from": "gpt", "value": text}


@pytest.mark.parametrize("name, content, loader, expected", [
    ("bad.json", "[{\"image\": ", load_qinstruct, r"bad\.json: not JSON"),
    ("dict.json", json.dumps({"image": "a.jpg"}), load_qinstruct, r"dict\.json: expected a JSON list"),
    ("noimage.json", json.dumps([{"image": "a.jpg", "text": "ok"}, {"text": "no image"}]), load_qinstruct,
     r"noimage\.json entry 1: no 'image'"),
    ("nodesc.json", json.dumps([{"image": "a.jpg", "rating": 3}]), load_qinstruct,
     r"nodesc\.json entry 0: no 'conversations' nor a description"),
    ("empty.json", json.dumps([{"image": "a.jpg", "caption": "  "}]), load_qinstruct,
     r"empty\.json entry 0: 'caption' is empty"),
    ("textonly.json", json.dumps([{"id": "1", "conversations": [_human(), _gpt()]}]), load_llava,
     r"textonly\.json entry 0: no 'image'"),
    ("noconv.json", json.dumps([{"id": "1", "image": "a.jpg"}]), load_llava,
     r"noconv\.json entry 0: no 'conversations'"),
    ("twice.json", json.dumps([{"id": "1", "image": "a.jpg", "conversations": [_human(), _human(), _gpt()]}]),
     load_llava, r"twice\.json entry 0 turn 1: two 'human' turns in a row"),
    ("answerfirst.json", json.dumps([{"id": "1", "image": "a.jpg", "conversations": [_gpt()]}]), load_llava,
     r"answerfirst\.json entry 0 turn 0: an answer .* with no question"),
    ("speaker.json",
     json.dumps([{"id": "1", "image": "a.jpg", "conversations": [_human(), {"from": "bot", "value": "x"}]}]),
     load_llava, r"speaker\.json entry 0 turn 1: unknown speaker"),
    ("unanswered.json", json.dumps([{"id": "1", "image": "a.jpg", "conversations": [_human(), _gpt(), _human()]}]),
     load_llava, r"unanswered\.json entry 0: the last question has no answer"),
    ("list.json", json.dumps([{"image": ["a.jpg", "b.jpg"], "text": "x"}]), load_qinstruct,
     r"list\.json entry 0: 'image' is a list"),
    ("lines.jsonl", '{"image": "a.jpg", "description": "ok"}\n\n{"image": "b.jpg", "description": \n',
     load_caption_jsonl, r"lines\.jsonl line 3: not JSON"),
    ("nodesc.jsonl", '{"image": "a.jpg", "description": "ok"}\n{"image": "b.jpg", "caption": "x"}\n',
     load_caption_jsonl, r"nodesc\.jsonl line 2: 'description' is missing"),
    ("array.jsonl", '[1, 2]\n', load_caption_jsonl, r"array\.jsonl line 1: expected a JSON object"),
    ("nocol.csv", "image,score\na.jpg,3\n", load_caption_csv, r"nocol\.csv: no 'description' / 'caption'"),
    ("emptycell.csv", "image,text\na.jpg,ok\nb.jpg,\n", load_caption_csv, r"emptycell\.csv row 3: the description"),
])
def test_bad_input_names_file_and_entry(tmp_path, name, content, loader, expected):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DatasetError, match=expected):
        loader(path)


# --------------------------------------------------------------------------------------------------
# describe


FULL = {"quality": 30.0, "brightness": 50.0, "colorfulness": 10.0, "contrast": 90.0, "noisiness": 80.0,
        "sharpness": 20.0}


def test_describe_is_deterministic_for_a_seed_and_varied_across_seeds():
    texts = [describe(FULL, "night", np.random.default_rng(seed)) for seed in range(12)]
    assert texts[3] == describe(FULL, "night", np.random.default_rng(3))
    assert len(set(texts)) >= 6


def _expected_band_claims(scores: dict[str, float]) -> set[str]:
    out = set()
    for name, value in scores.items():
        where = band_of(name, value)
        if where != "mid":
            out.add(BANDS[name].low_claim if where == "low" else BANDS[name].high_claim)
    return out


def test_generated_captions_state_their_bands_and_nothing_false():
    """Property: over 300 random score vectors (some scores missing), every band claim of the text is
    true of the scores with no margin, and the text states exactly the claims of the scores outside
    their middle bands, and the scene it was given."""
    rng = np.random.default_rng(2024)
    for i in range(300):
        keep = rng.random(len(SCORE_NAMES)) < 0.8
        if not keep.any():
            keep[rng.integers(len(SCORE_NAMES))] = True
        scores = {n: float(np.round(rng.uniform(0, 100), 1)) for n, k in zip(SCORE_NAMES, keep) if k}
        scene = [None, *SCENES][rng.integers(len(SCENES) + 1)]
        text = describe(scores, scene, np.random.default_rng(i))
        labels = [scene] if scene else []
        assert contradictions(text, scores, labels, margin=0.0) == [], (text, scores)
        claims = extract_claims(text)
        assert {c for c in claims if not c.startswith("scene:")} == _expected_band_claims(scores), (text, scores)
        assert {c for c in claims if c.startswith("scene:")} == (
            {f"scene:{scene}"} if scene not in (None, "others") else set()), text


def test_band_edges_are_exact():
    rng = np.random.default_rng(0)
    assert "blurry" in extract_claims(describe({"sharpness": 34.9}, None, rng))
    assert "blurry" not in extract_claims(describe({"sharpness": 35.0}, None, rng))
    assert "sharp" in extract_claims(describe({"sharpness": 65.0}, None, rng))


def test_suggestion_addresses_the_worst_problem():
    text = describe({"quality": 20, "sharpness": 5, "noisiness": 38, "brightness": 50}, None,
                    np.random.default_rng(1))
    assert "shutter speed" in text  # both blur tips mention it
    assert "ISO" not in text
    text = describe({"quality": 20, "sharpness": 33, "noisiness": 3}, None, np.random.default_rng(1))
    assert "ISO" in text and "shutter speed" not in text


def test_quality_only_description():
    text = describe({"quality": 20.0}, None, np.random.default_rng(0))
    assert extract_claims(text) == {"low_quality"}
    assert "20/100" in text
    assert extract_claims(describe({"quality": 85.0}, None, np.random.default_rng(0))) == {"high_quality"}
    assert extract_claims(describe({"quality": 57.0}, None, np.random.default_rng(0))) == set()


@pytest.mark.parametrize("scores, scene, match", [
    ({"sharpness": 120.0}, None, "outside 0-100"),
    ({"focus": 50.0}, None, "unknown score"),
    ({"quality": 50.0}, "beach", "unknown scene"),
    ({"quality": None}, None, "nothing to describe"),
])
def test_describe_refuses_bad_input(scores, scene, match):
    with pytest.raises(ValueError, match=match):
        describe(scores, scene, np.random.default_rng(0))


# --------------------------------------------------------------------------------------------------
# Captions from labels and from measures


def test_captions_from_labels():
    samples = [
        Sample("a.jpg", mos=30, mos01=0.3, attributes={"sharpness": 12.0, "noisiness": 90.0}, scenes=["night"]),
        Sample("b.jpg", mos=4.5, mos01=0.875),  # a dataset with only a MOS
        Sample("c.jpg"),  # no label: left out
    ]
    out = captions_from_labels(samples, seed=7)
    assert [c.image for c in out] == ["a.jpg", "b.jpg"]
    assert out[0].meta == {"source": "labels", "scores": {"sharpness": 12.0, "noisiness": 90.0, "quality": 30.0},
                           "scenes": ["night"]}
    assert extract_claims(out[0].description) == {"blurry", "clean", "low_quality", "scene:night"}
    assert extract_claims(out[1].description) == {"high_quality"}
    assert out[0].prompt
    # The wording depends on the seed and the path, not on the order of the samples.
    assert [c.description for c in captions_from_labels(samples[::-1], seed=7)] == [out[1].description,
                                                                                    out[0].description]
    assert contradiction_rate([c.description for c in out], [c.meta for c in out], margin=0.0)["n_contradicted"] == 0


def test_captions_from_labels_names_the_image_with_a_bad_label():
    with pytest.raises(ValueError, match=r"a\.jpg: score 'sharpness' is 140\.0, outside 0-100"):
        captions_from_labels([Sample("a.jpg", attributes={"sharpness": 140.0})])
    with pytest.raises(ValueError, match="seed"):
        captions_from_labels([Sample("a.jpg", mos01=0.5)], seed=-1)


def _texture(seed: int = 0) -> np.ndarray:
    """A sharp checkerboard with fine random texture, as 8-bit RGB."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:384, :512]
    gray = 0.6 * ((yy // 16 + xx // 16) % 2) + 0.4 * rng.random((384, 512))
    rgb = np.stack([gray, 0.8 * gray + 0.1, 0.9 - 0.5 * gray], axis=-1)
    return (np.clip(rgb, 0, 1) * 220 + 20).astype(np.uint8)


def test_captions_from_measures_call_a_blurred_image_blurry(tmp_path):
    sharp = _texture()
    blurred = np.stack([gaussian_filter(sharp[..., c].astype(float), 6) for c in range(3)], axis=-1)
    paths = [str(tmp_path / "sharp.png"), str(tmp_path / "missing.png"), str(tmp_path / "blurred.png")]
    Image.fromarray(sharp).save(paths[0])
    Image.fromarray(np.clip(blurred + 0.5, 0, 255).astype(np.uint8)).save(paths[2])

    captions, errors = captions_from_measures(paths, seed=0)
    assert [e["path"] for e in errors] == [paths[1]]
    assert [c.image for c in captions] == [paths[0], paths[2]]
    by_name = {os.path.basename(c.image): c for c in captions}
    assert "blurry" in extract_claims(by_name["blurred.png"].description)
    assert "blurry" not in extract_claims(by_name["sharp.png"].description)
    assert by_name["blurred.png"].meta["scores"]["sharpness"] < by_name["sharp.png"].meta["scores"]["sharpness"]
    rate = contradiction_rate([c.description for c in captions], [c.meta for c in captions], margin=0.0)
    assert rate["n_contradicted"] == 0 and rate["n_claims"] >= 4


def test_captions_from_reports_refuses_error_rows_and_hides_weak_scene_guesses():
    row = {"path": "x.jpg", "scores": dict.fromkeys(SCORE_NAMES, 50.0),
           "scene": {"label": "night", "confidence": 0.3}, "findings": [], "engine": "classic", "version": "0"}
    (caption,) = captions_from_reports([row])
    assert caption.meta["scenes"] == [] and caption.meta["scene_guess"] == "night"
    assert not any(c.startswith("scene:") for c in extract_claims(caption.description))
    (caption,) = captions_from_reports([{**row, "scene": {"label": "night", "confidence": 0.8}}])
    assert "scene:night" in extract_claims(caption.description)
    with pytest.raises(ValueError, match="error row"):
        captions_from_reports([{"path": "y.jpg", "error": {"kind": "not_found", "message": "no such file"}}])


def test_a_finding_that_the_scores_contradict_is_not_quoted():
    row = {"path": "x.jpg", "scores": {**dict.fromkeys(SCORE_NAMES, 50.0), "noisiness": 55.0},
           "scene": {"label": "others", "confidence": 0.3}, "engine": "classic", "version": "0",
           "findings": [{"kind": "noise", "severity": "minor", "message": "Visible noise (sigma 3.1 levels)",
                         "suggestion": "Use a lower ISO."}]}
    (caption,) = captions_from_reports([row])
    assert "sigma" not in caption.description  # noisiness 55 is not in the noisy band
    row["scores"]["noisiness"] = 20.0
    (caption,) = captions_from_reports([row])
    assert "visible noise (sigma 3.1 levels)" in caption.description


# --------------------------------------------------------------------------------------------------
# Claims


@pytest.mark.parametrize("text, present, absent", [
    ("The photo is blurry and noisy.", {"blurry", "noisy"}, set()),
    ("The photo is not blurry.", set(), {"blurry"}),
    ("There is no noise.", {"clean"}, {"noisy"}),
    ("It is free of noise.", {"clean"}, {"noisy"}),
    ("Noise-free and sharp.", {"clean", "sharp"}, {"noisy"}),
    ("Neither blurry nor noisy.", set(), {"blurry", "noisy"}),
    ("It isn't dark at all.", set(), {"dark"}),
    ("Slightly noisy, reasonably sharp.", set(), {"noisy", "sharp"}),
    ("The background is blurry but the subject is sharp.", {"sharp"}, {"blurry"}),
    ("A dark background behind the cat.", {"scene:animal"}, {"dark"}),
    ("Apply noise reduction in editing.", set(), {"noisy"}),
    ("Vivid colours, high contrast.", {"vivid_colours", "high_contrast"}, {"dull_colours", "low_contrast"}),
    ("Desaturated, under-saturated colours.", {"dull_colours"}, {"vivid_colours"}),
    ("It is underexposed and too dark.", {"dark"}, {"bright"}),
    ("The sky is overexposed.", set(), {"bright"}),
    ("Overall quality is poor.", {"low_quality"}, {"high_quality"}),
    ("The overall clarity of this image is low.", {"blurry"}, {"sharp"}),
    ("Good sharpness; the details are clear.", {"sharp"}, {"blurry"}),
    ("It is clear that the sky is clear.", set(), {"sharp"}),
    ("The exposure is insufficient.", {"dark"}, {"bright"}),
    ("Colour saturation is low.", {"dull_colours"}, {"vivid_colours"}),
    ("A portrait of a woman at night.", {"scene:human", "scene:night"}, set()),
    ("A landscape with no people.", {"scene:landscape"}, {"scene:human"}),
])
def test_extract_claims(text, present, absent):
    claims = extract_claims(text)
    assert present <= claims, claims
    assert not absent & claims, claims


def test_every_claim_kind_has_a_test_and_a_pattern():
    kinds = {b.low_claim for b in BANDS.values()} | {b.high_claim for b in BANDS.values()}
    kinds |= {f"scene:{s}" for s in SCENES if s != "others"}
    assert set(CLAIMS) == kinds
    assert all(c.patterns for c in CLAIMS.values())


def test_contradictions_use_the_bands_with_a_margin():
    assert contradictions("It is blurry.", {"sharpness": 40.0}) == []  # borderline: within the margin
    assert contradictions("It is blurry.", {"sharpness": 40.0}, margin=0.0) == ["blurry"]
    assert contradictions("It is blurry.", {"sharpness": 50.0}) == ["blurry"]
    assert contradictions("It is blurry.", {"quality": 50.0}) == []  # no sharpness: not judged
    assert contradictions("It is sharp and very dark.", {"sharpness": 20.0, "brightness": 70.0}) == ["dark", "sharp"]
    assert contradictions("A night scene.", {}, ["landscape"]) == ["scene:night"]
    assert contradictions("A night scene.", {}, "night") == []
    assert contradictions("A night scene.", {}, None) == []


def test_contradiction_rate_counts():
    texts = ["It is blurry and noisy.", "It is sharp. Colours are vivid.", "A night scene, very dark."]
    truths = [{"scores": {"sharpness": 90.0, "noisiness": 20.0}},
              {"scores": {"sharpness": 90.0}},
              {"scores": {"brightness": 80.0}, "scenes": ["night"]}]
    rate = contradiction_rate(texts, truths)
    assert rate["n_texts"] == 3
    assert rate["n_claims"] == 5 and rate["n_unjudged"] == 1  # "vivid" has no colourfulness to judge it
    assert rate["n_contradicted"] == 2 and rate["n_texts_contradicted"] == 2
    assert rate["rate_per_text"] == pytest.approx(2 / 3)
    assert rate["rate_per_claim"] == pytest.approx(2 / 5)
    assert rate["contradictions_per_text"] == pytest.approx(2 / 3)
    assert rate["per_kind"] == {
        "blurry": {"claims": 1, "contradicted": 1}, "dark": {"claims": 1, "contradicted": 1},
        "noisy": {"claims": 1, "contradicted": 0}, "scene:night": {"claims": 1, "contradicted": 0},
        "sharp": {"claims": 1, "contradicted": 0},
    }
    with pytest.raises(ValueError, match="one truth per text"):
        contradiction_rate(texts, truths[:2])


# --------------------------------------------------------------------------------------------------
# ROUGE


def test_rouge_known_answers():
    same = rouge(["the photo is sharp and clean"], ["the photo is sharp and clean"])
    assert same["rouge1"] == same["rouge2"] == same["rougeL"] == pytest.approx(1.0)
    disjoint = rouge(["blurry dark noise"], ["vivid colours everywhere"])
    assert disjoint["rouge1"] == disjoint["rouge2"] == disjoint["rougeL"] == 0.0
    part = rouge(["the cat sat on the mat", "a b"], ["the cat sat", "a b"])
    # rouge1: P 3/6, R 3/3; rouge2: P 2/5, R 2/2; rougeL: LCS 3 of 6 and of 3.
    assert part["per_item"]["rouge1"][0] == pytest.approx(2 / 3)
    assert part["per_item"]["rouge2"][0] == pytest.approx(2 * 0.4 / 1.4)
    assert part["per_item"]["rougeL"][0] == pytest.approx(2 / 3)
    assert part["rouge1"] == pytest.approx((2 / 3 + 1.0) / 2)
    assert part["n"] == 2
    with pytest.raises(ValueError, match="references"):
        rouge(["a"], [])


def test_rouge_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "rouge_score", None)
    with pytest.raises(ImportError, match="pip install rouge-score"):
        rouge(["a"], ["a"])


# --------------------------------------------------------------------------------------------------
# picinspector captions make


def test_cli_captions_make_from_labels_and_from_measures(tmp_path):
    from typer.testing import CliRunner

    from picinspector.cli import app

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    sharp = np.kron(rng.random((24, 32)) > 0.5, np.ones((8, 8))).astype(float)  # 192x256 checkerboard-like
    for name, img in (("sharp.png", sharp), ("blurred.png", gaussian_filter(sharp, 6))):
        Image.fromarray((np.stack([img] * 3, -1) * 200 + 20).astype(np.uint8)).save(photos / name)
    (photos / "broken.png").write_bytes(b"not a png")
    (tmp_path / "labels.csv").write_text("image,mos\nphotos/sharp.png,4.5\nphotos/blurred.png,1.5\n")
    runner = CliRunner(env={"COLUMNS": "300"})

    res = runner.invoke(app, ["captions", "make", "--dataset", str(tmp_path / "labels.csv"), "--format", "csv",
                              "-o", str(tmp_path / "from_labels.jsonl")])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in (tmp_path / "from_labels.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["description"] for r in rows)
    by_name = {Path(r["image"]).name: r for r in rows}
    assert by_name["sharp.png"]["scores"]["quality"] > by_name["blurred.png"]["scores"]["quality"]

    res = runner.invoke(app, ["captions", "make", "--dataset", str(photos), "--from", "measures", "-o",
                              str(tmp_path / "from_measures.jsonl")])
    assert res.exit_code == 0, res.output
    assert "broken.png" in res.output and "1 could not be read" in res.output
    rows = {Path(json.loads(line)["image"]).name: json.loads(line)
            for line in (tmp_path / "from_measures.jsonl").read_text().splitlines()}
    assert set(rows) == {"sharp.png", "blurred.png"}
    assert "blurry" in extract_claims(rows["blurred.png"]["description"])
    assert "blurry" not in extract_claims(rows["sharp.png"]["description"])

    res = runner.invoke(app, ["captions", "make", "--dataset", str(photos), "--from", "labels", "-o",
                              str(tmp_path / "x.jsonl")])
    assert res.exit_code == 2 and "Error" in res.output
