#!/bin/sh
# tests/run.sh [unit|golden|py|e2e ...] — run the test suite, or the named parts of it.
#
#   unit    every build/tests/test_* binary (from tests/unit/test_*.c)
#   golden  tests/golden/run.sh: the compiler's exact output on good and bad input
#   py      every tests/py/test_*.py, run with $PYTHON (parity with PyTorch models)
#   e2e     every tests/e2e/*.sh: whole programs on real data
#
# A test passes when it exits 0. Each failure's output is printed; the script
# exits 1 when anything failed. Tests find the programs in $BUILD.
set -u
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
export BUILD PYTHON
parts=${*:-unit golden py e2e}
log=$(mktemp -d "${TMPDIR:-/tmp}/naoc-tests.XXXXXX")
pass=0; fail=0; failed=""

run_one() { # name, command...
  name=$1; shift
  start=$(date +%s)
  if "$@" >"$log/out" 2>&1; then
    pass=$((pass + 1)); printf 'ok    %-44s %3ss\n' "$name" $(( $(date +%s) - start ))
  else
    fail=$((fail + 1)); failed="$failed $name"
    printf 'FAIL  %-44s %3ss\n' "$name" $(( $(date +%s) - start ))
    sed 's/^/      | /' "$log/out" | tail -n 60
  fi
}

for part in $parts; do
  case $part in
    unit)
      for t in "$BUILD"/tests/test_*; do
        [ -x "$t" ] || continue
        run_one "unit/$(basename "$t")" "$t"
      done ;;
    golden)
      [ -x tests/golden/run.sh ] && run_one golden tests/golden/run.sh ;;
    py)
      for t in tests/py/test_*.py; do
        [ -f "$t" ] || continue
        run_one "py/$(basename "$t" .py)" "$PYTHON" "$t"
      done ;;
    e2e)
      for t in tests/e2e/*.sh; do
        [ -f "$t" ] || continue
        run_one "e2e/$(basename "$t" .sh)" sh "$t"
      done ;;
    *) echo "tests/run.sh: unknown part '$part' (unit, golden, py, e2e)" >&2; exit 2 ;;
  esac
done
rm -rf "$log"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] || { echo "failed:$failed"; exit 1; }
