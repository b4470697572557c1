#!/bin/sh
# tests/e2e/nvrtc_kernels.sh — every kernel of every net.cu in generated/ and in
# the golden CUDA tests compiles with NVRTC for sm_90 and sm_80 with an empty
# log, and none uses local memory (spills or stack). The register / shared
# memory / spill report of each network goes to $BUILD/nvrtc/NAME.txt.
#
# Needs libnvrtc (the CUDA toolkit at /usr/local/cuda, or NAO_NVRTC=path);
# without it the test fails and says so: CI machines have the toolkit.
set -u
BUILD=${BUILD:-build}
tool=$BUILD/tests/tools/nvrtc_check
[ -x "$tool" ] || { echo "nvrtc_kernels: $tool not built (make)" >&2; exit 1; }
mkdir -p "$BUILD/nvrtc"
files=""
for f in generated/*.cu tests/golden_cuda/*.cu; do
  [ -f "$f" ] && files="$files $f"
done
[ -n "$files" ] || { echo "nvrtc_kernels: no net.cu files found" >&2; exit 1; }
status=0
for f in $files; do
  name=$(basename "$f" .cu)
  "$tool" --arch sm_90,sm_80 --report "$BUILD/nvrtc/$name.txt" "$f" || status=1
done
echo "reports in $BUILD/nvrtc/"
exit $status
