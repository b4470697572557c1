#!/bin/sh
# tests/e2e/search_command.sh — nao-search with the command evaluator: a
# command that looks accuracies up in the synthetic NAS-Bench-201 table gives
# the same search as the table evaluator itself; killed in the middle of an
# evaluation round and resumed, the evaluations that had finished are not run
# again (journal), at most the --jobs in flight are; a failing command stops
# the search with exit 1 and a message naming the architecture.
set -eu
BUILD=${BUILD:-build}
PY=${PYTHON:-python3}
NS=$BUILD/nao-search
tmp=$(mktemp -d "${TMPDIR:-/tmp}/naoc-command.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

"$PY" bench/search_quality_tables.py "$tmp/nb.csv" >/dev/null
cat >"$tmp/score.sh" <<EOF
#!/bin/sh
# score.sh ARCHFILE: the table's accuracy for the arch; counts its calls.
echo x >>"$tmp/calls"
sleep 0.05
grep -F "\$(cat "\$1")," "$tmp/nb.csv" | cut -d, -f2
EOF
set -- --space nb201 --seed-archs 30 --new-archs 10 --rounds 2 --controller-epochs 60 \
  --controller-hidden 32 --controller-emb 16 --controller-mlp-hidden 32 --seed 3 --threads 2 --quiet --no-progress

"$NS" "$@" --evaluator table --table "$tmp/nb.csv" --out "$tmp/table"

# Killed during the first evaluation round, then resumed.
"$NS" "$@" --evaluator command --command "sh $tmp/score.sh" --jobs 2 --out "$tmp/cmd" &
pid=$!
sleep 0.6
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
before=$(wc -l <"$tmp/calls")
"$NS" "$@" --evaluator command --command "sh $tmp/score.sh" --jobs 2 --out "$tmp/cmd" --resume
calls=$(wc -l <"$tmp/calls")
evals=$(grep '"evaluations"' "$tmp/cmd/summary.json" | tr -dc 0-9)
echo "calls before the kill: $before; in all: $calls; evaluations: $evals"
want=$(grep '"evaluations"' "$tmp/table/summary.json" | tr -dc 0-9)
[ "$evals" = "$want" ] && [ "$evals" -gt 40 ] || { echo "FAIL: $evals evaluations, the table run made $want"; exit 1; }
[ "$calls" -ge "$evals" ] && [ "$calls" -le $((evals + 2)) ] ||
  { echo "FAIL: $calls command calls for $evals evaluations: finished evaluations were repeated"; exit 1; }

# Same architectures, same accuracies, same choices as with the table.
sed 's/"evaluator": "[a-z]*"//' "$tmp/table/summary.json" >"$tmp/a"
sed 's/"evaluator": "[a-z]*"//' "$tmp/cmd/summary.json" >"$tmp/b"
cmp -s "$tmp/a" "$tmp/b" || { echo "FAIL: command and table searches differ"; diff "$tmp/a" "$tmp/b"; exit 1; }
cmp -s "$tmp/table/round-002/pool.tsv" "$tmp/cmd/round-002/pool.tsv" || { echo "FAIL: final pools differ"; exit 1; }

# A command that fails for some architecture stops the search, naming it.
if "$NS" "$@" --evaluator command --command 'grep -q "avg_pool_3x3~0|+" {} && { echo oops >&2; exit 4; }; echo 50' \
    --out "$tmp/fail" 2>"$tmp/err"; then echo "FAIL: the search ignored a failing command"; exit 1; fi
grep -q "exited with status 4" "$tmp/err" && grep -q "arch '|avg_pool_3x3~0|+" "$tmp/err" && grep -q oops "$tmp/err" ||
  { echo "FAIL: unexpected message: $(cat "$tmp/err")"; exit 1; }
echo ok
