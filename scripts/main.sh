#!/usr/bin/env bash
# Fresh machine to the main job: install packages, build, run mixq on the default model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
model=../shared/models/cifar10_resnet20.onnx
if [ ! -f "$model" ]; then
  echo "main: $model is absent (../shared not beside the clone); nothing to evaluate" >&2
  exit 1
fi
build/mixq inspect "$model"
build/mixq eval "$model" --data folder:../shared/data/cifar10/test \
  --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225
