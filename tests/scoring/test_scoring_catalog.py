"""Catalogue: exact kNN against numpy brute force, incremental add, persistence and the identity root hash."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from scoring.catalog import CatalogError, Catalogue, exact_topk


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _pcm(ids: list[str], salt: str = "") -> list[str]:
    """Stand-in PCM hashes (any 32 bytes do for the catalogue): SHA-256 of the id."""
    return [hashlib.sha256((salt + i).encode()).hexdigest() for i in ids]


def _reference_root(entries: list[tuple[str, str]]) -> str:
    """docs/verification.md's recipe, written out independently of scoring.catalog."""
    h = hashlib.sha256(b"ami-catalog/4").digest()
    for track_id, pcm in entries:
        raw = track_id.encode()
        h = hashlib.sha256(h + len(raw).to_bytes(4, "little") + raw + bytes.fromhex(pcm)).digest()
    return h.hex()


@pytest.mark.parametrize("block_rows", [7, 64, 100000])
def test_exact_topk_matches_numpy(block_rows: int) -> None:
    rng = np.random.default_rng(1)
    db, q = _unit(rng, 1000, 32), _unit(rng, 17, 32)
    scores, idx = exact_topk(db, q, 10, device="cpu", block_rows=block_rows)
    ref = q.astype(np.float64) @ db.astype(np.float64).T
    ref_idx = np.argsort(-ref, axis=1, kind="stable")[:, :10]
    assert np.array_equal(idx, ref_idx)
    assert np.allclose(scores, np.take_along_axis(ref, ref_idx, 1), atol=1e-5)


def test_topk_k_larger_than_catalogue_and_empty() -> None:
    rng = np.random.default_rng(2)
    scores, idx = exact_topk(_unit(rng, 3, 8), _unit(rng, 2, 8), 10, device="cpu")
    assert idx.shape == (2, 3)
    assert np.all(np.diff(scores, axis=1) <= 0)
    empty = Catalogue(8)
    assert empty.search(_unit(rng, 1, 8), 5) == [[]]


def test_search_finds_itself_and_normalises() -> None:
    rng = np.random.default_rng(3)
    cat = Catalogue(16)
    emb = _unit(rng, 50, 16)
    ids = [f"t{i}" for i in range(50)]
    cat.add(ids, emb * 3.0, pcm_sha256=_pcm(ids))
    hits = cat.search(emb[[5, 9]] * 0.5, 3)
    assert [h[0].id for h in hits] == ["t5", "t9"]
    assert hits[0][0].score == pytest.approx(1.0, abs=1e-5)


def test_add_rejects_bad_input_and_keeps_state() -> None:
    cat = Catalogue(4, c2d_dim=2)
    cat.add(["a"], np.ones((1, 4)), np.ones((1, 2)), pcm_sha256=_pcm(["a"]))
    root = cat.root_hash()
    with pytest.raises(CatalogError, match="already"):
        cat.add(["b", "a"], np.ones((2, 4)), np.ones((2, 2)), pcm_sha256=_pcm(["b", "a"]))
    with pytest.raises(CatalogError, match="zeros"):
        cat.add(["c"], np.zeros((1, 4)), np.ones((1, 2)), pcm_sha256=_pcm(["c"]))
    with pytest.raises(CatalogError, match="NaN"):
        cat.add(["c"], np.full((1, 4), np.nan), np.ones((1, 2)), pcm_sha256=_pcm(["c"]))
    with pytest.raises(CatalogError, match="expected 2"):
        cat.add(["c"], np.ones((1, 4)), np.ones((1, 3)), pcm_sha256=_pcm(["c"]))
    with pytest.raises(CatalogError, match="64 hex digits"):
        cat.add(["c"], np.ones((1, 4)), np.ones((1, 2)), pcm_sha256=["zz" * 32])
    with pytest.raises(CatalogError, match="64 hex digits"):
        cat.add(["c"], np.ones((1, 4)), np.ones((1, 2)), pcm_sha256=["ab" * 31])
    with pytest.raises(CatalogError, match="PCM hashes differ in length"):
        cat.add(["c", "d"], np.ones((2, 4)), np.ones((2, 2)), pcm_sha256=_pcm(["c"]))
    assert len(cat) == 1 and cat.root_hash() == root and cat.pcm_sha256 == _pcm(["a"])


def test_root_hash_is_the_identity_chain_and_ignores_vectors() -> None:
    rng = np.random.default_rng(4)
    emb = _unit(rng, 3, 8)
    ids = ["a", "b", "c"]

    def build(ids: list[str], rows: np.ndarray, pcms: list[str]) -> str:
        cat = Catalogue(8)
        cat.add(ids, rows, pcm_sha256=pcms)
        return cat.root_hash()

    base = build(ids, emb, _pcm(ids))
    assert base == _reference_root(list(zip(ids, _pcm(ids), strict=True)))
    assert Catalogue(8).root_hash() == _reference_root([])
    assert base != build(["a", "b", "x"], emb, _pcm(ids))
    assert base != build(["b", "a", "c"], emb[[1, 0, 2]], [_pcm(ids)[k] for k in (1, 0, 2)])
    assert base != build(ids, emb, _pcm(ids, salt="other audio"))
    # the vectors are not in the root: a device's float noise (or any other embedding) cannot change it
    noisy = emb * (1 + 1e-6 * rng.standard_normal(emb.shape)).astype(np.float32)
    assert base == build(ids, noisy, _pcm(ids)) == build(ids, _unit(rng, 3, 8), _pcm(ids))
    # upper-case hex is the same hash
    assert base == build(ids, emb, [h.upper() for h in _pcm(ids)])
    # incremental add gives the same chain as one add
    cat = Catalogue(8)
    cat.add(["a"], emb[:1], pcm_sha256=_pcm(["a"]))
    cat.add(["b", "c"], emb[1:], pcm_sha256=_pcm(["b", "c"]))
    assert cat.root_hash() == base


def test_persistence_roundtrip_and_generations(tmp_path) -> None:
    rng = np.random.default_rng(5)
    cat = Catalogue(8, c2d_dim=3)
    fps = [np.arange(5, dtype=np.uint32), np.zeros(0, np.uint32)]
    cat.add(
        ["a", "b"], _unit(rng, 2, 8), rng.random((2, 3)), fps, ["bach", None], pcm_sha256=_pcm(["a", "b"])
    )
    cat.save(tmp_path)
    cat.add(
        ["c"],
        _unit(rng, 1, 8),
        rng.random((1, 3)),
        [np.arange(3, dtype=np.uint32)],
        ["folk"],
        pcm_sha256=_pcm(["c"]),
    )
    cat.save(tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    # the second save appended one segment holding only the new row
    assert files == sorted(
        [
            f"{n}.{k}.npy"
            for n in ("chroma_2dft", "embeddings", "fp_items", "fp_lengths", "steps_items", "steps_lengths")
            for k in (1, 2)
        ]
        + ["manifest.json"]
    )
    assert np.load(tmp_path / "embeddings.2.npy").shape == (1, 8)
    back = Catalogue.load(tmp_path)
    assert back.ids == ["a", "b", "c"] and back.labels == ["bach", None, "folk"]
    assert back.pcm_sha256 == _pcm(["a", "b", "c"])
    assert back.root_hash() == cat.root_hash()
    assert json.loads((tmp_path / "manifest.json").read_text())["pcm_sha256"] == _pcm(["a", "b", "c"])
    assert np.array_equal(back.fingerprint(0), fps[0]) and back.fingerprint(1).size == 0
    assert np.array_equal(back.embeddings, cat.embeddings)
    assert back.stats()["labels"] == {"(none)": 1, "bach": 1, "folk": 1}


def test_load_detects_tampering(tmp_path) -> None:
    rng = np.random.default_rng(6)
    cat = Catalogue(8)
    cat.add(["a", "b"], _unit(rng, 2, 8), pcm_sha256=_pcm(["a", "b"]))
    cat.save(tmp_path)
    good = (tmp_path / "manifest.json").read_text()
    # a PCM hash changed in the manifest: the identity root no longer matches
    manifest = json.loads(good)
    manifest["pcm_sha256"][1] = _pcm(["x"])[0]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CatalogError, match="root hash"):
        Catalogue.load(tmp_path)
    (tmp_path / "manifest.json").write_text(good)
    assert Catalogue.load(tmp_path).root_hash() == cat.root_hash()
    # an embedding changed in its segment file (same shape): the segment digest catches it
    emb = np.load(tmp_path / "embeddings.1.npy")
    emb[0] = emb[1]
    np.save(tmp_path / "embeddings.1.npy", emb)
    with pytest.raises(CatalogError, match="SHA-256 check"):
        Catalogue.load(tmp_path)
    np.save(tmp_path / "embeddings.1.npy", cat.embeddings)
    # a catalogue of the previous recipe is refused with what to do
    old = json.loads(good)
    old["version"] = "ami-catalog/2"
    (tmp_path / "manifest.json").write_text(json.dumps(old))
    with pytest.raises(CatalogError, match="rebuild it from the audio"):
        Catalogue.load(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["version"] = "ami-catalog/4"
    manifest["count"] = 5
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CatalogError, match="inconsistent"):
        Catalogue.load(tmp_path)
    with pytest.raises(CatalogError, match="manifest.json missing"):
        Catalogue.load(tmp_path / "nowhere")
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(CatalogError, match="unreadable"):
        Catalogue.load(tmp_path)


@pytest.mark.gpu
def test_cuda_search_matches_cpu_and_follows_adds() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    rng = np.random.default_rng(7)
    cat = Catalogue(32)
    ids = [f"t{i}" for i in range(500)]
    cat.add(ids, _unit(rng, 500, 32), pcm_sha256=_pcm(ids))
    q = _unit(rng, 8, 32)
    assert [[h.id for h in row] for row in cat.search(q, 5, "cuda")] == [
        [h.id for h in row] for row in cat.search(q, 5, "cpu")
    ]
    cat.add(["new"], q[:1], pcm_sha256=_pcm(["new"]))
    assert cat.search(q[:1], 1, "cuda")[0][0].id == "new"


def test_chain_root_matches_add_bit_for_bit() -> None:
    from scoring.catalog import chain_root, stored_rows, unit_rows

    rng = np.random.default_rng(8)
    raw = rng.standard_normal((50, 16)).astype(np.float32) * 3.7
    c2d = unit_rows(rng.random((50, 6)))
    fps = [rng.integers(0, 2**32, 20, dtype=np.uint64).astype(np.uint32) for _ in range(50)]
    ids = [f"t{i}" for i in range(50)]
    cat = Catalogue(16, 6)
    root = cat.root_hash()
    cat.add(ids, raw, c2d, fps, pcm_sha256=_pcm(ids))
    emb = stored_rows(raw)
    for i in range(50):
        root = chain_root(root, ids[i], _pcm(ids)[i])
    assert root == cat.root_hash()
    assert np.array_equal(cat.embeddings, emb)
    with pytest.raises(CatalogError, match="64 hex digits"):
        chain_root(root, "t50", "not a hash")
    with pytest.raises(CatalogError, match="non-empty"):
        chain_root(root, "", _pcm(["x"])[0])

    # re-adding the stored rows (a prefix copy, a validator replay) reproduces the bits and the root
    again = Catalogue(16, 6)
    again.add(
        cat.ids,
        cat.embeddings,
        cat.chroma_2dft,
        [cat.fingerprint(i) for i in range(50)],
        pcm_sha256=cat.pcm_sha256,
    )
    assert again.root_hash() == cat.root_hash()
    assert np.array_equal(stored_rows(emb), emb)
    near_unit = unit_rows(raw)
    assert np.array_equal(stored_rows(near_unit), near_unit)


def test_one_at_a_time_adds_keep_all_rows() -> None:
    rng = np.random.default_rng(10)
    rows = _unit(rng, 100, 8)
    one = Catalogue(8)
    ids = [f"t{i}" for i in range(100)]
    for i in range(100):
        one.add([ids[i]], rows[i : i + 1], pcm_sha256=_pcm([ids[i]]))
    bulk = Catalogue(8)
    bulk.add(ids, rows, pcm_sha256=_pcm(ids))
    assert np.array_equal(one.embeddings, bulk.embeddings) and one.root_hash() == bulk.root_hash()
    assert one.embeddings.shape == (100, 8) and one.search(rows[42:43], 1)[0][0].id == "t42"


def test_save_appends_segments_and_rewrites_when_the_folder_diverges(tmp_path) -> None:
    rng = np.random.default_rng(11)
    rows = _unit(rng, 10, 8)
    cat = Catalogue(8)
    for i in range(5):
        cat.add([f"t{i}"], rows[i : i + 1], pcm_sha256=_pcm([f"t{i}"]))
        cat.save(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [s["count"] for s in manifest["segments"]] == [1, 1, 1, 1, 1]
    cat.save(tmp_path)  # nothing new: no new segment
    assert len(json.loads((tmp_path / "manifest.json").read_text())["segments"]) == 5
    other = Catalogue(8)  # a different catalogue saved into the same folder replaces it whole
    other.add(["x", "y"], rows[5:7], pcm_sha256=_pcm(["x", "y"]))
    other.save(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [s["count"] for s in manifest["segments"]] == [2]
    # only the one segment's arrays are left (the old segments' files were removed)
    assert {p.name.split(".")[1] for p in tmp_path.glob("*.npy")} == {str(manifest["segments"][0]["id"])}
    back = Catalogue.load(tmp_path)
    assert back.ids == ["x", "y"] and back.root_hash() == other.root_hash()
    # a loaded catalogue extends its own folder by appending
    back.add(["z"], rows[7:8], pcm_sha256=_pcm(["z"]))
    back.save(tmp_path)
    assert [s["count"] for s in json.loads((tmp_path / "manifest.json").read_text())["segments"]] == [2, 1]
    assert Catalogue.load(tmp_path).root_hash() == back.root_hash()


def test_chroma_steps_persist_at_their_stored_resolution(tmp_path) -> None:
    rng = np.random.default_rng(11)
    steps = [rng.random((40, 24)), rng.random((7, 24)), np.zeros((0, 24))]
    cat = Catalogue(8, c2d_dim=3)
    cat.add(
        ["a", "b", "c"],
        _unit(rng, 3, 8),
        rng.random((3, 3)),
        None,
        None,
        pcm_sha256=_pcm(["a", "b", "c"]),
        steps=steps,
    )
    cat.save(tmp_path)
    back = Catalogue.load(tmp_path)
    for i, original in enumerate(steps):
        # stored as uint8 (x 255, rounded half to even): within half a step of the original
        assert back.steps(i).shape == original.shape
        assert np.max(np.abs(back.steps(i) - original), initial=0.0) <= 0.5 / 255 + 1e-7
        assert np.array_equal(back.steps(i), cat.steps(i))
    with pytest.raises(CatalogError, match="chroma steps"):
        cat.add(["d"], _unit(rng, 1, 8), rng.random((1, 3)), pcm_sha256=_pcm(["d"]), steps=[])
    # steps of the previous gate (one 12-class profile, no registers) are refused, not stored reshaped
    with pytest.raises(CatalogError, match=r"\[n, 24\] are required"):
        narrow = [rng.random((5, 12))]
        cat.add(["d"], _unit(rng, 1, 8), rng.random((1, 3)), pcm_sha256=_pcm(["d"]), steps=narrow)
    assert len(cat) == 3
