"""`ami score` and `ami catalog`: JSON lines in mint order, per-file errors, exit status, catalogue."""

from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from offchain.cli import app

runner = CliRunner()


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_score_prints_one_json_object_per_file_and_goes_on_after_bad_ones(
    rendered, catalogue_dir, tmp_path
) -> None:
    cat = tmp_path / "cat"
    shutil.copytree(catalogue_dir, cat)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    missing = tmp_path / "missing.flac"
    files = [rendered["folk"], bad, rendered["folk_mp3"], missing, rendered["bach_up1"]]
    result = runner.invoke(app, ["score", *map(str, files), "--json", "--catalog", str(cat)])
    assert result.exit_code == 1
    lines = _json_lines(result.stdout)
    assert [line["file"] for line in lines] == [str(f) for f in files]
    folk, bad_line, folk_mp3, missing_line, bach_up1 = lines
    for line in (folk, folk_mp3, bach_up1):
        assert {"pcm_sha256", "novelty_bp", "quality_bp", "duplicate_of", "derivative_of", "versions"} <= set(
            line
        )
        assert 0 <= line["novelty_bp"] <= 10000 and 0 <= line["quality_bp"] <= 10000
    assert bad_line["error"] in {"CorruptAudio", "UnsupportedFormat"} and bad_line["message"]
    assert missing_line["error"] and "missing.flac" in missing_line["message"]
    assert folk_mp3["duplicate_of"] == str(rendered["folk"])  # the earlier file of the same run
    assert bach_up1["derivative_of"] == "bach"  # the catalogue entry
    # without --add the catalogue on disk is unchanged
    stats = json.loads(runner.invoke(app, ["catalog", "stats", "--catalog", str(cat)]).stdout)
    assert stats["entries"] == 2


def test_score_rejects_unknown_genre(rendered, tmp_path) -> None:
    result = runner.invoke(
        app, ["score", str(rendered["folk"]), "--genre", "polka", "--catalog", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "unknown genre 'polka'" in result.output


def test_catalog_build_add_stats(rendered, tmp_path) -> None:
    cat = tmp_path / "cat"
    music = tmp_path / "music"
    music.mkdir()
    shutil.copy(rendered["joplin"], music / "joplin.wav")
    (music / "notes.txt").write_text("not audio, skipped by suffix")
    built = runner.invoke(
        app, ["catalog", "build", str(music), "--genre", "ragtime_piano", "--catalog", str(cat)]
    )
    assert built.exit_code == 0, built.output
    stats = json.loads(runner.invoke(app, ["catalog", "stats", "--catalog", str(cat)]).stdout)
    assert stats["entries"] == 1 and stats["labels"] == {"ragtime_piano": 1}
    again = runner.invoke(app, ["catalog", "add", str(music / "joplin.wav"), "--catalog", str(cat)])
    assert again.exit_code == 1  # already catalogued
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"\x00" * 100)
    added = runner.invoke(app, ["catalog", "add", str(bad), "--catalog", str(cat)])
    assert added.exit_code == 1
    after = json.loads(runner.invoke(app, ["catalog", "stats", "--catalog", str(cat)]).stdout)
    assert after["entries"] == 1 and after["root_hash"] == stats["root_hash"]
    empty = runner.invoke(app, ["catalog", "stats", "--catalog", str(tmp_path / "none")])
    assert empty.exit_code == 2 and "manifest.json missing" in empty.output


def test_score_add_saves_the_files_into_the_catalogue(rendered, tmp_path) -> None:
    cat = tmp_path / "cat"
    first = runner.invoke(app, ["score", str(rendered["joplin"]), "--catalog", str(cat), "--add"])
    assert first.exit_code == 0, first.output
    assert "novelty" in first.stdout and "original" in first.stdout  # the human-readable line
    stats = json.loads(runner.invoke(app, ["catalog", "stats", "--catalog", str(cat)]).stdout)
    assert stats["entries"] == 1
    again = runner.invoke(app, ["score", str(rendered["joplin"]), "--catalog", str(cat), "--json"])
    (line,) = _json_lines(again.stdout)
    assert line["duplicate_of"] == str(rendered["joplin"]) and line["file"] == f"{rendered['joplin']}#2"
    assert line["catalogue_root"] == stats["root_hash"]
