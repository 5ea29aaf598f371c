"""`ami demo --serve` end to end: the demo runs, then its services and the dashboard stay up with the demo's
real data (every page in Chromium, numbers equal to the demo's worker database, the audio streamed from the
demo's IPFS node equal to the rendered file) until SIGINT stops everything."""

from __future__ import annotations

import json
import os
import queue
import sqlite3
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from tests.dashboard.conftest import Browser, number, stop

pytestmark = [pytest.mark.slow]


def _lines(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    q: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            q.put(line)
        q.put("")

    threading.Thread(target=pump, daemon=True).start()
    return q


def test_demo_serve_shows_the_demos_data_until_interrupted(tmp_path: Path, wide: Browser) -> None:
    ami = str(Path(sys.executable).with_name("ami"))
    proc = subprocess.Popen(
        [ami, "demo", "--serve", "--workdir", str(tmp_path), "--track-seconds", "8"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines = _lines(proc)
    seen: list[str] = []
    try:
        url = None
        while url is None:
            line = lines.get(timeout=900)
            assert line, "ami demo --serve ended before serving:\n" + "".join(seen[-40:])
            seen.append(line)
            if line.startswith("dashboard: http://127.0.0.1:"):
                url = line.split(" ", 1)[1].strip().rstrip("/")
        db = sqlite3.connect(f"file:{tmp_path / 'worker.sqlite'}?mode=ro", uri=True)
        tracks = db.execute(
            "SELECT token_id, status, novelty_bp, reason FROM tracks ORDER BY token_id"
        ).fetchall()
        assert len(tracks) == 6
        for path in (
            "/",
            "/tracks",
            "/epochs",
            "/epochs/0",
            "/accounts",
            "/map",
            "/distributions",
            "/findings",
        ):
            d = wide.open(url + path)
            assert wide.console_errors() == [], path
            assert d.find_element("css selector", "h1").text
        wide.open(url + "/tracks")
        assert number(wide.text("[data-k=total]")) == 6
        for tok, status, nov, reason in tracks:
            wide.open(f"{url}/tracks/{tok}")
            assert wide.console_errors() == []
            assert wide.text("[data-k=status]") == status
            assert wide.text("[data-k=novelty]") == ("–" if nov is None else str(nov))
            if reason in ("duplicate", "derivative"):
                assert "token:1" in wide.text("[data-k=verdict]")
        (rec,) = db.execute("SELECT record FROM epochs WHERE epoch=0").fetchone()
        wide.open(url + "/epochs/0")
        assert number(wide.text("[data-k=paid]")) == sum(json.loads(rec)["paid"].values())
        # The map holds every track the catalogue took in (the corrupt upload never entered it).
        d = wide.open(url + "/map")
        points = d.execute_script("return document.getElementById('map').data.flatMap(t => t.customdata)")
        assert sorted(points) == [t for t, _s, _n, r in tracks if r != "undecodable"]
        # The audio player streams the minted bytes from the demo's IPFS node, checked against the CID.
        with urllib.request.urlopen(url + "/tracks/1/audio", timeout=60) as r:
            audio = r.read()
            assert r.headers["Content-Type"] == "audio/wav"
        assert audio == (tmp_path / "audio" / "bach_bwv66_6.wav").read_bytes()
    finally:
        stop(proc, timeout=120)  # the demo then stops the worker, IPFS and the devnet
    assert proc.returncode == 0
