#!/usr/bin/env bash
# Fresh machine to the main job: install packages, build, then run mixq on its embedded default
# model (models/fmnist_default.onnx) and Debian's Fashion-MNIST: FP32 accuracy, CLADO
# sensitivities, a 3-bit mixed-precision allocation, its accuracy, its FPGA cost and the HTML
# report. Outputs go to out/main/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
export OMP_WAIT_POLICY=passive
model=models/fmnist_default.onnx
out=out/main
mkdir -p "$out"
mixq=build/mixq
$mixq inspect "$model"
$mixq eval "$model" --data fmnist:test
# Sensitivities on 1024 training images (never the test set); resumable if interrupted.
resume=()
[ -f "$out/sensitivity.omega" ] && resume=(--resume)
$mixq sensitivity "$model" --data fmnist:train --samples 1024 --candidates w2,w4,w8 \
  -o "$out/sensitivity.omega" --json "$out/omega.json" "${resume[@]}"
$mixq allocate --omega "$out/sensitivity.omega" --budget 3bits --method clado -o "$out/clado_3bits.json"
$mixq eval "$model" --data fmnist:test --quant "$out/clado_3bits.json"
$mixq hw "$model" --quant "$out/clado_3bits.json" --device XC7Z020 --json "$out/hw.json"
$mixq report --quant "$out/clado_3bits.json" --omega "$out/sensitivity.omega" --hw "$out/hw.json" \
  --title "mixq: the default model at 3 bits" -o "$out/report.html"
echo "main: outputs in $out/ (open $out/report.html)"
