#!/usr/bin/env bash
# Installs the build into a scratch prefix and uses it as another project would: the example in
# examples/quantize built with find_package(mixq) and run (a small quantization of the installed
# default model), the same source built through pkg-config, the installed CLI run on its
# installed default model, and the installed Python module imported. Needs a finished build in
# build/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(mktemp -d /tmp/mixq-install.XXXXXX)
trap 'rm -rf "$root"' EXIT
prefix=$root/prefix

cmake --install build --prefix "$prefix" >/dev/null
test -f "$prefix/include/mixq/mixq.h"
if [ -d "$prefix/include/mixq" ] && ls "$prefix"/include/mixq | grep -qv -e '^mixq.h$' -e '^error.h$'; then
  echo "check-install: internal headers were installed: $(ls "$prefix/include/mixq")" >&2
  exit 1
fi

cmake -S examples/quantize -B "$root/example" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$root/example" >/dev/null
(cd "$root" && "$root/example/quantize_example" "" 4bits "$root/q.onnx") | tee "$root/example.log"
grep -q "budget 4bits: uses" "$root/example.log"
test -s "$root/q.onnx"

libdir=$(dirname "$(find "$prefix" -name libmixq.so | head -1)")
PKG_CONFIG_PATH=$libdir/pkgconfig
export PKG_CONFIG_PATH
# shellcheck disable=SC2046
c++ examples/quantize/main.cpp -o "$root/pc_example" $(pkg-config --cflags --libs mixq) \
  -Wl,-rpath,"$libdir"
"$root/pc_example" "" 3bits "$root/q3.onnx" >/dev/null

# The installed CLI finds its default model under the prefix, wherever the source tree is.
(cd "$root" && "$prefix/bin/mixq" quantize --wbits 4 --calib-samples 64 --limit 200 \
  --no-curves -o "$root/cli" >/dev/null)
test -s "$root/cli/model_qdq.onnx" || { ls "$root/cli" >&2; exit 1; }
# The Python module, when built: imports from its installed folder and finds the installed
# library and default model relative to itself.
module=$(find "$prefix" -name 'mixq.cpython-*.so' | head -1)
if [ -n "$module" ]; then
  python=$(sed -n 's/^MIXQ_PYTHON_EXECUTABLE:INTERNAL=//p' build/CMakeCache.txt)
  (cd "$root" && PYTHONPATH=$(dirname "$module") "$python" -c "import mixq
path = mixq.default_model_path()
assert path.startswith('$prefix'), path
print(mixq.Model.load(path))")
fi
echo "check-install: the installed package builds and runs examples/quantize (CMake and" \
  "pkg-config)${module:+; the Python module imports}"
