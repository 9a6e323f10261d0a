#!/usr/bin/env bash
# Fresh machine to the main job: install packages, build, then run mixq on its own ResNet-14
# (models/fmnist_resnet14.onnx, 14 searchable layers) and Debian's Fashion-MNIST: the model and
# its FP32 accuracy, then `mixq quantize` choosing per layer among 2/4/8-bit fixed point and
# 4-bit MSQ rows under a 3-bit size budget and a 0.6 ms XC7Z020 latency budget (CLADO
# sensitivities, exact IQP), exporting QDQ ONNX and the packed model, evaluating, and writing
# out/main/report.html with every allocator's accuracy-vs-size curve.
# A second run resumes the finished sensitivity measurement.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
export OMP_WAIT_POLICY=passive
build/mixq inspect models/fmnist_resnet14.onnx
build/mixq eval models/fmnist_resnet14.onnx --data fmnist:test
build/mixq quantize models/fmnist_resnet14.onnx --calib-data fmnist:train --data fmnist:test \
  --budget 3bits,0.6ms@XC7Z020 --candidates w2,w4,w4-msq1.5,w8 -o out/main
echo "main: outputs in out/main/ (open out/main/report.html)"
