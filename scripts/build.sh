#!/usr/bin/env bash
# Configures and builds mixq (Release, Ninja) into build/. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset release >/dev/null
cmake --build build -j "$(nproc)"
