"""EfficientNet-Lite backbones: the registry, the ONNX graph on onnxruntime (no torch), the torch model
it was exported from, and the two against each other.

Known answers prove weights and preprocessing together: scikit-image's `chelsea` is a cat, `coffee` a
cup of espresso (ImageNet classes 281-285 and 967/968).
"""

import hashlib
import importlib.util

import numpy as np
import pytest

from picinspector.models.effnet import BACKBONES, Backbone, GraphUnavailable, get_backbone, graph_path
from picinspector.models.effnet._config import round_filters
from picinspector.models.effnet._imagenet import GROUPS, class_names, group_log_probs
from picinspector.models.effnet._runtime import input_size, network_input, session
from picinspector.models.effnet.export import stats_layout

HAVE_TORCH = importlib.util.find_spec("torch") is not None and importlib.util.find_spec("onnx") is not None
needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="needs torch and onnx (the deep extra)")
CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE = (967, 968)  # espresso, cup

skimage = pytest.importorskip("skimage", reason="the known-answer photos come from scikit-image")


def photo(name: str) -> np.ndarray:
    return getattr(skimage.data, name)().astype(np.float32) / 255.0


@pytest.fixture(scope="module")
def lite0():
    return Backbone("efficientnet-lite0", threads=1)


def test_the_registry_ties_weights_architecture_and_preprocessing():
    assert set(BACKBONES) == {"efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"}
    for cfg in BACKBONES.values():
        assert cfg.license == "Apache-2.0" and len(cfg.weights.sha256) == 64
        assert (cfg.preprocess.mean, cfg.preprocess.std, cfg.preprocess.channels) == (127.0, 128.0, "RGB")
        assert cfg.arch.tap_channels()[0] == 32 and cfg.arch.tap_channels()[-1] == 1280  # Lite: fixed stem, head
    assert BACKBONES["efficientnet-lite0"].arch.stage_channels() == [16, 24, 40, 80, 112, 192, 320]
    assert BACKBONES["efficientnet-lite2"].arch.stage_channels() == [16, 24, 48, 88, 120, 208, 352]
    assert BACKBONES["efficientnet-lite2"].arch.stage_repeats() == [1, 3, 3, 4, 4, 5, 1]  # first/last not scaled
    assert round_filters(112, 1.1) == 120 and round_filters(40, 1.1) == 48
    with pytest.raises(ValueError, match="efficientnet-lite0"):
        get_backbone("efficientnet-b7")


def test_the_shipped_graph_is_the_recorded_one():
    cfg = get_backbone("efficientnet-lite0")
    path = graph_path(cfg)
    assert cfg.graph.shipped and path.is_file()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == cfg.graph.sha256


def test_input_sizes_are_multiples_of_32_with_the_shorter_side_kept():
    assert input_size(3000, 4000, 384) == (384, 512)
    assert input_size(512, 512, 384) == (384, 384)
    assert input_size(300, 451, 224) == (224, 352)  # 336.7 -> nearest multiple of 32 (10.5 x 32)
    h, w = input_size(1000, 6000, 384)  # a panorama: at most twice as wide as high
    assert w == 768 and h % 32 == 0 and h >= 32
    assert input_size(5, 5, 384) == (384, 384)
    with pytest.raises(ValueError):
        input_size(0, 10, 384)
    x = network_input(photo("coffee"), 224)
    assert x.shape == (1, 224, 352, 3) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1


def square(img: np.ndarray, side: int = 224) -> np.ndarray:
    """The classifier's own view: the whole photo squeezed to side x side, (1, side, side, 3)."""
    import cv2

    return cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)[None]


def test_onnx_known_answers_without_torch(lite0):
    cat = lite0.run_input(square(photo("chelsea")))[0].probabilities()
    assert int(cat.argmax()) in CATS and cat[list(CATS)].sum() > 0.9
    cup = lite0.run_input(square(photo("coffee")))[0].probabilities()
    assert int(cup.argmax()) in COFFEE and cup[list(COFFEE)].sum() > 0.9
    assert class_names()[int(cat.argmax())] == "Egyptian cat" and class_names()[967] == "espresso"
    # What the engine runs: the shorter side at 224, the aspect ratio kept.
    assert int(lite0.run(photo("chelsea"), 224).logits.argmax()) in CATS
    assert int(lite0.run(photo("coffee"), 224).logits.argmax()) in COFFEE


def test_outputs_have_the_documented_layout(lite0):
    cfg = lite0.cfg
    layout = stats_layout(cfg)
    out = lite0.run(photo("astronaut"), 224)
    assert out.stats.shape == (max(b for _, b in layout.values()),) and out.logits.shape == (1000,)
    assert np.linalg.norm(out.embedding) == pytest.approx(1.0, abs=1e-5)
    a, b = layout["head.mean"]
    pooled = out.stats[a:b]  # the embedding is the pooled head map, normalised
    np.testing.assert_allclose(out.embedding, pooled / np.linalg.norm(pooled), atol=1e-6)
    a, b = layout["stage3.std"]
    assert (out.stats[a:b] >= 0).all()  # standard deviations
    assert np.all(np.isfinite(out.stats))


def test_one_session_per_graph_and_thread_count(lite0):
    assert session(lite0.path, 1) is session(lite0.path, 1)
    assert session(lite0.path, 1) is not session(lite0.path, 2)


def test_class_groups_partition_imagenet():
    seen = [i for g in GROUPS.values() for i in g]
    assert sorted(seen) == list(range(1000))
    p = np.zeros(1000)
    p[285] = 0.9
    p[967] = 0.1
    g = group_log_probs(p, ("animal", "food", "plant"))
    np.testing.assert_allclose(np.exp(g), [0.9, 0.1, 1e-4], rtol=1e-9)


def test_an_on_demand_graph_without_torch_says_what_to_install(monkeypatch, tmp_path):
    import sys

    monkeypatch.setenv("PICINSPECTOR_CACHE", str(tmp_path))
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    with pytest.raises(GraphUnavailable, match=r"pip install torch==2\.13\.0.*picinspector\[deep\]"):
        Backbone("efficientnet-lite1")
    assert not any(tmp_path.rglob("*.onnx"))


# --- with torch: the model the graph was exported from ------------------------------------------

@needs_torch
def test_strict_loading_refuses_a_state_dict_that_does_not_fit():
    import torch

    from picinspector.models.effnet._torch import EfficientNetLite, convert_state_dict, load_state_dict_file

    cfg = get_backbone("efficientnet-lite0")
    source = load_state_dict_file(cfg.weights.path())
    model = EfficientNetLite(cfg.arch)
    assert len(convert_state_dict(source, model)) == len(model.state_dict())
    with pytest.raises(ValueError, match="unknown keys: _extra"):
        convert_state_dict({**source, "_extra.weight": torch.zeros(1)}, model)
    with pytest.raises(ValueError, match="missing: classifier.bias"):
        convert_state_dict({k: v for k, v in source.items() if k != "_fc.bias"}, model)
    with pytest.raises(ValueError, match="shape mismatches"):
        convert_state_dict(source, EfficientNetLite(get_backbone("efficientnet-lite2").arch))


@needs_torch
@pytest.mark.parametrize("name", ["efficientnet-lite0", "efficientnet-lite1"])
def test_torch_known_answers(name):
    import torch

    from picinspector.models.effnet._torch import build, normalise

    cfg = get_backbone(name)
    model = build(cfg)
    for img, classes in (("chelsea", CATS), ("coffee", COFFEE)):
        x = torch.from_numpy(square(photo(img), 32 * round(cfg.preprocess.train_size / 32)))
        with torch.no_grad():
            p = torch.softmax(model(normalise(x, cfg.preprocess)), 1)[0].numpy()
        assert int(p.argmax()) in classes and p[list(classes)].sum() > 0.8
    with pytest.raises(ValueError, match="multiples of 32"):
        model.forward_features(torch.zeros(1, 3, 100, 96))


@needs_torch
def test_onnx_matches_torch_on_the_same_input(lite0):
    """Stated tolerance: 1e-4 absolute on logits and embedding, 1e-4 relative to each block's scale on
    the pooled statistics (float32 arithmetic in a different order)."""
    import torch

    from picinspector.models.effnet.export import graph_module

    module = graph_module(lite0.cfg)
    x = network_input(photo("coffee"), 384)
    ort_out = lite0.run_input(x)[0]
    with torch.no_grad():
        stats, emb, logits = (t[0].numpy() for t in module(torch.from_numpy(x)))
    np.testing.assert_allclose(ort_out.logits, logits, atol=1e-4)
    np.testing.assert_allclose(ort_out.embedding, emb, atol=1e-4)
    for name, (a, b) in stats_layout(lite0.cfg).items():
        scale = max(1.0, float(np.abs(stats[a:b]).max()))
        np.testing.assert_allclose(ort_out.stats[a:b], stats[a:b], atol=1e-4 * scale, err_msg=name)


@needs_torch
def test_the_export_command_regenerates_the_shipped_graph():
    """Byte for byte on the CPU kind that made it; elsewhere the folded constants may round their last
    bit differently, which `same_graph` allows (1e-6 of a tensor's largest value) and nothing more."""
    import onnx
    from onnx import numpy_helper

    from picinspector.models.effnet.export import export_bytes, same_graph

    cfg = get_backbone("efficientnet-lite0")
    shipped = graph_path(cfg).read_bytes()
    assert hashlib.sha256(shipped).hexdigest() == cfg.graph.sha256
    regenerated = export_bytes(cfg)
    ok, how = same_graph(shipped, regenerated)
    assert ok, how
    # and the comparison can fail: one constant moved by 1e-4 of its scale, or one node dropped
    model = onnx.load_from_string(regenerated)
    init = next(t for t in model.graph.initializer if numpy_helper.to_array(t).size > 100)
    arr = numpy_helper.to_array(init).copy()
    arr.flat[0] += 1e-4 * float(np.abs(arr).max())
    init.CopyFrom(numpy_helper.from_array(arr, init.name))
    ok, how = same_graph(shipped, model.SerializeToString())
    assert not ok and init.name in how
    model = onnx.load_from_string(regenerated)
    del model.graph.node[-1]
    assert same_graph(shipped, model.SerializeToString()) == (False, "the nodes differ")
