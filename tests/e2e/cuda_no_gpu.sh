#!/bin/sh
# tests/e2e/cuda_no_gpu.sh — nao-train --backend cuda on a machine without a
# GPU driver exits 1 and says what is missing: no libcuda at all (a path that
# does not exist), and the CUDA toolkit's stub libcuda (which loads, and
# whose cuInit fails). On a machine that has a driver the first case is
# forced with NAOC_CUDA_LIB, so the test means the same everywhere.
set -u
BUILD=${BUILD:-build}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/naoc-nogpu.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() { echo "cuda_no_gpu: $*" >&2; exit 1; }
opts="--recipe cifar10 --data synthetic --synthetic-size 16,8 --batch 4 --max-steps 1 --quiet --progress off"
# shellcheck disable=SC2086
NAOC_CUDA_LIB=/nonexistent/libcuda.so.1 "$BUILD/nao-train" tests/gpu/tiny.nao $opts --backend cuda \
  --out "$tmp/a" 2>"$tmp/err"
rc=$?
cat "$tmp/err"
[ "$rc" = 1 ] || fail "exit $rc without libcuda (1 expected)"
grep -q "^nao-train: --backend cuda: the CUDA driver (libcuda): NAOC_CUDA_LIB=/nonexistent/libcuda.so.1 cannot be loaded" "$tmp/err" ||
  fail "the message does not name libcuda and NAOC_CUDA_LIB"
[ ! -e "$tmp/a/checkpoint.safetensors" ] || fail "a checkpoint was written"
stub=${CUDA_HOME:-/usr/local/cuda}/lib64/stubs/libcuda.so
if [ -f "$stub" ]; then
  # shellcheck disable=SC2086
  NAOC_CUDA_LIB=$stub "$BUILD/nao-train" tests/gpu/tiny.nao $opts --backend cuda --out "$tmp/b" 2>"$tmp/err"
  rc=$?
  cat "$tmp/err"
  [ "$rc" = 1 ] || fail "exit $rc on the stub libcuda (1 expected)"
  for want in "cuInit failed while initializing the CUDA driver" CUDA_ERROR_STUB_LIBRARY "no NVIDIA driver is installed"; do
    grep -q "$want" "$tmp/err" || fail "the stub's message lacks '$want'"
  done
else
  echo "cuda_no_gpu: note: no toolkit stub at $stub"
fi
echo "cuda_no_gpu: ok"
