#!/bin/sh
# tools/demo.sh — the interim demo (until the search and the trainer land):
# checks the paper's networks in generated/ with naoc and prints, for each, its
# NAO token sequence (the reference scripts' fixed_arc) and its cells as the
# canonical .nao text (settings and node lines). The lead adds the statistics (--emit stats) here.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
NAOC=$BUILD/naoc
[ -x "$NAOC" ] || { echo "demo: $NAOC is not built (run make)" >&2; exit 2; }
for f in generated/*.nao; do
  echo "== $f"
  "$NAOC" --check "$f"
  printf 'arch: '
  "$NAOC" --emit seq "$f"
  "$NAOC" --emit nao "$f" | sed -n '/^network /,$p'
  echo
done
