#!/usr/bin/env bash
# Set up xmodal on a fresh Debian machine: system packages (when we can install them), then a
# virtualenv in .venv with the CPU build of torch pinned first (an unpinned torch pulls CUDA).
set -euo pipefail
cd "$(dirname "$0")/.."

# usage: scripts/setup.sh [--test]   (--test adds what the test suite needs: a real browser)
SYSTEM_PACKAGES=(espeak-ng sox libsndfile1 fonts-dejavu-core)
if [[ "${1:-}" == "--test" ]]; then
  SYSTEM_PACKAGES+=(chromium chromium-driver qpdf)  # qpdf: encrypted PDFs for the tests
fi

missing=()
for pkg in "${SYSTEM_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
  if [[ $(id -u) == 0 ]]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else SUDO="none"; fi
  if [[ "$SUDO" == "none" ]]; then
    echo "setup: please install: ${missing[*]} (apt-get install); continuing without them" >&2
  else
    echo "setup: installing system packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[serve,milvus,dev,multilingual]"
echo "setup: done (.venv)"
