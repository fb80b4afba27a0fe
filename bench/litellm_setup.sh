#!/usr/bin/env bash
# Create the bench-only virtualenv bench/.venv-litellm (gitignored) with:
#   - LiteLLM proxy, the comparison target, pinned so runs stay comparable
#   - matplotlib, which bench/chart.py uses to draw results/latest.png
# Kept apart from the project venv on purpose: LiteLLM brings ~110 packages whose pins would
# fight Keygate's, and neither package is a dependency of Keygate itself.
# Idempotent: when the pinned versions are already there it returns at once.
set -euo pipefail
cd "$(dirname "$0")"

# 1.102.4: the newest release whose whole dependency set (litellm-proxy-extras,
# litellm-enterprise, certifi pins) resolves from the package index as seen here; newer ones
# pin packages the index does not have yet.
LITELLM_VERSION="${LITELLM_VERSION:-1.102.4}"
MATPLOTLIB_VERSION="${MATPLOTLIB_VERSION:-3.11.2}"
VENV=".venv-litellm"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3

installed() {
    "$VENV/bin/python" - "$LITELLM_VERSION" "$MATPLOTLIB_VERSION" 2>/dev/null <<'PY'
import sys
from importlib.metadata import version
sys.exit(0 if (version("litellm"), version("matplotlib")) == tuple(sys.argv[1:3]) else 1)
PY
}

if [ -x "$VENV/bin/python" ] && installed; then
    echo "[litellm_setup] litellm ${LITELLM_VERSION} and matplotlib ${MATPLOTLIB_VERSION} already in bench/${VENV}"
    exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
echo "[litellm_setup] installing litellm[proxy]==${LITELLM_VERSION} matplotlib==${MATPLOTLIB_VERSION} into bench/${VENV} (~2 min)"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    "litellm[proxy]==${LITELLM_VERSION}" "matplotlib==${MATPLOTLIB_VERSION}" 2>&1 \
    | { grep -v "^WARNING: Location" || true; }
installed || { echo "[litellm_setup] install failed" >&2; exit 1; }
echo "[litellm_setup] done"
