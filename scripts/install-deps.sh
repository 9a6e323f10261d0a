#!/usr/bin/env bash
# Installs the Debian 12 packages mixq builds and tests with. Idempotent; run as root.
set -euo pipefail
# ocl-icd-opencl-dev: oneDNN's CMake config requires OpenCL (Debian builds it with the OpenCL GPU
# runtime) but only recommends the package, and recommends are not installed here.
packages=(
  build-essential cmake ninja-build pkg-config
  libonnx-dev libprotobuf-dev protobuf-compiler
  libdnnl-dev ocl-icd-opencl-dev libeigen3-dev coinor-libcbc-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev
  libopenmpi-dev openmpi-bin
  clang libclang-rt-14-dev libomp-dev
  libjpeg-dev libpng-dev zlib1g-dev libzip-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  pybind11-dev python3-dev python3-pytest
  dataset-fashion-mnist libonnx-testdata python3-numpy
  chromium
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
