#!/usr/bin/env bash
# The build keeps the module layering: every module compiles against an include view holding only
# itself and the modules below it (cmake/modules.cmake). For every module M and every other module
# X this preprocesses `#include "X/<a header of X>"` with M's view and checks that the header is
# found exactly when X is M or below M (the closure CMake declared), and missing otherwise, so an
# upward include is a compile error.
# Usage: check_views.sh CXX VIEW_ROOT SOURCE_DIR
set -uo pipefail
cxx=$1 views=$2 src=$3/src
status=0 checked=0
for view in "$views"/*/; do
  module=$(basename "$view")
  for dir in "$src"/*/; do
    other=$(basename "$dir")
    header=$(cd "$dir" && ls -1 *.h 2>/dev/null | head -n1)
    [ -n "$header" ] || continue
    out=$(echo "#include \"$other/$header\"" | "$cxx" -std=c++20 -E -x c++ -I "$view" - 2>&1 >/dev/null)
    missing=0
    # GCC: "X: No such file or directory"; clang: "'X' file not found".
    grep -qE "$other/$header(: No such file|' file not found)" <<<"$out" && missing=1
    allowed=0
    [ -e "$view/$other" ] && allowed=1
    checked=$((checked + 1))
    if [ "$allowed" = 1 ] && [ "$missing" = 1 ]; then
      echo "module $module: its own or a lower module's header $other/$header is not found"
      status=1
    elif [ "$allowed" = 0 ] && [ "$missing" = 0 ]; then
      echo "module $module: $other/$header of a module not below it can be included"
      status=1
    fi
  done
done
# A relative include would step around the views.
if grep -rn '#include "\.\./' "$src"; then
  echo "relative includes of another folder bypass the module views"
  status=1
fi
[ "$checked" -gt 100 ] || { echo "only $checked module pairs checked"; exit 1; }
echo "$checked module pairs checked"
exit $status
