"""The architecture as stated, checked: the import-linter contracts of pyproject.toml (the layers of the
design card and no import cycles), and docs/architecture.md naming only paths that exist."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARCHITECTURE_DOC = REPO / "docs" / "architecture.md"


def test_import_contracts_hold() -> None:
    """`lint-imports` on the contracts in pyproject.toml ([tool.importlinter]); its report is the failure."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    for root in config["root_packages"]:
        if "." in root:
            # A namespace package (no __init__.py) is left out of the graph unless it is a root of its own;
            # once it has an __init__.py, naming it as a root is an error, reported without a word.
            assert not (REPO / root.replace(".", "/") / "__init__.py").exists(), (
                f"{root} is a regular package now: remove it from root_packages in pyproject.toml"
            )
    lint_imports = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, (
        f"import contracts broken (rerun: lint-imports --no-cache; add --debug if this is empty):\n"
        f"{proc.stdout}{proc.stderr}"
    )


# A path in backticks: a word with a slash or a file suffix, made of path characters only (no spaces, no
# call parentheses); `ami run` or `mint(audio_cid, ...)` are not paths.
_PATH = re.compile(
    r"`([A-Za-z0-9_.\-]+(?:/[A-Za-z0-9_.\-]*)+|[A-Za-z0-9_\-/]+\.(?:py|md|toml|sh|json|yml|yaml))`"
)


def named_paths(text: str) -> list[str]:
    """Every path in backticks in `text`, in order; a trailing slash (a folder) is kept."""
    return [m.group(1) for m in _PATH.finditer(text)]


def test_named_paths_are_found() -> None:
    """The pattern above finds files and folders and leaves commands and calls alone."""
    text = "`offchain/pipeline/worker.py`, `scoring/` and `README.md`; not `ami run`, `mint(cid)` or `1.5`"
    assert named_paths(text) == ["offchain/pipeline/worker.py", "scoring/", "README.md"]


def test_architecture_doc_names_only_existing_paths() -> None:
    """Every path docs/architecture.md names in backticks exists in the tree (relative to the repository)."""
    paths = named_paths(ARCHITECTURE_DOC.read_text())
    assert len(paths) >= 20, f"docs/architecture.md names only {len(paths)} paths: is it the map?"
    missing = [p for p in paths if not (REPO / p).exists()]
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"
