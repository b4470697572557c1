#!/bin/sh
# tools/generated.sh write|check — generated/NAME.cu for every generated/NAME.nao.
#
#   write   (make generated)        rewrite each generated/NAME.cu with naoc
#   check   (make check-generated)  fail, naming the file, when one is stale
#                                   or missing
# naoc must be built ($BUILD/naoc). Output is deterministic, so `check`
# compares bytes.
set -u
BUILD=${BUILD:-build}
mode=${1:-}
case "$mode" in
  write|check) ;;
  *) echo "usage: tools/generated.sh write|check" >&2; exit 2 ;;
esac
naoc=$BUILD/naoc
[ -x "$naoc" ] || { echo "generated.sh: $naoc not built (run make)" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/naoc-gen.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
status=0
count=0
for src in generated/*.nao; do
  [ -f "$src" ] || continue
  count=$((count + 1))
  name=$(basename "$src" .nao)
  out=generated/$name.cu
  if ! "$naoc" "$src" -o "$tmp/$name.cu"; then
    echo "generated.sh: naoc failed on $src" >&2
    status=1
    continue
  fi
  if [ "$mode" = write ]; then
    if ! cmp -s "$tmp/$name.cu" "$out"; then
      cp "$tmp/$name.cu" "$out" && echo "wrote $out"
    fi
  elif [ ! -f "$out" ]; then
    echo "generated.sh: $out is missing: run make generated" >&2
    status=1
  elif ! cmp -s "$tmp/$name.cu" "$out"; then
    echo "generated.sh: $out is stale (naoc makes something else of $src): run make generated" >&2
    status=1
  fi
done
[ "$count" -gt 0 ] || echo "generated.sh: no generated/*.nao yet"
exit $status
