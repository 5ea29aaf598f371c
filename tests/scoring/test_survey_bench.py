"""bench/survey.py end to end on a folder the test makes: each file scored whole in name order into
one catalogue, a transcode of an earlier file named as its duplicate, a tone near zero, a short file
skipped."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench import survey
from scoring._rate import SAMPLE_RATE
from scoring.testsignals import sine


@pytest.fixture(scope="module")
def folder(rendered: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """a_bach.wav, b_bach.mp3 (its 128 kbps transcode), c_mozart.wav, d_tone.wav (30 s of 440 Hz) and
    e_short.wav (5 s), with a text file beside them."""
    root = tmp_path_factory.mktemp("survey")
    shutil.copy(rendered["bach"], root / "a_bach.wav")
    shutil.copy(rendered["bach_mp3"], root / "b_bach.mp3")
    shutil.copy(rendered["mozart"], root / "c_mozart.wav")
    sf.write(root / "d_tone.wav", sine(440.0, 30.0).astype(np.float32), SAMPLE_RATE)
    sf.write(root / "e_short.wav", sine(440.0, 5.0).astype(np.float32), SAMPLE_RATE)
    (root / "notes.txt").write_text("not audio")
    return root


def test_folder_survey_scores_in_order_and_flags_only_the_copy(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rows.json"
    assert survey.main(["--folder", str(folder), "--device", "cpu", "--json", str(out)]) == 0
    rows = {r["name"]: r for r in json.loads(out.read_text())}
    assert list(rows) == ["a_bach.wav", "b_bach.mp3", "c_mozart.wav", "d_tone.wav"]

    # The transcode is minted after its source, so the gate names the source; distinct works are not flagged.
    assert rows["b_bach.mp3"]["flagged_as"] == "duplicate"
    assert rows["b_bach.mp3"]["flagged_of"] == "a_bach.wav"
    assert rows["b_bach.mp3"]["margin"] > 0
    assert rows["b_bach.mp3"]["match"]["fp"] >= 0.95  # the gate's figures against the named source
    # a transcode of the whole file: the compared passages lie at one place in both
    heard, source = rows["b_bach.mp3"]["listen"]["file"], rows["b_bach.mp3"]["listen"]["of"]
    assert heard == pytest.approx(source, abs=0.5) and heard[1] - heard[0] >= 20.0
    for name in ("a_bach.wav", "c_mozart.wav", "d_tone.wav"):
        assert rows[name]["flagged_of"] is None and rows[name]["listen"] is None, name

    # Scored alone, composed music is far above a steady tone (the validity bench's tone class).
    assert rows["a_bach.wav"]["novelty_alone"] >= 6000
    assert rows["c_mozart.wav"]["novelty_alone"] >= 6000
    assert rows["d_tone.wav"]["novelty_alone"] < survey.NEAR_ZERO_BP
    assert rows["d_tone.wav"]["seconds"] == pytest.approx(30.0, abs=0.1)

    text = capsys.readouterr().out
    summary = next(line for line in text.splitlines() if line.startswith(f"{folder}:") and "files (" in line)
    assert "4 files (1 skipped)" in summary
    assert "  skipped e_short.wav: " in text
    assert f"under {survey.NEAR_ZERO_BP}: 1," in summary
    assert "gate flags among them: 1 (b_bach.mp3 -> a_bach.wav)" in summary


def test_missing_package_and_folder_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="not installed"):
        survey.main(["--package", "no-such-package-ami-test"])
    with pytest.raises(SystemExit, match="is not a folder"):
        survey.main(["--folder", str(tmp_path / "absent")])
