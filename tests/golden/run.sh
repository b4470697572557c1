#!/bin/sh
# tests/golden/run.sh [--bless] — the compiler's exact output on good and bad input.
#
# Cases (run from the repository root, so paths in messages are stable):
#   tests/golden/NAME.nao   checked with `naoc --check`. Bad input (exit 1) must
#                           print exactly NAME.err; good input (exit 0) must print
#                           nothing, and each view V that this build has
#                           (`naoc --emit V`: seq, dot, nao, stats) must print
#                           exactly NAME.V (NAME.canon for the nao view, the
#                           canonical text). A view this build lacks (exit 70) is
#                           skipped while it has no expected file.
#   generated/NAME.nao      the same, expected files in tests/golden/generated/.
#   tests/golden/cli/NAME.args
#                           one naoc command line (shell words, after "naoc");
#                           expected NAME.out (stdout), NAME.err (stderr), NAME.rc;
#                           NAME.stdin, when present, is its standard input.
# Any other exit status (a crash, an internal error) fails, blessed or not.
# Also: a 10 MB file of random bytes must fail cleanly (exit 1) within the
# error limit, in well under 10 seconds.
#
# --bless rewrites the expected files from the current output (`make golden`);
# review the diff before committing it. Without it, any difference fails and is
# shown as a unified diff.
set -u
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
NAOC=$BUILD/naoc
bless=0
[ "${1:-}" = "--bless" ] && bless=1
[ -x "$NAOC" ] || { echo "golden: $NAOC is not built" >&2; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/naoc-golden.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0
cases=0

fail() { echo "FAIL $*"; fails=$((fails + 1)); }

# compare EXPECTED ACTUAL: bless, or diff.
compare() {
  if [ $bless -eq 1 ]; then
    if [ ! -f "$1" ] || ! cmp -s "$1" "$2"; then cp "$2" "$1"; echo "blessed $1"; fi
    return 0
  fi
  if [ ! -f "$1" ]; then fail "$1 is missing (run make golden after review)"; return 1; fi
  if ! cmp -s "$1" "$2"; then
    fail "$1 differs:"
    diff -u "$1" "$2" | head -n 40
    return 1
  fi
  return 0
}

# drop EXPECTED: a file that must not exist for this case.
drop() {
  [ -f "$1" ] || return 0
  if [ $bless -eq 1 ]; then rm -f "$1"; echo "removed $1"; else fail "$1 exists but the case does not produce it"; fi
}

run_nao() { # file expected-prefix
  file=$1; exp=$2
  cases=$((cases + 1))
  "$NAOC" --check "$file" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  case $rc in
    0)
      [ -s "$tmp/out" ] || [ -s "$tmp/err" ] && fail "$file: --check printed something on good input"
      drop "$exp.err"
      for view in seq dot nao stats; do
        ext=$view; [ "$view" = nao ] && ext=canon
        "$NAOC" --emit "$view" "$file" >"$tmp/view" 2>"$tmp/verr"
        vrc=$?
        if [ $vrc -eq 70 ] && [ ! -f "$exp.$ext" ] && grep -q "not available in this build" "$tmp/verr"; then
          continue
        fi
        if [ $vrc -ne 0 ]; then fail "$file: --emit $view exited $vrc"; cat "$tmp/verr"; continue; fi
        compare "$exp.$ext" "$tmp/view"
      done ;;
    1)
      [ -s "$tmp/out" ] && fail "$file: --check wrote to standard output"
      compare "$exp.err" "$tmp/err"
      for ext in seq dot canon stats; do drop "$exp.$ext"; done ;;
    *)
      fail "$file: naoc --check exited $rc"
      sed 's/^/    /' "$tmp/err" | head -n 20 ;;
  esac
}

for f in tests/golden/*.nao; do
  [ -f "$f" ] && run_nao "$f" "${f%.nao}"
done
mkdir -p tests/golden/generated
for f in generated/*.nao; do
  [ -f "$f" ] || continue
  b=$(basename "$f" .nao)
  run_nao "$f" "tests/golden/generated/$b"
done

for a in tests/golden/cli/*.args; do
  [ -f "$a" ] || continue
  cases=$((cases + 1))
  exp=${a%.args}
  eval "set -- $(cat "$a")"
  input=/dev/null
  [ -f "$exp.stdin" ] && input=$exp.stdin
  "$NAOC" "$@" >"$tmp/out" 2>"$tmp/err" <"$input"
  echo $? >"$tmp/rc"
  rc=$(cat "$tmp/rc")
  [ "$rc" -le 2 ] || [ "$rc" -eq 70 ] || fail "$a: naoc exited $rc"
  compare "$exp.out" "$tmp/out"
  compare "$exp.err" "$tmp/err"
  compare "$exp.rc" "$tmp/rc"
done

# 10 MB of random bytes: exit 1, at most the error limit, quickly. The file is
# kept on failure so the case can be replayed.
if [ $bless -eq 0 ]; then
  cases=$((cases + 1))
  rnd="$tmp/random.nao"
  head -c 10485760 /dev/urandom >"$rnd"
  start=$(date +%s)
  timeout 30 "$NAOC" --check "$rnd" >/dev/null 2>"$tmp/rnd.err"
  rc=$?
  secs=$(( $(date +%s) - start ))
  nerr=$(grep -c "^$rnd:[0-9]*:[0-9]*: error: " "$tmp/rnd.err")
  if [ $rc -ne 1 ] || [ "$nerr" -gt 21 ] || [ $secs -gt 10 ]; then
    keep=$(mktemp "${TMPDIR:-/tmp}/naoc-random-XXXXXX.nao")
    cp "$rnd" "$keep"
    fail "random 10 MB input: exit $rc, $nerr errors, ${secs}s (kept as $keep)"
  fi
fi

echo "golden: $cases cases, $fails failures"
[ $fails -eq 0 ]
