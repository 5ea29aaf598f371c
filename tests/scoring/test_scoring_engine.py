"""Engine: reproducible published scores (reruns, thread counts), commitment encoding, catalogue chaining."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from scoring.catalog import Catalogue, chain_root
from scoring.engine import (
    MODEL_VERSION,
    PublishedScore,
    TrackInput,
    all_versions,
    commitment,
    features_and_quality,
    new_catalogue,
    score_batch,
    score_track,
)
from scoring.errors import ScoringError
from scoring.features import extract_features
from scoring.novelty import GenreReference, load_reference
from scoring.quality import quality_measures
from scoring.versions import SCORE_VERSION


def _published(s: PublishedScore) -> dict[str, object]:
    return s.to_json()


def test_rerun_and_thread_count_give_identical_scores(audio, catalogue_dir) -> None:
    items = [TrackInput("a", audio["folk"], "folk_song"), TrackInput("b", audio["bach_up1"], None)]
    first = score_batch(items, Catalogue.load(catalogue_dir), device="cpu")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        second = score_batch(items, Catalogue.load(catalogue_dir), device="cpu", batch_size=1)
    finally:
        torch.set_num_threads(threads)
    assert [_published(s) for s in first] == [_published(s) for s in second]
    assert first[1].derivative_of == "bach"


def test_quality_beside_the_features_equals_each_computed_alone(audio) -> None:
    pcms = [audio["folk"].pcm, audio["madrigal"].pcm, audio["bach"].pcm]
    sr = audio["folk"].sample_rate
    feats, measures = features_and_quality(pcms, sr, device="cpu", batch_size=2)
    alone = extract_features(pcms, sr, device="cpu", batch_size=2)
    assert [f.digest() for f in feats] == [f.digest() for f in alone]
    assert [f.embedding.tobytes() for f in feats] == [f.embedding.tobytes() for f in alone]
    assert measures == [quality_measures(p, sr) for p in pcms]  # float equality: bit for bit


def test_an_error_on_either_side_reaches_the_caller_and_no_thread_outlives_it(audio, monkeypatch) -> None:
    import threading

    import scoring.engine as engine_module
    from scoring.errors import FeatureError

    sr = audio["bach"].sample_rate
    bad = audio["folk"].pcm.copy()
    bad[100] = np.inf
    with pytest.raises(FeatureError):
        features_and_quality([audio["bach"].pcm, bad], sr, device="cpu")

    def broken(pcm: np.ndarray, sample_rate: int) -> dict[str, float]:
        raise RuntimeError("quality measure failed")

    monkeypatch.setattr(engine_module, "quality_measures", broken)
    with pytest.raises(RuntimeError, match="quality measure failed"):
        features_and_quality([audio["bach"].pcm], sr, device="cpu")
    assert not [t for t in threading.enumerate() if t.name.startswith("ami-beside")]


def test_batch_records_the_chain_of_what_it_was_measured_against(audio, catalogue_dir) -> None:
    cat = Catalogue.load(catalogue_dir)
    root0 = cat.root_hash()
    items = [TrackInput("x", audio["folk"]), TrackInput("y", audio["madrigal"])]
    s1, s2 = score_batch(items, cat, device="cpu", add_to_catalogue=True)
    assert s1.catalogue_root == root0
    assert s2.catalogue_root == chain_root(root0, "x", s1.pcm_sha256)
    assert cat.pcm_sha256[-2:] == [s1.pcm_sha256, s2.pcm_sha256]
    assert cat.ids[-2:] == ["x", "y"] and cat.labels[-2:] == [None, None]
    with pytest.raises(ScoringError, match="already in the catalogue"):
        score_batch([TrackInput("x", audio["folk"])], cat)


def test_commitment_is_the_documented_encoding() -> None:
    versions = {"model": "1", "features": "f"}
    args = ("aa" * 32, "cc" * 32, 1234, 9876, "dup", None, versions)
    got = commitment(*args)
    h = hashlib.blake2b(digest_size=32)
    lp = lambda b: len(b).to_bytes(4, "little") + b  # noqa: E731
    h.update(lp(SCORE_VERSION.encode()))
    h.update(MODEL_VERSION.to_bytes(4, "little"))
    h.update(bytes.fromhex("aa" * 32) + bytes.fromhex("cc" * 32))
    h.update((1234).to_bytes(2, "little") + (9876).to_bytes(2, "little"))
    h.update(lp(b"dup") + lp(b""))
    h.update(lp(json.dumps(versions, sort_keys=True, separators=(",", ":")).encode()))
    assert got == h.digest() and len(got) == 32
    changed = [
        commitment("ab" * 32, *args[1:]),
        commitment(args[0], "cd" * 32, *args[2:]),
        commitment(*args[:2], 1235, *args[3:]),
        commitment(*args[:4], None, "dup", versions),
        commitment(*args[:6], {**versions, "model": "2"}),
    ]
    assert len({got, *changed}) == 6
    with pytest.raises(ScoringError):
        commitment(*args[:2], 10001, *args[3:])
    with pytest.raises(ScoringError):
        commitment("aa", *args[1:])


def test_published_score_carries_versions_and_valid_commitment(variant_scores) -> None:
    s = variant_scores["folk"]
    assert s.versions == all_versions() and s.model_version == MODEL_VERSION
    assert s.commitment == commitment(
        s.pcm_sha256,
        s.catalogue_root,
        s.novelty_bp,
        s.quality_bp,
        s.duplicate_of,
        s.derivative_of,
        s.versions,
    )
    assert set(s.versions) >= {"decoder", "features", "novelty", "quality", "catalog", "genre_reference"}


def test_score_track_and_input_errors(audio) -> None:
    cat = new_catalogue()
    one = score_track(audio["joplin"], "ragtime_piano", cat, device="cpu")
    assert one.catalogue_root == cat.root_hash() and one.duplicate_of is None
    assert one.details["originality"] == 1.0  # empty catalogue
    # The reported parts of novelty, all read in the harmony view that counted, make the published score.
    d = one.details
    parts = ("originality", "coherence_gate", "predictability_gate", "harmony_view_trust", "evidence")
    assert one.novelty_bp == pytest.approx(10000 * math.prod(float(d[k]) for k in parts), abs=5)
    assert 0.0 <= d["evidence_s"] <= d["pitched_s"] <= audio["joplin"].pcm.size / 22050 + 0.5
    with pytest.raises(ScoringError, match="unknown genre"):
        score_track(audio["joplin"], "polka", cat)
    with pytest.raises(ScoringError, match="unique"):
        score_batch([TrackInput("a", audio["joplin"]), TrackInput("a", audio["folk"])], cat)
    ref = load_reference()
    stale = GenreReference(ref.genres, "ami-features/0", ref.digest)
    with pytest.raises(ScoringError, match="build_genre_reference"):
        score_batch([TrackInput("a", audio["joplin"])], cat, reference=stale)
    assert score_batch([], cat) == []


def test_details_are_not_part_of_equality(variant_scores) -> None:
    s = variant_scores["folk"]
    assert replace(s, details={}) == s


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_and_gpu_publish_the_same_scores(audio, catalogue_dir) -> None:
    items = [
        TrackInput("a", audio["folk"], "folk_song"),
        TrackInput("b", audio["bach_up1"], None),
        TrackInput("c", audio["bach_mp3"], None),
    ]
    from scoring.agreement import compare_runs

    cpu = score_batch(items, Catalogue.load(catalogue_dir), device="cpu")
    gpu = score_batch(items, Catalogue.load(catalogue_dir), device="cuda")
    # Under ami-agreement/1 (docs/verification.md): a CPU validator finds nothing in a GPU worker's run,
    # reproduces every commitment, and still finds every tamper past the tolerances.
    run = compare_runs(gpu, cpu)
    assert run.findings == [] and run.verdict_flips == run.borderline_flips
    assert run.commitments_equal == run.published
    assert run.tampers_found == run.tampers


def test_exact_dot_is_order_independent_and_exact() -> None:
    import numpy as np

    from scoring.engine import exact_dot

    rng = np.random.default_rng(9)
    a = rng.standard_normal(456).astype(np.float32)
    b = rng.standard_normal(456).astype(np.float32)
    perm = rng.permutation(456)
    assert exact_dot(a, b) == exact_dot(a[perm], b[perm]) == exact_dot(a[::-1], b[::-1])
    from fractions import Fraction

    exact = sum(Fraction(float(x)) * Fraction(float(y)) for x, y in zip(a, b, strict=True))
    assert exact_dot(a, b) == float(exact)
