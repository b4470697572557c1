#!/bin/sh
# tests/e2e/search_full.sh — nao-search --evaluator full on tiny Fashion-MNIST
# networks (F=4, N=1) and synthetic data, 1 epoch each:
#   - in-process: a 1-round search finishes with summary.json; every score in
#     the journal is the validation top-1 that a standalone nao-train run of
#     the same file with the same options reports (log.jsonl), not the test one;
#   - --jobs 2 (nao-train processes): the same scores, the same search;
#   - --job-list: exit 3 and jobs.txt; running half of it and `collect` fails
#     (exit 1) naming the runs without a result and keeps the finished ones;
#     running the rest and collecting continues the search (next round's
#     list, exit 3), and in the end gives the same search;
#   - a training that fails names the architecture and its run folder.
set -eu
BUILD=${BUILD:-build}
NS=$BUILD/nao-search
NT=$BUILD/nao-train
tmp=$(mktemp -d "${TMPDIR:-/tmp}/naoc-full.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

set -- --space nao-small --evaluator full --full-epochs 1 --full-data synthetic --full-synthetic-size 256,128 \
  --full-recipe val-size=64,batch=32 --seed-archs 4 --new-archs 2 --rounds 1 --controller-epochs 5 \
  --controller-hidden 16 --controller-emb 8 --controller-mlp-hidden 16 --threads 1 \
  --dataset fashion-mnist --channels 4 --layers 1 --quiet --no-progress

# ---- in-process
"$NS" "$@" --out "$tmp/a"
grep -q '"finished": true' "$tmp/a/summary.json" && grep -q '"evaluations": 6' "$tmp/a/summary.json" ||
  fail "in-process search: $(cat "$tmp/a/summary.json")"
for r in 000 001; do
  for f in "$tmp/a/round-$r"/arch-*.nao; do
    b=$(basename "$f" .nao)
    [ -f "$tmp/a/round-$r/runs/$b/result.json" ] || fail "no result.json in round-$r/runs/$b"
  done
done
# A score is the last validation top-1 of a standalone nao-train run of the file.
"$NT" "$tmp/a/round-000/arch-0002.nao" --out "$tmp/alone" --quiet --epochs 1 --val-size 64 --batch 32 \
  --data synthetic --synthetic-size 256,128 --threads 2
want=$(grep '"split":"valid"' "$tmp/alone/log.jsonl" | tail -1 | sed 's/.*"top1":\([^,]*\),.*/\1/')
test_top1=$(grep '"split":"test"' "$tmp/alone/log.jsonl" | tail -1 | sed 's/.*"top1":\([^,]*\),.*/\1/')
got=$(awk -F'\t' '$1 == 2 { print $2 }' "$tmp/a/round-000/evaluated.tsv")
echo "arch-0002: journal $got, standalone nao-train valid top-1 $want (test $test_top1)"
awk -v a="$got" -v b="$want" 'BEGIN { exit !(a + 0 == b + 0) }' || fail "journal score $got != valid top-1 $want"
[ "$want" != "$test_top1" ] || fail "valid and test top-1 agree: the check above cannot tell them apart"
[ "$(cut -f2 "$tmp/a/round-000/evaluated.tsv" | sort -u | wc -l)" -ge 2 ] ||
  fail "every architecture scored the same: the comparisons below cannot tell them apart"

# ---- --jobs 2: the same search
"$NS" "$@" --jobs 2 --out "$tmp/b"
cmp -s "$tmp/a/summary.json" "$tmp/b/summary.json" || { diff "$tmp/a/summary.json" "$tmp/b/summary.json"; fail "--jobs 2 differs"; }
for r in 000 001; do
  sort "$tmp/a/round-$r/evaluated.tsv" >"$tmp/ja"
  sort "$tmp/b/round-$r/evaluated.tsv" >"$tmp/jb"
  cmp -s "$tmp/ja" "$tmp/jb" || fail "round $r: --jobs 2 scores differ from in-process"
done
[ -f "$tmp/b/round-000/runs/arch-0000.log" ] || fail "no log of the nao-train process"

# ---- --job-list, a partial collect, then the rest
st=0; "$NS" "$@" --job-list --out "$tmp/c" 2>"$tmp/err" || st=$?
[ "$st" = 3 ] || fail "--job-list: exit $st (want 3): $(cat "$tmp/err")"
grep -q "collect --out $tmp/c" "$tmp/err" && grep -q "round-000/jobs.txt" "$tmp/err" || fail "message: $(cat "$tmp/err")"
[ "$(wc -l <"$tmp/c/round-000/jobs.txt")" = 4 ] || fail "jobs.txt: $(cat "$tmp/c/round-000/jobs.txt")"
(cd / && sed -n '1p;3p' "$tmp/c/round-000/jobs.txt" | sh)  # from elsewhere: the lines have absolute paths
st=0; "$NS" collect --out "$tmp/c" -q 2>"$tmp/err" || st=$?
[ "$st" = 1 ] || fail "collect with runs missing: exit $st (want 1)"
grep -q "2 trainings of this round have no result yet: arch-0001 (not started), arch-0003 (not started)" "$tmp/err" ||
  fail "collect's message: $(cat "$tmp/err")"
[ "$(wc -l <"$tmp/c/round-000/evaluated.tsv")" = 2 ] || fail "the finished runs were not journaled"
[ "$(wc -l <"$tmp/c/round-000/jobs-pending.txt")" = 2 ] || fail "jobs-pending.txt"
sh "$tmp/c/round-000/jobs-pending.txt"
st=0; "$NS" collect --out "$tmp/c" -q 2>"$tmp/err" || st=$?
[ "$st" = 3 ] && grep -q "round-001/jobs.txt" "$tmp/err" || fail "collect of round 0: exit $st: $(cat "$tmp/err")"
sh "$tmp/c/round-001/jobs.txt"
"$NS" collect --out "$tmp/c" -q
cmp -s "$tmp/a/summary.json" "$tmp/c/summary.json" || { diff "$tmp/a/summary.json" "$tmp/c/summary.json"; fail "job list differs"; }

# ---- a failing training names the arch and its run folder (a data folder
# that exists but holds no dataset: refused by the training, not up front)
mkdir -p "$tmp/nowhere"
st=0; "$NS" "$@" --full-data "$tmp/nowhere" --full-synthetic-size 8,8 --out "$tmp/d" 2>"$tmp/err" || st=$?
[ "$st" = 1 ] && grep -q "full evaluator: arch '[0-9 ]*' ($tmp/d/round-000/arch-0000.nao): training failed" "$tmp/err" &&
  grep -q "run folder: $tmp/d/round-000/runs/arch-0000" "$tmp/err" && grep -q "nowhere" "$tmp/err" ||
  fail "failing training: exit $st: $(cat "$tmp/err")"
# ---- usage: --help lists the options; refusals with their exit codes, nothing created
"$NS" --help >"$tmp/help"
for o in --full-epochs --full-data --full-recipe --full-synthetic-size --nao-train --job-list "nao-search collect"; do
  grep -q -- "$o" "$tmp/help" || fail "--help does not list $o"
done
expect() { # CODE PATTERN ARGS...
  code=$1 pat=$2
  shift 2
  st=0; "$NS" "$@" 2>"$tmp/err" || st=$?
  [ "$st" = "$code" ] && grep -q -- "$pat" "$tmp/err" || fail "nao-search $*: exit $st (want $code): $(cat "$tmp/err")"
}
expect 2 "collect needs --out" collect
expect 2 "does not write job lists" collect --out "$tmp/a"
expect 1 "'foo' is not a recipe option" --evaluator full --full-recipe foo=1 --out "$tmp/e"
expect 1 "give the epochs with --full-epochs" --evaluator full --full-recipe epochs=3 --out "$tmp/e"
expect 1 "val-size=0 leaves no validation split" --evaluator full --full-recipe val-size=0 --out "$tmp/e"
expect 1 "trains NAO networks" --space nb201 --evaluator full --out "$tmp/e"
expect 1 "no nao-train program there" --evaluator full --data synthetic --jobs 2 --nao-train "$tmp/none" --out "$tmp/e"
expect 2 "full-epochs: '0'" --evaluator full --full-epochs 0 --out "$tmp/e"
[ ! -e "$tmp/e" ] || fail "a refused run left $tmp/e"
echo ok
