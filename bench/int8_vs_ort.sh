#!/usr/bin/env bash
# Quantized inference, one run: mixq's int8 engine (mixq.QConv), mixq's fake-quantized float
# execution and mixq FP32, against ONNX Runtime running the exported QDQ model with all its
# graph optimisations (its QDQ fusions turn the pairs into integer kernels). The config is made
# here by `mixq quantize` (W4A8 fixed point, calibration on 1,024 training images). Engines take
# turns for ROUNDS rounds; the best round of each counts.
#
# usage: bench/int8_vs_ort.sh [BUILD_DIR]        (default build)
# environment: MODEL, CALIB, NORM, QUANT (quantizer flags), BATCHES ("1 256"), THREADS (2),
#              SECONDS_PER_RUN (3), ROUNDS (3)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
MODEL=${MODEL:-../shared/models/cifar10_resnet20.onnx}
CALIB=${CALIB:-folder:../shared/data/cifar10/train}
NORM=${NORM:---mean 0.485,0.456,0.406 --std 0.229,0.224,0.225}
QUANT=${QUANT:---wbits 4 --abits 8}
BATCHES=${BATCHES:-1 256}
THREADS=${THREADS:-2}
SECS=${SECONDS_PER_RUN:-3}
ROUNDS=${ROUNDS:-3}

die() { echo "int8_vs_ort: $*" >&2; exit 1; }
[ -x "$BUILD/bench_fp32" ] && [ -x "$BUILD/mixq" ] || die "$BUILD/bench_fp32 or mixq missing"
[ -f "$MODEL" ] || die "model $MODEL not found"
[ -d bench/peer/node_modules/onnxruntime-node ] ||
  die "ONNX Runtime peer missing: (cd bench/peer && npm install --ignore-scripts)"
export OMP_WAIT_POLICY=passive
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck disable=SC2086
"$BUILD/mixq" quantize "$MODEL" --calib-data "$CALIB" $NORM $QUANT --threads "$THREADS" \
  -o "$work/q" >&2
results="$work/results"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
mixq() {
  "$BUILD/bench_fp32" --model "$MODEL" --batch "$1" --threads "$THREADS" --seconds "$SECS" \
    --executor optimized "${@:2}" >>"$results"
}
for round in $(seq "$ROUNDS"); do
  for b in $BATCHES; do
    echo "round $round/$ROUNDS, batch $b" >&2
    (cd bench/peer && node ort_bench.js "$work/q/model_qdq.onnx" "$b" "$THREADS" "$SECS") >>"$results"
    mixq "$b" --quant "$work/q/quant.json" --engine int8
    mixq "$b" --quant "$work/q/quant.json" --engine float
    mixq "$b"
  done
done
node - "$results" "$THREADS" "$ROUNDS" "$load_before" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'EOF'
const fs = require('fs');
const [file, threads, rounds, before, after] = process.argv.slice(2);
const best = {};
for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
  if (!line.trim()) continue;
  const j = JSON.parse(line);
  const key = (j.peer ? 'ort-qdq' : 'mixq-' + j.mode) + '/' + j.batch;
  best[key] = Math.max(best[key] ?? 0, j.images_per_s);
}
const batches = [...new Set(Object.keys(best).map((k) => Number(k.split('/')[1])))].sort((a, b) => a - b);
console.log(`threads ${threads}, best of ${rounds} rounds; load before ${before}, after ${after}`);
console.log('| batch | mixq int8 img/s | ORT QDQ img/s | int8 vs ORT | mixq fake-quant img/s | mixq FP32 img/s | int8 vs mixq FP32 |');
console.log('|---:|---:|---:|---:|---:|---:|---:|');
for (const b of batches) {
  const [i8, ort, fq, fp] = ['mixq-int8', 'ort-qdq', 'mixq-float', 'mixq-fp32'].map((k) => best[k + '/' + b]);
  console.log(`| ${b} | ${i8.toFixed(0)} | ${ort.toFixed(0)} | ${(i8 / ort).toFixed(2)}x | ${fq.toFixed(0)} | ${fp.toFixed(0)} | ${(i8 / fp).toFixed(2)}x |`);
}
EOF
