#!/bin/sh
# tests/e2e/cuda_decls.sh — our declarations of the CUDA driver API, cuDNN and
# cuBLAS (runtime/cuda_api.h, cudnn_api.h, cublas_api.h) agree with the
# toolkit's headers: tests/unit/cuda_decls.cpp, compiled with the headers,
# static-asserts every table entry's signature, every constant and the cuDNN
# algorithm struct's layout. A deliberately wrong copy must then fail to
# compile, so the check is known to bite.
#
# Needs g++ and the CUDA headers (cuda.h, cudnn.h, cublas_api.h) under
# $CUDA_HOME/include or /usr/local/cuda/include; without them the test fails
# and says so (CI machines have the toolkit).
set -u
inc=${CUDA_HOME:-/usr/local/cuda}/include
cxx=${CXX:-g++}
for h in cuda.h cudnn.h cublas_api.h; do
  [ -f "$inc/$h" ] || { echo "cuda_decls: $inc/$h not found (install the CUDA toolkit and cuDNN, or set CUDA_HOME)" >&2; exit 1; }
done
flags="-std=c++17 -fsyntax-only -Wall -Werror -Wno-enum-compare -Wno-deprecated-declarations -I. -I$inc"
# shellcheck disable=SC2086
if ! $cxx $flags tests/unit/cuda_decls.cpp; then
  echo "cuda_decls: our declarations disagree with the toolkit's headers (above)" >&2
  exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/naoc-decls.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
sed 's/SAME(CudaApi, mem_alloc, cuMemAlloc_v2);/SAME(CudaApi, mem_alloc, cuMemFree_v2);/' \
  tests/unit/cuda_decls.cpp >"$tmp/wrong.cpp"
# shellcheck disable=SC2086
if $cxx $flags "$tmp/wrong.cpp" 2>"$tmp/err"; then
  echo "cuda_decls: a wrong declaration compiled: the check does not bite" >&2
  exit 1
fi
grep -q "CudaApi.mem_alloc vs cuMemFree_v2" "$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
echo "cuda_decls: driver, cuDNN and cuBLAS declarations match $inc"
