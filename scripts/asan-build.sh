#!/usr/bin/env bash
# Builds the sanitizer build (clang, ASan + UBSan, CMake preset "asan", into build-asan/), after
# checking that clang has what it needs. Extra arguments go to `cmake --build` (e.g.
# `--target fuzzers`). Used by sanitize.sh and fuzz.sh; see docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}

# clang with its sanitizer and libFuzzer runtimes and OpenMP, which the Release build does not
# need (Debian 12: clang libclang-rt-14-dev libomp-dev).
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long) { return 0; }' >"$probe/t.cpp"
if ! clang++ -fsanitize=address,undefined,fuzzer -fopenmp "$probe/t.cpp" -o "$probe/t" 2>/dev/null; then
  echo "clang++ with ASan/UBSan/libFuzzer and OpenMP is missing: apt-get install clang libclang-rt-14-dev libomp-dev" >&2
  exit 1
fi

cmake --preset asan >/dev/null
cmake --build build-asan -j "$JOBS" "$@"
