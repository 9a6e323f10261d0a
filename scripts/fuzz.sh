#!/usr/bin/env bash
# Runs every libFuzzer target for SECONDS_PER_TARGET seconds (default 30), one after the other,
# in the sanitizer build (build-asan/, built here if needed). Each starts from seeds made by
# fuzz_seeds plus the corpus earlier runs grew; everything lives under build-asan/fuzzing/, out
# of the source tree: seeds/, corpus/<target>/, artifacts/<target>/ (the input of any crash,
# timeout or out-of-memory), logs/<target>.log. Exits non-zero when any target found something.
# FUZZ_SEED (default 1) seeds libFuzzer's mutations, so a short run explores the same inputs on
# every machine and a finding reproduces; FUZZ_SEED=0 draws a new seed per run, for long runs.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]; see docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-30}
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  TARGETS=(fuzz_onnx fuzz_idx fuzz_image fuzz_quant_config fuzz_omega fuzz_packed fuzz_graph
           fuzz_npy)
fi
FUZZ_SEED=${FUZZ_SEED:-1}

bash scripts/asan-build.sh --target fuzzers

work=build-asan/fuzzing
rm -rf "$work/seeds"
build-asan/fuzz/fuzz_seeds "$work/seeds"

# Largest input each target gets: a few times its largest seed.
declare -A MAX_LEN=([fuzz_onnx]=16384 [fuzz_idx]=1024 [fuzz_image]=16384
                    [fuzz_quant_config]=8192 [fuzz_omega]=8192 [fuzz_packed]=8192
                    [fuzz_graph]=64 [fuzz_npy]=4096)

# Leaks are checked after every input; UBSan prints the stack of what it reports.
export ASAN_OPTIONS="detect_leaks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

status=0
printf '%-18s %10s %7s %7s %12s  %s\n' target runs cov ft corpus result
for t in "${TARGETS[@]}"; do
  mkdir -p "$work/corpus/$t" "$work/artifacts/$t" "$work/logs"
  log="$work/logs/$t.log"
  # -timeout: one input running over 10 s is a hang; -rss_limit_mb also caps single
  # allocations (malloc_limit_mb defaults to it); the fuzz targets set mixq's own
  # memory limit to 1 GiB, as --mem-limit 1G would, so a declared size beyond it must be refused.
  result=ok
  if ! "build-asan/fuzz/$t" "$work/corpus/$t" "$work/seeds/$t" \
      -max_total_time="$SECONDS_PER_TARGET" -max_len="${MAX_LEN[$t]}" -timeout=10 -seed="$FUZZ_SEED" \
      -rss_limit_mb=2560 -artifact_prefix="$work/artifacts/$t/" -print_final_stats=1 \
      >"$log" 2>&1; then
    result="FINDING (see $log and $work/artifacts/$t/)"
    status=1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
  ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
  corp=$(echo "$last" | sed -n 's/.* corp: \([^ ]*\).*/\1/p')
  printf '%-18s %10s %7s %7s %12s  %s\n' "$t" "${runs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" \
    "$result"
  if [ "$result" != ok ]; then
    grep -E 'ERROR|runtime error|fuzz invariant|terminate called|what\(\)' "$log" | head -5 || true
  fi
done
exit $status
