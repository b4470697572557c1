#!/bin/sh
# tests/e2e/golden_cuda.sh [--bless] — pinned net.cu files in tests/golden_cuda/:
#   NAME.cu of the hand-built test networks (tests/unit/emu_nets.c), made by
#   build/tests/tools/cuda_test_nets;
#   NAME.cu of each tests/golden_cuda/NAME.nao, made by `naoc NAME.nao`.
# Any difference fails. After a reviewed change to the emitter,
# `sh tests/e2e/golden_cuda.sh --bless` rewrites them (review with git diff).
set -u
BUILD=${BUILD:-build}
tool=$BUILD/tests/tools/cuda_test_nets
naoc=$BUILD/naoc
[ -x "$tool" ] || { echo "golden_cuda: $tool not built (make)" >&2; exit 1; }
[ -x "$naoc" ] || { echo "golden_cuda: $naoc not built (make)" >&2; exit 1; }
bless=0
[ "${1:-}" = "--bless" ] && bless=1
status=0
if [ $bless -eq 1 ]; then
  "$tool" write tests/golden_cuda || status=1
else
  "$tool" check tests/golden_cuda || status=1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/naoc-golden-cuda.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
for src in tests/golden_cuda/*.nao; do
  [ -f "$src" ] || continue
  want=${src%.nao}.cu
  if ! "$naoc" "$src" -o "$tmp/out.cu"; then
    echo "golden_cuda: naoc failed on $src" >&2
    status=1
  elif [ $bless -eq 1 ]; then
    cmp -s "$tmp/out.cu" "$want" || { cp "$tmp/out.cu" "$want"; echo "blessed $want"; }
  elif ! cmp -s "$tmp/out.cu" "$want"; then
    echo "golden_cuda: $want differs from what naoc makes of $src:" >&2
    diff -u "$want" "$tmp/out.cu" | head -n 40 >&2
    status=1
  fi
done
exit $status
