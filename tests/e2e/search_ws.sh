#!/bin/sh
# tests/e2e/search_ws.sh — nao-search --evaluator ws on a tiny Fashion-MNIST
# setting (F = 4, one normal cell per stage, 3 pool evaluations): the run
# writes .nao files naoc accepts, summary.json and supernet.safetensors; killed
# with SIGKILL at several moments (supernet training, scoring, controller) and
# resumed, it ends with the same state, summary, pools and supernet, bit for
# bit, as an uninterrupted run.
set -eu
BUILD=${BUILD:-build}
NS=$BUILD/nao-search
NAOC=$BUILD/naoc
FMNIST=${FMNIST:-/usr/share/datasets/fashion-mnist}
for p in "$NS" "$NAOC"; do [ -x "$p" ] || { echo "missing $p: run make" >&2; exit 1; }; done
[ -d "$FMNIST" ] || { echo "skip: no Fashion-MNIST in $FMNIST"; exit 0; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/naoc-ws.XXXXXX")
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

set -- --space nao-small --evaluator ws --dataset fashion-mnist --data "$FMNIST" --channels 4 --layers 1 \
  --seed-archs 6 --new-archs 3 --rounds 2 --controller-epochs 10 --controller-hidden 16 --controller-emb 8 \
  --controller-mlp-hidden 16 --ws-epochs 2 --ws-batch 16 --ws-train-images 64 --ws-heldout 200 \
  --ws-eval-images 50 --seed 3 --threads 2 --quiet --no-progress

start=$(date +%s)
"$NS" "$@" --out "$tmp/ref"
echo "uninterrupted run: $(( $(date +%s) - start )) s"
for f in summary.json supernet.safetensors controller.safetensors state; do
  [ -s "$tmp/ref/$f" ] || fail "no $f"
done
[ "$(grep -c '"step": "prepare"' "$tmp/ref/log.jsonl")" = 3 ] || fail "expected 3 supernet rounds in log.jsonl"
grep -q '"evaluations": 18' "$tmp/ref/summary.json" || fail "summary: $(cat "$tmp/ref/summary.json")"
n=0
for f in "$tmp"/ref/round-00[0-2]/arch-*.nao "$tmp"/ref/top/rank-1.nao; do
  "$NAOC" --check "$f" >/dev/null 2>"$tmp/err" || fail "naoc --check $f: $(cat "$tmp/err")"
  n=$((n + 1))
done
[ $n -ge 19 ] || fail "only $n architecture files"

# Kill at several moments, resume until done.
first=1
kills=0
for delay in 0.3 1.1 0.7 1.6 0.5 2.2 0.9; do
  if [ $first = 1 ]; then "$NS" "$@" --out "$tmp/run" & first=0
  else "$NS" "$@" --out "$tmp/run" --resume & fi
  pid=$!
  sleep "$delay"
  if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
  wait "$pid" 2>/dev/null || true
  [ -f "$tmp/run/state" ] || first=1   # killed before the first commit: start again
  grep -q '^phase finished' "$tmp/run/state" 2>/dev/null && break
done
if [ -f "$tmp/run/state" ]; then "$NS" "$@" --out "$tmp/run" --resume; else "$NS" "$@" --out "$tmp/run"; fi
echo "killed $kills times"
# The log's length (kept in state) and its notes carry timings and img/s,
# which differ from run to run; everything else must match bit for bit.
grep -v '^log_size ' "$tmp/ref/state" >"$tmp/ref.state"
grep -v '^log_size ' "$tmp/run/state" >"$tmp/run.state"
cmp -s "$tmp/ref.state" "$tmp/run.state" || fail "state differs after kills and resumes"
for f in summary.json supernet.safetensors controller.safetensors; do
  cmp -s "$tmp/ref/$f" "$tmp/run/$f" || fail "$f differs after kills and resumes"
done
steps() { sed 's/.*"round": \([0-9]*\), "step": "\([a-z]*\)".*/\1 \2/' "$1"; }
[ "$(steps "$tmp/ref/log.jsonl")" = "$(steps "$tmp/run/log.jsonl")" ] ||
  fail "log.jsonl records differ: $(steps "$tmp/run/log.jsonl" | tr '\n' ,)"
[ "$(wc -c <"$tmp/run/log.jsonl")" = "$(sed -n 's/^log_size //p' "$tmp/run/state")" ] ||
  fail "log_size in state does not match log.jsonl"
for r in 0 1 2; do
  d=$(printf 'round-%03d' $r)
  cmp -s "$tmp/ref/$d/pool.tsv" "$tmp/run/$d/pool.tsv" || fail "$d/pool.tsv differs"
done

# A resumed run refuses a changed supernet setting; the supernet file of
# another run is refused with its name.
if "$NS" "$@" --out "$tmp/run" --resume --ws-batch 8 2>"$tmp/err"; then fail "--ws-batch changed on resume"; fi
grep -q "differs from the run's 16" "$tmp/err" || fail "unexpected message: $(cat "$tmp/err")"
echo "ok"
