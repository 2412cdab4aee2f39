"""The cull's parts on data the tests make: signatures, capture times, grouping, ranking, ratings,
reasons, undo journal. No analysis runs here (tests/test_cull_cli.py runs the command on photos)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from picinspector.cull import (
    CullOptions,
    GroupingOptions,
    RatingOptions,
    Signatures,
    capture_time,
    compute_signatures,
    cull,
    cull_score,
    group_photos,
    parse_keep,
    phash,
)
from picinspector.cull._signature import colour_layout, phash_signature
from picinspector.cull._undo import _diff


def _texture(seed: int, size: int = 128) -> np.ndarray:
    """A colourful, structured RGB image (uint8): blobs of colour at random places."""
    import cv2

    rng = np.random.default_rng(seed)
    img = np.zeros((size, size, 3), np.float32)
    for _ in range(12):
        cx, cy, r = rng.integers(0, size, 2).tolist() + [int(rng.integers(size // 10, size // 3))]
        cv2.circle(img, (cx, cy), r, rng.uniform(0, 1, 3).tolist(), -1)
    img = cv2.GaussianBlur(img, (0, 0), 2) + rng.normal(0, 0.02, img.shape).astype(np.float32)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def _bits(sig_a: np.ndarray, sig_b: np.ndarray) -> int:
    return int(np.unpackbits(np.bitwise_xor(sig_a, sig_b)).sum())


# --------------------------------------------------------------------------------------------------
# signatures


def test_phash_is_64_bits_and_stable_under_brightness_blur_and_resizing():
    import cv2

    img = _texture(1, 256).astype(np.float32).mean(axis=2)
    h = phash(img)
    assert h.dtype == np.uint8 and h.shape == (8,)
    assert _bits(h, phash(img)) == 0
    assert _bits(h, phash(img * 0.6 + 20)) == 0  # a gain and an offset: the same bits
    assert _bits(h, phash(cv2.GaussianBlur(img, (0, 0), 1.5))) <= 4
    assert _bits(h, phash(cv2.resize(img, (97, 97), interpolation=cv2.INTER_AREA))) <= 4
    others = [_bits(h, phash(_texture(s, 256).astype(np.float32).mean(axis=2))) for s in range(2, 12)]
    assert np.mean(others) > 20  # a different scene flips about half of the 64 bits
    with pytest.raises(ValueError):
        phash(np.zeros((4, 4)))


def test_colour_layout_reads_where_the_colours_are():
    img = np.zeros((60, 60, 3), np.uint8)
    img[:, :30] = (255, 0, 0)  # red left half, blue right half
    img[:, 30:] = (0, 0, 255)
    lab = colour_layout(img).reshape(6, 6, 3).astype(float)
    a_left, a_right = lab[:, :3, 1].mean() - 128, lab[:, 3:, 1].mean() - 128
    b_left, b_right = lab[:, :3, 2].mean() - 128, lab[:, 3:, 2].mean() - 128
    assert a_left > 50 and b_left > 40  # red: a* and b* positive
    assert b_right < -80  # blue: b* strongly negative


def test_phash_distance_separates_variants_from_other_scenes():
    import cv2

    base = _texture(3, 256)
    variants = [base, cv2.GaussianBlur(base, (0, 0), 1.2), np.clip(base * 1.5, 0, 255).astype(np.uint8),
                cv2.resize(base[10:-10, 10:-10], (256, 256))]
    others = [_texture(s, 256) for s in range(20, 26)]
    sigs = Signatures.stack("phash", [phash_signature(x) for x in variants + others])
    d = sigs.distances()
    assert d.shape == (10, 10) and np.allclose(np.diag(d), 0, atol=1e-3)
    assert np.allclose(d, d.T, atol=1e-5)
    near = d[0, 1:4]
    far = d[:4, 4:]
    assert near.max() < 0.45 <= far.min(), (near, far.min())


def test_signatures_encode_decode_and_missing():
    sigs = Signatures.stack("phash", [phash_signature(_texture(1)), None, phash_signature(_texture(2))])
    assert sigs.missing.tolist() == [False, True, False]
    assert sigs.encode(1) is None
    again = Signatures.decode("phash", sigs.encode(2))
    assert np.array_equal(again, sigs.values[2])
    d = sigs.distances()
    assert np.isinf(d[1]).all() and np.isinf(d[:, 1]).all()
    emb = Signatures.stack("embedding", [np.array([0.6, 0.8], np.float32), np.array([1, 0], np.float32)])
    assert emb.distances()[0, 1] == pytest.approx(0.4, abs=1e-6)
    assert np.allclose(Signatures.decode("embedding", emb.encode(0)), [0.6, 0.8], atol=1e-3)
    with pytest.raises(ValueError):
        Signatures.decode("phash", "AAAA")
    with pytest.raises(ValueError):
        Signatures("nope", np.zeros((1, 1)), np.zeros(1, bool))


def test_an_engine_embedder_is_used_when_given(tmp_path):
    """The embedding path: what the effnet engine's `Inspector.embed` provides, faked here."""
    from PIL import Image

    paths = []
    for i in range(3):
        p = tmp_path / f"{i}.png"
        Image.fromarray(_texture(i)).save(p)
        paths.append(str(p))
    vectors = {paths[0]: [3.0, 4.0, 0.0], paths[1]: [3.0, 4.1, 0.0], paths[2]: [0.0, 0.0, 2.0]}
    calls = []

    def embed(path):
        calls.append(path)
        return np.array(vectors[path])

    sigs, problems = compute_signatures(paths + [None], embedder=embed)
    assert sigs.kind == "embedding" and problems == {3: "photo not found"}
    assert calls == paths
    assert np.allclose(np.linalg.norm(sigs.values[:3], axis=1), 1)  # normalised
    grouping = group_photos(sigs, [None] * 4)
    assert grouping.labels[0] == grouping.labels[1] != grouping.labels[2] != grouping.labels[3]


def test_unreadable_photo_has_no_signature_and_groups_with_nothing(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a photo")
    sigs, problems = compute_signatures([str(bad), str(tmp_path / "gone.jpg")])
    assert sigs.missing.all() and set(problems) == {0, 1}
    assert group_photos(sigs, [None, None]).count == 2


# --------------------------------------------------------------------------------------------------
# capture time and grouping


def test_capture_time_reads_fractions_and_offsets():
    assert capture_time({"datetime": "2024-05-01T10:00:07.25"}) - capture_time({"datetime": "2024-05-01T10:00:07"}) \
        == pytest.approx(0.25)
    # the same moment written in two zones
    assert capture_time({"datetime": "2024-05-01T12:00:00+02:00"}) == capture_time({"datetime": "2024-05-01T10:00:00Z"})
    assert capture_time({}) is None and capture_time(None) is None
    assert capture_time({"datetime": "yesterday"}) is None
    assert capture_time({"datetime": "2024-13-01T10:00:00"}) is None


def _emb(*angles_deg: float) -> Signatures:
    """Unit vectors at the given angles: cosine distance 1 - cos(difference)."""
    a = np.radians(angles_deg)
    return Signatures.stack("embedding", [np.array([np.cos(x), np.sin(x)], np.float32) for x in a])


def test_burst_threshold_applies_within_a_run_of_frames_only():
    # 40 degrees apart: cosine distance 0.234, between near (0.22) and burst (0.30)
    sigs = _emb(0, 40)
    assert group_photos(sigs, [None, None]).count == 2  # no times: near only
    assert group_photos(sigs, [100.0, 100.5]).count == 1  # one run (0.5 s apart)
    assert group_photos(sigs, [100.0, 110.0]).count == 2  # two runs
    assert group_photos(sigs, [100.0, 110.0], GroupingOptions(burst_gap=15)).count == 1
    # a chain of frames each within the gap is one run
    assert group_photos(_emb(0, 20, 40), [0.0, 1.5, 3.0]).count == 1


def test_max_gap_keeps_photos_taken_far_apart_out_of_a_group():
    sigs = _emb(0, 1)
    assert group_photos(sigs, [0.0, 3600.0]).count == 1
    assert group_photos(sigs, [0.0, 3600.0], GroupingOptions(max_gap=600)).count == 2
    assert group_photos(sigs, [0.0, None], GroupingOptions(max_gap=600)).count == 1  # unknown time: no limit


def test_average_linkage_does_not_chain_two_scenes_together():
    # A-B and B-C are alike (30 degrees: 0.134), A-C are not (60 degrees: 0.5): single linkage would
    # chain all three; the average of B's links to {A, C} stays too far, so two groups.
    labels = group_photos(_emb(0, 30, 60), [None] * 3).labels
    assert len(set(labels.tolist())) == 2
    many = group_photos(_emb(*range(0, 200, 20)), [None] * 10)
    assert many.count >= 4  # a long chain of frames is cut into several groups


def test_groups_are_numbered_in_the_order_of_the_shoot():
    sigs = _emb(0, 90, 1, 91)
    g = group_photos(sigs, [50.0, 10.0, 50.1, 10.1])
    assert g.labels.tolist() == [1, 0, 1, 0]  # the group shot first is group 0
    g = group_photos(sigs, [None] * 4)
    assert g.labels.tolist() == [0, 1, 0, 1]  # no times: input order


def test_grouping_in_blocks_gives_the_same_groups():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(30, 16))
    vectors = [c + rng.normal(scale=0.15, size=16) for c in centres for _ in range(3)]
    sigs = Signatures.stack("embedding", [v / np.linalg.norm(v) for v in vectors])
    whole = group_photos(sigs, [None] * 90, block=4096).labels
    blocked = group_photos(sigs, [None] * 90, block=7).labels
    assert whole.tolist() == blocked.tolist()
    assert len(set(whole.tolist())) == 30


# --------------------------------------------------------------------------------------------------
# ranking, picks, ratings, reasons


def _row(name: str, quality: float, sharpness: float = 90.0, noisiness: float = 95.0, findings=(), t=None) -> dict:
    exif = {} if t is None else {"datetime": f"2024-05-01T10:00:{int(t):02d}.{round((t % 1) * 100):02d}"}
    return {"path": f"/shoot/{name}", "scores": {"quality": quality, "brightness": 60.0, "colorfulness": 50.0,
                                                  "contrast": 60.0, "noisiness": noisiness, "sharpness": sharpness},
            "findings": [{"kind": k, "severity": s, "message": k, "suggestion": ""} for k, s in findings],
            "exif": exif, "scene": {"label": "human", "confidence": 0.8}, "engine": "classic", "version": "t"}


def test_cull_score_subtracts_the_worst_finding_of_each_family():
    assert cull_score(_row("a", 70)) == 70
    assert cull_score(_row("a", 70, findings=[("motion_blur", "severe")])) == 50
    # two exposure findings: only the worse counts; noise is its own family
    assert cull_score(_row("a", 70, findings=[("underexposed", "moderate"), ("crushed_shadows", "minor"),
                                              ("noise", "minor")])) == 70 - 5 - 2
    assert cull_score(_row("a", 10, findings=[("motion_blur", "severe")])) == 0
    assert cull_score({"scores": {"quality": None}}) == 0


def test_parse_keep():
    assert parse_keep("20%") == pytest.approx(0.2) and parse_keep("150") == 150 and parse_keep(0.5) == 0.5
    for bad in ("lots", "120%", "-3"):
        with pytest.raises(ValueError):
            parse_keep(bad)


def _distinct(n: int) -> Signatures:
    """n photos that look like nothing else (orthogonal embeddings)."""
    return Signatures.stack("embedding", list(np.eye(n, dtype=np.float32)))


def _burst_rows():
    return [
        _row("dark.jpg", 40, findings=[("underexposed", "severe")], t=7.0),
        _row("blurred.jpg", 45, sharpness=20, findings=[("motion_blur", "moderate")], t=7.2),
        _row("good.jpg", 72, sharpness=92, t=7.4),
        _row("noisy.jpg", 55, noisiness=30, findings=[("noise", "moderate")], t=7.6),
        _row("twin.jpg", 70, sharpness=80, t=7.8),
    ]


def test_a_burst_picks_the_good_frame_and_says_why_the_others_lose():
    rows = _burst_rows() + [_row(f"other{i}.jpg", 50 + i) for i in range(5)]
    burst = [np.array([np.cos(a), np.sin(a), 0, 0, 0, 0, 0], np.float32) for a in np.radians([0, 2, 4, 6, 8])]
    sigs = Signatures.stack("embedding", burst + list(np.eye(7, dtype=np.float32)[2:]))
    result = cull(rows, sigs, CullOptions())
    d = {os.path.basename(r["path"]): x for r, x in result.items()}
    assert {d[n].group for n in ("dark.jpg", "blurred.jpg", "good.jpg", "noisy.jpg", "twin.jpg")} == {d["good.jpg"].group}
    assert d["good.jpg"].pick and d["good.jpg"].group_rank == 1 and d["good.jpg"].burst
    assert d["good.jpg"].status == "keep" and 3 <= d["good.jpg"].rating <= 5
    # better than the others in exposure (one severe), focus and noise: all three said, most telling first
    assert d["good.jpg"].reason.startswith("best exposed, sharpest and cleanest of a 5-frame burst (cull score 72)")
    assert d["blurred.jpg"].status == "reject" and d["blurred.jpg"].rating == -1
    assert d["blurred.jpg"].reason == "motion blur; the frame 0.2 s later (good.jpg) is sharp"
    assert d["noisy.jpg"].reason == "visible noise; the frame 0.2 s earlier (good.jpg) is clean"
    assert d["dark.jpg"].reason == "severe under-exposed; the frame 0.4 s later (good.jpg) is well exposed"
    assert d["twin.jpg"].status == "alternate" and d["twin.jpg"].rating == 1
    assert d["twin.jpg"].reason == "near-identical to the frame 0.4 s earlier (good.jpg), which is sharper"
    assert all(d[f"other{i}.jpg"].group_size == 1 and d[f"other{i}.jpg"].pick for i in range(5))
    assert "no near-duplicate" in d["other0.jpg"].reason
    # rows carry it all, and the signature for the next run
    out = {os.path.basename(r["path"]): r for r in result.rows()}
    assert out["good.jpg"]["cull"]["status"] == "keep" and out["good.jpg"]["cull"]["signature"]["kind"] == "embedding"


def test_keep_share_and_star_mapping():
    rows = [_row(f"p{i:02d}.jpg", 30 + 2 * i) for i in range(30)]  # 30 distinct photos, quality 30..88
    sigs = _distinct(30)
    for keep, expected in ((0.2, 6), (10, 10), (0.0, 0), (1.0, 30)):
        result = cull(rows, sigs, CullOptions(rating=RatingOptions(keep=keep)))
        kept = [d for d in result.decisions if d.status == "keep"]
        assert len(kept) == expected
        if kept:
            best = max(kept, key=lambda d: d.score)
            assert best.rating == 5 and min(d.rating for d in kept) >= 3
            # the kept are exactly the best cull scores
            assert min(d.score for d in kept) >= max((d.score for d in result.decisions if d.status != "keep"), default=0)
        assert all(d.rating == 2 for d in result.decisions if d.status == "pick")
    result = cull(rows, sigs, CullOptions(rating=RatingOptions(keep=10)))
    ratings = sorted((d.rating for d in result.decisions if d.status == "keep"), reverse=True)
    assert ratings == [5, 4, 4, 4, 3, 3, 3, 3, 3, 3]  # 10% of 10 -> 1 five, 30% -> 3 fours


def test_rejects_by_threshold_and_by_severe_failure_kinds():
    rows = [_row("low.jpg", 20), _row("blur.jpg", 80, findings=[("motion_blur", "severe")]), _row("ok.jpg", 60)]
    result = cull(rows, _distinct(3), CullOptions())
    status = {os.path.basename(r["path"]): d for r, d in result.items()}
    assert status["low.jpg"].status == "reject" and "under the reject threshold 25" in status["low.jpg"].reason
    assert status["blur.jpg"].status == "reject"
    assert status["blur.jpg"].reason.startswith("severe motion blur, and no other frame of this scene")
    assert status["ok.jpg"].status in ("keep", "pick")
    relaxed = cull(rows, _distinct(3), CullOptions(rating=RatingOptions(reject_on=(), reject_below=0)))
    assert not any(d.status == "reject" for d in relaxed.decisions)


def test_labels_follow_the_status_table():
    rows = [_row("a.jpg", 80), _row("b.jpg", 10)]
    result = cull(rows, _emb(0, 90), CullOptions(rating=RatingOptions(keep=1)))
    assert [d.label for d in result.decisions] == ["Green", "Red"]
    result = cull(rows, _emb(0, 90), CullOptions(rating=RatingOptions(keep=1, labels={"reject": "Purple"})))
    assert [d.label for d in result.decisions] == [None, "Purple"]


def test_error_rows_pass_through_and_signature_count_is_checked():
    rows = [_row("a.jpg", 60), {"path": "/shoot/bad.jpg", "error": {"kind": "corrupt", "message": "x"}}]
    result = cull(rows, _emb(0), CullOptions())
    out = result.rows()
    assert out[-1] == rows[1] and "cull" in out[0]
    with pytest.raises(ValueError):
        cull(rows, _emb(0, 1), CullOptions())


# --------------------------------------------------------------------------------------------------
# undo journal


@pytest.mark.parametrize("old,new", [
    (b"HEADERxxxxPIXELS", b"HEADERyyyyyyPIXELS"),
    (b"same", b"same"),
    (b"", b"abc"),
    (b"abc", b""),
    (b"aaaa", b"aa"),
    (bytes(range(256)) * 600, b"X" + bytes(range(256)) * 600),
])
def test_diff_rebuilds_the_old_bytes(old, new):
    p, s, middle = _diff(old, new)
    assert p + s <= min(len(old), len(new)) or old == new
    assert new[:p] + middle + new[len(new) - s:] == old


def test_within_a_group_the_middle_exposure_and_the_most_typical_frame_win_ties():
    """A bracket at -0.7, 0 and +0.7 EV, equally good by cull score: the metered (middle) frame is
    picked, and said so; with equal exposures, the frame most like the others."""
    rows = [_row(n, 70) for n in ("minus.jpg", "zero.jpg", "plus.jpg")]
    for row, ev in zip(rows, (-0.7, 0.0, 0.7)):
        row["measures"] = {"exposure_ev": ev}
    result = cull(rows, _emb(0, 1, 2), CullOptions())
    pick = next(d for d in result.decisions if d.pick)
    assert rows[pick.index]["path"].endswith("zero.jpg")
    assert pick.reason.startswith("nearest the middle exposure of 3 near-identical frames, alike in cull score (70)")
    # a frame better by more than the exposure term still wins
    rows[0]["scores"]["quality"] = 90
    assert next(d for d in cull(rows, _emb(0, 1, 2), CullOptions()).decisions if d.pick).index == 0
    # equal exposures: the middle of the three signatures is the most typical
    same = [_row(n, 70) for n in ("a.jpg", "b.jpg", "c.jpg")]
    result = cull(same, _emb(0, 10, 20), CullOptions())
    assert [d.pick for d in result.decisions] == [False, True, False]
    assert "most like the others" in result.decisions[1].reason
    off = cull(same, _emb(0, 10, 20), CullOptions(rating=RatingOptions(typical_weight=0)))
    assert [d.pick for d in off.decisions] == [True, False, False]  # then the shoot's order decides
