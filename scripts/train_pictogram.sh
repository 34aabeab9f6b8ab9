#!/usr/bin/env bash
# The whole pictogram recipe, one command, CPU only:
#   fetch npm packages -> render -> embed captions (MiniLM, once) -> train -> model dir.
# Usage: scripts/train_pictogram.sh [OUT_DIR] [CACHE_DIR]   (defaults: ./pictogram-model, ~/.cache/xmodal-picto)
# or:    make pictogram [OUT=DIR] [CACHE=DIR]   (installs the train extra into .venv first)
# Needs: npm, and a Python (PYTHON=...) with xmodal's dependencies and the train extra.
# Budget: <= 90 min on 2 cores (training starts no epoch that would end past 5000 s).
set -euo pipefail
OUT=${1:-pictogram-model}
CACHE=${2:-${HOME}/.cache/xmodal-picto}
PY=${PYTHON:-python}
HERE=$(cd "$(dirname "$0")/.." && pwd)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
fail() { echo "train_pictogram: $*" >&2; exit 2; }
if [ ! -f "$CACHE/data/train.npz" ]; then
  command -v npm >/dev/null || fail "needs npm to fetch the icon and emoji packages (apt-get install npm)"
  $PY -c "import resvg_py" 2>/dev/null || fail "needs the train extra to render icons: pip install -e '.[train]' (or run: make pictogram)"
fi
$PY -c "import xmodal" 2>/dev/null || PYTHONPATH="$HERE" $PY -c "import torch, faiss" 2>/dev/null \
  || fail "$PY lacks xmodal's dependencies: run make setup first (or make pictogram), or set PYTHON"
mkdir -p "$CACHE/npm/x"
PACKAGES=(
  emoji-datasource-google@16.0.0 emoji-datasource-twitter@16.0.0 emojibase-data@17.0.0 emojilib@4.0.3
  @iconify-json/mdi@1.2.3 @iconify-json/tabler@1.2.41 @iconify-json/lucide@1.2.137
  @iconify-json/carbon@1.2.29 @iconify-json/material-symbols@1.2.98 @iconify-json/fluent@1.2.60
  @iconify-json/ic@1.2.4 @iconify-json/ri@1.2.10 @iconify-json/mingcute@1.2.8
  @iconify-json/noto@1.2.9 @iconify-json/twemoji@1.2.5
  # held-out evaluation only
  @iconify-json/fluent-emoji-flat@1.2.6 @iconify-json/bi@1.2.7 @iconify-json/heroicons@1.2.3
)
cd "$CACHE/npm"
for p in "${PACKAGES[@]}"; do
  tgz=$(echo "${p#@}" | sed 's|/|-|; s|@|-|').tgz
  [ -f "$tgz" ] || npm pack "$p" --silent >/dev/null
  d="x/${tgz%.tgz}"
  [ -d "$d" ] || { mkdir -p "$d" && tar xzf "$tgz" -C "$d"; }
done
cd "$HERE"
[ -f "$CACHE/data/train.npz" ] || PYTHONPATH="$HERE" $PY scripts/build_pictogram_data.py --npm "$CACHE/npm/x" --out "$CACHE/data"
PYTHONPATH="$HERE" $PY scripts/train_pictogram.py --data "$CACHE/data" --out "$OUT" \
  --config scripts/pictogram_recipe.json --threads "$OMP_NUM_THREADS" --no-progress
