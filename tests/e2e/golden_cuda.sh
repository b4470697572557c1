#!/bin/sh
# tests/e2e/golden_cuda.sh [--bless] — the net.cu that naoc's CUDA emitter makes
# for the hand-built test networks (tests/unit/emu_nets.c) must equal the
# pinned files in tests/golden_cuda/. After a reviewed change to the emitter,
# `sh tests/e2e/golden_cuda.sh --bless` rewrites them (review with git diff).
set -u
BUILD=${BUILD:-build}
tool=$BUILD/tests/tools/cuda_test_nets
[ -x "$tool" ] || { echo "golden_cuda: $tool not built (make)" >&2; exit 1; }
if [ "${1:-}" = "--bless" ]; then
  exec "$tool" write tests/golden_cuda
fi
exec "$tool" check tests/golden_cuda
