#!/usr/bin/env bash
# Fresh machine to green tests: install packages and the peer, build, run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/install-peer.sh
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j 2
