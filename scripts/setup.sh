#!/usr/bin/env bash
# Installs universal-mfp and its test tools into the current Python.
# torch goes first, pinned to the CPU wheel, so that resolving the package's dependencies never
# pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
