#!/usr/bin/env bash
# Installs ONNX Runtime (npm onnxruntime-node) as the peer for benchmarks and peer tests.
# --ignore-scripts: its install script would fetch GPU binaries; the CPU library ships inside.
set -euo pipefail
cd "$(dirname "$0")/../bench/peer"
if ! command -v npm >/dev/null; then
  echo "npm not found: peer tests and benchmarks will be skipped" >&2
  exit 0
fi
if [ ! -f node_modules/onnxruntime-node/package.json ]; then
  npm install --ignore-scripts --no-audit --no-fund --loglevel=error || \
    echo "npm install failed: peer tests and benchmarks will be skipped" >&2
fi
