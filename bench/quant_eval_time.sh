#!/usr/bin/env bash
# Cost of post-training quantization against a plain evaluation, same model, data and threads:
#   fp32   mixq eval MODEL on the test set
#   ptq    mixq quantize MODEL: calibrate activations on the calibration data, choose per-row
#          weight scales, write the config and the fake-quantized ONNX, evaluate on the test set
# Both decode the same JPEGs; the ratio ptq / fp32 is the figure (target < 2). Best of ROUNDS
# rounds each, taking turns, since other work may share the cores.
#
# usage: bench/quant_eval_time.sh [BUILD_DIR]      (default build)
# environment: MODEL, TEST, CALIB, NORM (the --mean/--std flags), QUANT (quantizer flags),
#              ROUNDS (3), THREADS (2)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
MODEL=${MODEL:-../shared/models/cifar10_resnet20.onnx}
TEST=${TEST:-folder:../shared/data/cifar10/test}
CALIB=${CALIB:-folder:../shared/data/cifar10/train}
NORM=${NORM:---mean 0.485,0.456,0.406 --std 0.229,0.224,0.225}
QUANT=${QUANT:---wbits 4 --abits 8}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
BIN=$BUILD/mixq

die() { echo "quant_eval_time: $*" >&2; exit 1; }
[ -x "$BIN" ] || die "$BIN is missing; run scripts/build.sh"
[ -f "$MODEL" ] || die "model $MODEL not found (../shared beside the clone?)"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export OMP_WAIT_POLICY=passive

seconds() {  # runs the command quietly, prints its wall time in seconds
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >"$out/log" 2>&1 || { cat "$out/log" >&2; die "failed: $*"; }
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}
# shellcheck disable=SC2086
fp32() { seconds "$BIN" eval "$MODEL" --data "$TEST" $NORM --threads "$THREADS"; }
# shellcheck disable=SC2086
ptq() {
  seconds "$BIN" quantize "$MODEL" --calib-data "$CALIB" --data "$TEST" $NORM $QUANT \
    --threads "$THREADS" -o "$out/q"
}
best_fp32=1e9 best_ptq=1e9
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq "$ROUNDS"); do
  if (( round % 2 )); then a=$(fp32); b=$(ptq); else b=$(ptq); a=$(fp32); fi
  echo "round $round/$ROUNDS: fp32 eval $(printf %.2f "$a") s, calibrate+quantize+eval $(printf %.2f "$b") s" >&2
  best_fp32=$(awk -v x="$a" -v y="$best_fp32" 'BEGIN { print (x < y ? x : y) }')
  best_ptq=$(awk -v x="$b" -v y="$best_ptq" 'BEGIN { print (x < y ? x : y) }')
done
grep -E "top-1" "$out/log" | head -1 >&2 || true
printf '| fp32 eval s | calibrate + quantize + eval s | ratio | load before | load after |\n'
printf '|---:|---:|---:|---|---|\n'
printf '| %.2f | %.2f | %.2fx | %s | %s |\n' "$best_fp32" "$best_ptq" \
  "$(awk -v x="$best_ptq" -v y="$best_fp32" 'BEGIN { print x / y }')" "$load_before" "$(cut -d' ' -f1-3 /proc/loadavg)"
