#!/bin/sh
# tests/e2e/search_usage.sh — nao-search's answers to bad usage and bad input:
# exit 2 for bad options, 1 for bad input, each with a message saying what is
# wrong; --help exits 0; nothing is left half-done.
set -eu
BUILD=${BUILD:-build}
NS=$BUILD/nao-search
tmp=$(mktemp -d "${TMPDIR:-/tmp}/naoc-usage.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0

expect() { # CODE PATTERN ARGS...: run, check exit code and that stderr contains PATTERN
  code=$1 pat=$2
  shift 2
  set +e
  "$NS" "$@" >"$tmp/out" 2>"$tmp/err"
  got=$?
  set -e
  if [ "$got" != "$code" ] || ! grep -q -- "$pat" "$tmp/err"; then
    echo "FAIL: nao-search $*: exit $got (want $code), stderr: $(cat "$tmp/err")"
    fails=$((fails + 1))
  fi
}

printf 'arch,accuracy\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,10\n' >"$tmp/one.csv"
"$NS" --help >"$tmp/help" && grep -q -- "--seed-archs" "$tmp/help" || { echo "FAIL: --help"; fails=$((fails + 1)); }
expect 2 "unknown option '--sead'" --sead 3
expect 2 "--out DIR is required" --evaluator table --table x
expect 2 "--evaluator is required" --out "$tmp/a"
expect 2 "--seed-archs: 'many' is not a valid value" --seed-archs many --evaluator table --out "$tmp/a"
expect 2 "--controller-dropout: '1.5' is not a valid value" --controller-dropout 1.5 --evaluator table --out "$tmp/a"
expect 2 "must equal the hidden size 64" --controller-hidden 64 --evaluator table --out "$tmp/a"
expect 2 "--new-archs must not exceed --seed-archs" --seed-archs 10 --new-archs 20 --evaluator table --out "$tmp/a"
expect 2 "unknown search space 'nb101'" --space nb101 --evaluator table --out "$tmp/a"
expect 2 "--dataset: unknown dataset 'mnist'" --dataset mnist --evaluator table --out "$tmp/a"
expect 2 "--jobs needs a value" --evaluator command --out "$tmp/a" --jobs
expect 1 "unknown evaluator 'tabel'" --evaluator tabel --out "$tmp/a"
expect 1 "the cifar10 dataset needs its folder (--data DIR or --full-data DIR)" --evaluator full --out "$tmp/a"
expect 1 "--data $tmp/nodata: No such file or directory" --evaluator full --data "$tmp/nodata" --out "$tmp/a"
expect 1 "the cifar10 dataset needs its folder (--data DIR)" --evaluator ws --out "$tmp/a"
expect 1 "the 5-op space only (--space nao-small, not nb201)" --evaluator ws --space nb201 --out "$tmp/a"
expect 1 "the CIFAR stem only" --evaluator ws --dataset imagenet --out "$tmp/a"
expect 1 "$tmp/nodata" --evaluator ws --dataset fashion-mnist --data "$tmp/nodata" --out "$tmp/a"
expect 1 "--ws-eval-images 50 exceeds the 20 held-out images" --evaluator ws --dataset fashion-mnist --data synthetic \
  --ws-heldout 20 --ws-eval-images 50 --out "$tmp/a"
expect 1 "unknown backend 'tpu'" --evaluator ws --dataset fashion-mnist --data synthetic --backend tpu --out "$tmp/a"
expect 2 "--ws-drop-path-keep: '0' is not a valid value" --evaluator ws --ws-drop-path-keep 0 --out "$tmp/a"
expect 1 "the table evaluator needs --table FILE" --evaluator table --out "$tmp/a"
expect 1 "nope.csv: cannot read the table" --evaluator table --table "$tmp/nope.csv" --out "$tmp/a"
expect 2 "holds no run to resume" --resume --out "$tmp/a"
[ ! -e "$tmp/a" ] || { echo "FAIL: a failed start left $tmp/a behind"; fails=$((fails + 1)); }
# The table lacks the archs the seed pool asks for: exit 1 naming one; the run folder stays resumable.
expect 1 "has no row for arch '|" --space nb201 --evaluator table --table "$tmp/one.csv" --seed-archs 5 --new-archs 2 --out "$tmp/b"
expect 2 "found only 15625 distinct" --space nb201 --evaluator table --table "$tmp/one.csv" --seed-archs 20000 --new-archs 2 --out "$tmp/c"
# A damaged state file is an error naming it, not a crash.
head -c 100 "$tmp/b/state" >"$tmp/b/state.x" && mv "$tmp/b/state.x" "$tmp/b/state"
expect 1 "state:" --resume --out "$tmp/b"
printf 'nao-search-state 2\n' >"$tmp/b/state"
expect 1 "not a nao-search state file" --resume --out "$tmp/b"
[ $fails = 0 ] && echo ok || { echo "$fails failures"; exit 1; }
