#!/usr/bin/env bash
# FP32 inference, mixq against ONNX Runtime (bench/peer) on the same model, batch sizes and
# thread count in one run. Other work may share the cores, so the engines take turns for ROUNDS
# rounds and the best round of each is compared (ms per batch = wall time / runs over
# SECONDS_PER_RUN seconds, after warm-up).
#
# usage: bench/fp32_vs_ort.sh [BUILD_DIR]        (default build-perf, needs MIXQ_BUILD_BENCH=ON)
# environment: MODEL (../shared/models/cifar10_resnet20.onnx), BATCHES ("1 256"), THREADS (2),
#              SECONDS_PER_RUN (3), ROUNDS (3)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-perf}
MODEL=${MODEL:-../shared/models/cifar10_resnet20.onnx}
BATCHES=${BATCHES:-1 256}
THREADS=${THREADS:-2}
SECS=${SECONDS_PER_RUN:-3}
ROUNDS=${ROUNDS:-3}
BIN=$BUILD/bench_fp32

die() { echo "fp32_vs_ort: $*" >&2; exit 1; }
[ -x "$BIN" ] || die "$BIN is missing; build it with: cmake -S . -B $BUILD -G Ninja -DCMAKE_BUILD_TYPE=Release -DMIXQ_BUILD_BENCH=ON && ninja -C $BUILD bench_fp32"
[ -f "$MODEL" ] || die "model $MODEL not found"
command -v node >/dev/null || die "node is needed for the ONNX Runtime peer"
[ -d bench/peer/node_modules/onnxruntime-node ] ||
  die "ONNX Runtime peer missing: (cd bench/peer && npm install --ignore-scripts)"

load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
results=$(mktemp)
trap 'rm -f "$results"' EXIT
mixq() { "$BIN" --model "$MODEL" --batch "$1" --threads "$THREADS" --seconds "$SECS" --executor "$2"; }
ort() { node bench/peer/ort_bench.js "$MODEL" "$1" "$THREADS" "$SECS"; }
for round in $(seq "$ROUNDS"); do
  for b in $BATCHES; do
    echo "round $round/$ROUNDS, batch $b" >&2
    # Alternate who goes first so neither engine always meets the same neighbours.
    if (( round % 2 )); then
      mixq "$b" optimized >>"$results"; ort "$b" >>"$results"
    else
      ort "$b" >>"$results"; mixq "$b" optimized >>"$results"
    fi
    mixq "$b" plain >>"$results"
  done
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
node - "$results" "$MODEL" "$THREADS" "$ROUNDS" "$SECS" "$load_before" "$load_after" <<'EOF'
const fs = require('fs');
const [file, model, threads, rounds, secs, loadBefore, loadAfter] = process.argv.slice(2);
const best = {}, all = {};
let peer = 'ONNX Runtime';
for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
  if (!line.trim()) continue;
  const j = JSON.parse(line);
  const who = j.engine === 'mixq' ? 'mixq ' + j.executor : 'ort';
  if (j.peer) peer = j.peer;
  const ms = (1000 * j.batch) / j.images_per_s;
  const key = who + '/' + j.batch;
  (all[key] = all[key] || []).push(ms);
  best[key] = Math.min(best[key] ?? Infinity, ms);
}
const batches = [...new Set(Object.keys(best).map((k) => Number(k.split('/')[1])))].sort((a, b) => a - b);
const cols = ['mixq optimized', 'mixq plain', 'ort'];
const head = ['batch', 'mixq ms/batch', 'mixq img/s', 'mixq unoptimised ms', `${peer} ms/batch`, 'ORT img/s', 'speed-up vs ORT'];
const rows = batches.map((b) => {
  const [o, p, r] = cols.map((c) => best[c + '/' + b]);
  return [String(b), o.toFixed(2), (1000 * b / o).toFixed(0), p.toFixed(2), r.toFixed(2),
          (1000 * b / r).toFixed(0), (r / o).toFixed(2) + 'x'];
});
console.log(`FP32 inference, ${model}, ${threads} threads, best of ${rounds} rounds of ${secs} s each`);
console.log(`load average (1, 5, 15 min) before: ${loadBefore}, after: ${loadAfter}`);
const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const fmt = (r) => '| ' + r.map((c, i) => c.padStart(width[i])).join(' | ') + ' |';
console.log(fmt(head));
console.log('|' + width.map((w) => '-'.repeat(w + 1) + ':').join('|') + '|');
for (const r of rows) console.log(fmt(r));
console.log('all rounds (ms/batch): ' + Object.keys(all).sort().map((k) => `${k}: ${all[k].map((x) => x.toFixed(1)).join(' ')}`).join('; '));
EOF
