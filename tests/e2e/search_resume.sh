#!/bin/sh
# tests/e2e/search_resume.sh — nao-search killed with SIGKILL at arbitrary
# moments and resumed with --resume ends exactly where an uninterrupted run
# with the same seed ends: same state, pools, summary, controller weights and
# log (minus timings). Also: a run folder is never reused without --resume, and
# a resumed run refuses a changed option that shapes the run.
set -eu
BUILD=${BUILD:-build}
PY=${PYTHON:-python3}
NS=$BUILD/nao-search
tmp=$(mktemp -d "${TMPDIR:-/tmp}/naoc-resume.XXXXXX")
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT

"$PY" bench/search_quality_tables.py "$tmp/nb.csv" >/dev/null
set -- --space nb201 --evaluator table --table "$tmp/nb.csv" --seed-archs 40 --new-archs 12 --rounds 3 \
  --controller-epochs 40 --controller-hidden 32 --controller-emb 16 --controller-mlp-hidden 32 \
  --seed 7 --threads 2 --quiet --no-progress

"$NS" "$@" --out "$tmp/ref"

# Kill, resume, kill again... until a resume is left to finish.
if "$NS" "$@" --out "$tmp/ref" 2>"$tmp/err"; then echo "FAIL: a second run reused the folder"; exit 1; fi
grep -q "already holds a run" "$tmp/err" || { echo "FAIL: unexpected message: $(cat "$tmp/err")"; exit 1; }

first=1
kills=0
for delay in 0.05 0.4 0.15 0.8 0.3 1.2 0.1 0.6 0.25 2 0.5 3; do
  if [ $first = 1 ]; then "$NS" "$@" --out "$tmp/run" & first=0
  else "$NS" "$@" --out "$tmp/run" --resume & fi
  pid=$!
  sleep "$delay"
  if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
  wait "$pid" 2>/dev/null || true
  [ -f "$tmp/run/state" ] || first=1   # killed before the first commit: start again
done
if [ -f "$tmp/run/state" ]; then "$NS" "$@" --out "$tmp/run" --resume; else "$NS" "$@" --out "$tmp/run"; fi
echo "killed $kills times"

strip_time() { sed 's/, "time_s": [0-9.]*//' "$1"; }
# state keeps log.jsonl's length, which the timings in the log change.
grep -v '^log_size ' "$tmp/ref/state" >"$tmp/ref.state"; grep -v '^log_size ' "$tmp/run/state" >"$tmp/run.state"
cmp -s "$tmp/ref.state" "$tmp/run.state" || { echo "FAIL: state differs after kills and resumes"; diff "$tmp/ref.state" "$tmp/run.state" | head; exit 1; }
for f in summary.json controller.safetensors config; do
  cmp -s "$tmp/ref/$f" "$tmp/run/$f" || { echo "FAIL: $f differs after kills and resumes"; diff "$tmp/ref/$f" "$tmp/run/$f" | head; exit 1; }
done
strip_time "$tmp/ref/log.jsonl" >"$tmp/a"; strip_time "$tmp/run/log.jsonl" >"$tmp/b"
cmp -s "$tmp/a" "$tmp/b" || { echo "FAIL: log.jsonl differs"; diff "$tmp/a" "$tmp/b" | head; exit 1; }
for r in 0 1 2 3; do
  d=$(printf 'round-%03d' $r)
  for f in pool.tsv archs.tsv; do
    cmp -s "$tmp/ref/$d/$f" "$tmp/run/$d/$f" || { echo "FAIL: $d/$f differs"; exit 1; }
  done
done
[ "$(grep -c '"step": "evaluate"' "$tmp/run/log.jsonl")" = 4 ] || { echo "FAIL: expected 4 evaluation records"; exit 1; }

# A resumed run may extend the rounds, not change the seed.
if "$NS" "$@" --out "$tmp/run" --resume --seed 8 2>"$tmp/err"; then echo "FAIL: --seed changed on resume"; exit 1; fi
grep -q "differs from the run's 7" "$tmp/err" || { echo "FAIL: unexpected message: $(cat "$tmp/err")"; exit 1; }
"$NS" "$@" --out "$tmp/run" --resume --rounds 4
[ "$(grep -c '"step": "evaluate"' "$tmp/run/log.jsonl")" = 5 ] || { echo "FAIL: --rounds 4 on resume did not run a 4th round"; exit 1; }
echo "ok"
