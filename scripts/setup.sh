#!/usr/bin/env bash
# Sets up everything AMI node needs on a fresh machine: system packages, a virtual environment with the
# project, and the npm-installed local services (IPFS node, chopsticks). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

# The soundfonts and game soundtracks after libsndfile1 are the validity probes' real music (scoring/probes.py).
APT_PACKAGES=(fluidsynth fluid-soundfont-gm libchromaprint-tools ffmpeg libsndfile1 timgm6mb-soundfont
    musescore-general-soundfont-small asc-music drascula-music frozen-bubble-data hyperrogue-music
    lincity-ng-data pingus-data
    chromium chromium-driver)  # the last two: the dashboard's browser tests (tests/dashboard)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
        echo "setup: installing system packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "setup: missing system packages (run as root to install): ${missing[*]}" >&2
        exit 1
    fi
fi

if [[ ! -x .venv/bin/python ]]; then
    python3.11 -m venv .venv 2>/dev/null || python3 -m venv .venv
fi
PY="$ROOT/.venv/bin/python"
"$PY" -m pip install -q --upgrade pip
# The CPU wheel of torch lies on this disk; installing it first keeps pip from pulling a CUDA build.
"$PY" -c "import torch" 2>/dev/null || "$PY" -m pip install -q "torch==2.13.0"
"$PY" -m pip install -q -e ".[dev]"

# npm packages for the local services, each folder with its own package.json and lock file.
for dir in $(git ls-files '*package-lock.json' | xargs -r -n1 dirname); do
    if [[ ! -d "$dir/node_modules" || "$dir/package-lock.json" -nt "$dir/node_modules" ]]; then
        echo "setup: npm ci in $dir"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
        touch "$dir/node_modules"
    fi
done
echo "setup: done"
