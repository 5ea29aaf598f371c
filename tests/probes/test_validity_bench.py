"""bench/validity.py: each section computes its figures from injected scores as stated, the table says which
targets pass, and the sets build and score end to end through the public engine API on tiny sizes."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from bench import validity as V
from scoring import probes as P
from tests.probes.conftest import FOLK

SR = P.SR


def _pcm(seed: int, seconds: float = 1.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * SR)) * 0.1).astype(np.float32)


def _key(pcm: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(pcm, np.float32).tobytes()).hexdigest()


def _lookup(values: dict[str, float]):  # type: ignore[no-untyped-def]
    return lambda pcm: values[_key(pcm)]


def _synthetic_sets() -> V.ProbeSets:
    real = [P.Probe(f"real/r{i}", "real", "x", _pcm(i)) for i in range(3)]
    degenerate = [
        P.Probe(f"degenerate/{cls}/{j}", "degenerate", cls, _pcm(100 + 10 * k + j))
        for k, cls in enumerate(V.DEGENERATE_CLASSES)
        for j in range(2)
    ]
    orig = real[0]
    ladders = [
        P.Probe(
            f"ladder/r0/{lad}/{s}",
            "ladder",
            lad,
            orig.pcm if s == 0 else _pcm(500 + 10 * i + s),
            orig.name,
            s,
        )
        for i, lad in enumerate(("mp3", "noise"))
        for s in range(4)
    ]
    ladders.append(
        P.Probe("ladder/r0/gain_-6dB", "ladder", "gain_-6dB", orig.pcm * np.float32(0.5), orig.name, 1)
    )
    sources = [
        P.Probe("source/a", "derivative", "source", _pcm(900)),
        P.Probe("source/b", "derivative", "source", _pcm(901)),
    ]
    variants = [
        P.Probe("variant/a/mp3/128k", "derivative", "mp3", _pcm(910), "source/a"),
        P.Probe("variant/a/tempo/x0.8", "derivative", "tempo", _pcm(911), "source/a"),
        P.Probe("variant/b/tempo/x0.8", "derivative", "tempo", _pcm(912), "source/b"),
    ]
    negatives = {
        "bach_chorales": [
            P.Probe(f"negative/b/{i}", "negative", "bach_chorales", _pcm(950 + i)) for i in range(3)
        ]
    }
    spread = [P.Probe(f"spread/s{i}", "real", "s", _pcm(990 + i)) for i in range(3)]
    whole = [P.Probe(f"whole/w{i}", "real", "x", _pcm(995 + i)) for i in range(3)]
    return V.ProbeSets(real, degenerate, ladders, sources, variants, negatives, spread, whole)


def test_novelty_auc_and_spread_from_injected_scores() -> None:
    sets = _synthetic_sets()
    values = {_key(p.pcm): 8000.0 for p in sets.real}
    values.update({_key(p.pcm): 1000.0 for p in sets.degenerate})
    # One tone probe outscores every real one: tones' AUC is then 3 wins of 6 pairs = 0.5.
    values[_key(next(p for p in sets.degenerate if p.label == "tones").pcm)] = 9000.0
    values.update({_key(p.pcm): v for p, v in zip(sets.spread, (5000.0, 5400.0, 6100.0), strict=True)})
    # Whole files enter no AUC; the two under 500 bp are the table's failures.
    values.update({_key(p.pcm): v for p, v in zip(sets.whole, (0.0, 7000.0, 499.0), strict=True)})
    nov = V.novelty_auc(sets, _lookup(values))
    assert nov["auc"] == {
        "loops": 1.0,
        "shuffles": 1.0,
        "random_notes": 1.0,
        "tones": 0.5,
        "noise": 1.0,
        "clips": 1.0,
    }
    assert nov["whole"] == {"whole/w0": 0.0, "whole/w1": 7000.0, "whole/w2": 499.0}
    spr = V.spread(sets, _lookup(values))
    assert spr["spread_pct"] == pytest.approx(11.0)  # (6100 - 5000) / 10,000
    rows = V.table_rows({"novelty": nov, "spread": spr})
    verdict = {r[1].split(";")[0]: r[4] for r in rows}
    assert verdict["real(3) vs tones(2)"] == "FAIL" and verdict["real(3) vs loops(2)"] == "PASS"
    assert rows[-1][0] == "novelty spread" and rows[-1][4] == "FAIL"
    assert rows[0] == ("novelty real", "lowest of 3: r0 8000, r1 8000, r2 8000", "8000", "info", "")
    assert rows[1] == ("novelty whole files", "2 of 3 under 500: w0 0, w2 499", "2", "0", "FAIL")
    values.update({_key(p.pcm): 6000.0 for p in sets.whole})
    passed = V.table_rows({"novelty": V.novelty_auc(sets, _lookup(values))})[1]
    assert passed == ("novelty whole files", "0 of 3 under 500; lowest w0 6000", "0", "0", "PASS")


def test_ladders_rho_and_gain_from_injected_scores() -> None:
    sets = _synthetic_sets()
    values = {_key(p.pcm): 9000.0 - 1000.0 * p.step for p in sets.ladders if p.label == "mp3"}
    # The noise ladder rises at its last step: ranks (3, 2, 1, 4) vs (1, 2, 3, 4), d^2 = 8, rho = 1 - 48/60.
    values.update(
        {_key(p.pcm): (9000.0, 8000.0, 7000.0, 9500.0)[p.step] for p in sets.ladders if p.label == "noise"}
    )
    values[_key(sets.ladders[-1].pcm)] = 9045.0  # the -6 dB copy: 0.5 % off the original's 9000
    out = V.ladders(sets, _lookup(values))
    assert out["rho"]["mp3"]["real/r0"] == pytest.approx(-1.0)
    assert out["rho"]["noise"]["real/r0"] == pytest.approx(0.2)
    assert out["gain_pct"]["real/r0"] == pytest.approx(0.5)
    rows = {r[1].split(" ")[0]: r for r in V.table_rows({"ladders": out})}
    assert rows["mp3"][4] == "PASS" and rows["noise"][4] == "FAIL" and rows["max"][4] == "PASS"


def test_derivative_confusion_requires_the_earliest_mint() -> None:
    sets = _synthetic_sets()
    seen: list[tuple[list[str], list[str]]] = []

    def gate(minted, queries):  # type: ignore[no-untyped-def]
        ids = [i for i, _ in minted]
        seen.append((ids, [i for i, _ in queries]))
        first = [(ids[k - 2], None) if i.endswith("#copy") else (None, None) for k, i in enumerate(ids)]
        if ids == ["negative/b/0", "negative/b/1", "negative/b/2"]:
            first[2] = (None, "negative/b/0")  # one false positive
        names = {
            "variant/a/mp3/128k": ("source/a#copy", None),
            "variant/a/tempo/x0.8": (None, "source/a"),
            "variant/b/tempo/x0.8": (None, None),
        }
        return first, [names[i] for i, _ in queries]

    out = V.derivatives(sets, gate)
    # Mint order: every source, then each source's same-audio copy; variants are queries.
    assert seen[0] == (
        ["source/a", "source/b", "source/a#copy", "source/b#copy"],
        [p.name for p in sets.variants],
    )
    assert out["copies"] == {
        "n": 2,
        "caught": 2,
        "named_copy": 0,
        "named_other": 0,
        "missed": 0,
        "share": 1.0,
    }
    assert out["classes"]["mp3"]["named_copy"] == 1 and out["classes"]["mp3"]["share"] == 0.0
    assert out["classes"]["tempo"] == {
        "n": 2,
        "caught": 1,
        "named_copy": 0,
        "named_other": 0,
        "missed": 1,
        "share": 0.5,
    }
    assert out["false_positives"]["bach_chorales"] == {
        "n": 3,
        "fp": 1,
        "pairs": [("negative/b/2", "negative/b/0")],
    }
    assert set(out["misses"]) == {"variant/a/mp3/128k", "variant/b/tempo/x0.8"}
    table = V.format_table(V.table_rows({"derivatives": out}))
    assert "same-audio copy (2/2)" in table and "bach_chorales (3 distinct pieces)" in table


TINY = V.Sizes(  # the smallest sets that still exercise every section
    real_works=1, real_soundtracks=1, real_seconds=8.0, whole_soundtracks=1, whole_seconds=12.0,
    degenerate_n=1, degenerate_seconds=8.0, ladder_works=1, ladder_soundtracks=0,
    derivative_works=(FOLK,), derivative_soundtracks=0, derivative_seconds=24.0, derivative_full=False,
    chorales=2, folk_tunes=2, game_pieces=2, negative_seconds=8.0, spread_work=FOLK, spread_n=2,
)


def test_run_validity_end_to_end_on_the_engine(cache: P.ProbeCache) -> None:
    """Tiny sets through the public engine API: every section reports and the table has its lines."""
    report = V.run_validity(
        sizes=TINY, cache=cache.root, device="cpu", sections=("novelty", "derivatives", "spread")
    )
    assert report["skipped"] == [] and report["missing_packages"] == []
    nov = report["novelty"]
    assert set(nov["auc"]) == set(V.DEGENERATE_CLASSES)
    assert all(0.0 <= a <= 1.0 for a in nov["auc"].values())
    assert all(0 <= v <= 10000 for v in [*nov["real"].values(), *nov["degenerate"].values()])
    ((whole_name, whole_bp),) = nov["whole"].items()
    assert whole_name == f"whole/{P.SOUNDTRACKS[0].name}" and 0 <= whole_bp <= 10000
    assert len(report["spread"]["novelty"]) == 2
    der = report["derivatives"]
    assert (
        der["copies"]["n"] == 1
        and sum(t["n"] for t in der["classes"].values()) == report["probes"]["variants"]
    )
    assert {k: v["n"] for k, v in der["false_positives"].items()} == {
        "bach_chorales": 2,
        "folk_tunes": 2,
        "game_soundtrack": 2,
    }
    sections = [r[0] for r in report["table"]]
    assert sections.count("novelty AUC") == len(V.DEGENERATE_CLASSES)
    assert sections.count("novelty spread") == 1
    assert sections.count("novelty real") == 1  # the information line, neither PASS nor FAIL
    assert sections.count("novelty whole files") == 1
    assert report["passed"] + report["failed"] == len(report["table"]) - 1


def test_build_sets_makes_only_what_the_sections_need(cache: P.ProbeCache) -> None:
    sets = V.build_sets(TINY, cache.root, sections=["spread"])
    assert len(sets.spread) == 2 and not (sets.real or sets.degenerate or sets.ladders or sets.variants)
    assert sets.negatives == {}
    with pytest.raises(ValueError, match="unknown sections"):
        V.build_sets(TINY, cache.root, sections=["novelty", "vibes"])
