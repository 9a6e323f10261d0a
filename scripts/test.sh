#!/usr/bin/env bash
# Fresh machine to green tests: install packages and the peer, build, run the whole suite; then
# the whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer, and every fuzzer
# for a short bounded run (docs/fuzzing.md has the longer one).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/install-peer.sh
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j 2
bash scripts/check-install.sh
bash scripts/sanitize.sh
bash scripts/fuzz.sh 20
