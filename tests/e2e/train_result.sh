#!/bin/sh
# tests/e2e/train_result.sh — RUN/result.json, nao-train's machine-readable
# outcome: written at the end of a finished run with the final epoch's scores
# (the same numbers as log.jsonl's last eval records, read here
# independently), "max_steps" when --max-steps cut it short, none for an
# interrupted run or --eval-only; a resumed finished run writes it again.
. tests/e2e/common.inc
tiny_net "$T/net.nao" 0 1 1
ARGS="--data synthetic --synthetic-size 320,64 --batch 32 --val-size 64 --progress off --quiet --threads 2"

$NT "$T/net.nao" $ARGS --epochs 2 --out "$T/a" || fail "nao-train"
"$PYTHON" - "$T/a" <<'PY' || fail "result.json does not match log.jsonl"
import json, sys
run = sys.argv[1]
res = json.load(open(run + "/result.json"))
evals = [json.loads(l) for l in open(run + "/log.jsonl")]
valid = [r for r in evals if r["event"] == "eval" and r["split"] == "valid"]
test = [r for r in evals if r["event"] == "eval" and r["split"] == "test"]
assert len(valid) == 2 and len(test) == 2, (len(valid), len(test))
want = {"version": 1, "end": "done", "epochs": 2, "recipe_epochs": 2, "steps": 2 * 8,
        "valid_top1": valid[-1]["top1"], "valid_top5": valid[-1]["top5"], "valid_loss": valid[-1]["loss"],
        "valid_images": 64, "best_valid_top1": max(v["top1"] for v in valid),
        "best_epoch": max(range(2), key=lambda e: (valid[e]["top1"], -e)),
        "test_top1": test[-1]["top1"], "test_top5": test[-1]["top5"], "test_images": 64}
for k, v in want.items():
    assert res[k] == v, (k, res[k], v)
assert res["network_file"].endswith("net.nao") and 0 < res["seconds"] < 600, res
print("result.json:", res)
PY

$NT "$T/net.nao" $ARGS --epochs 3 --max-steps 5 --out "$T/b" || fail "nao-train --max-steps"
grep -q '"end":"max_steps"' "$T/b/result.json" && grep -q '"steps":5,' "$T/b/result.json" ||
  fail "--max-steps: $(cat "$T/b/result.json")"

$NT "$T/net.nao" --eval-only --weights "$T/a/best.safetensors" $ARGS --out "$T/c" >/dev/null 2>&1 || fail "--eval-only"
[ ! -e "$T/c/result.json" ] || fail "--eval-only wrote result.json"

# Interrupted (SIGTERM once its first step is logged): no result; resumed (up to
# step 8 here, to stay short): one.
$NT "$T/net.nao" $ARGS --synthetic-size 20000,64 --epochs 1 --threads 1 --log-interval 1 --out "$T/d" &
pid=$!
n=0
until grep -q '"event":"train"' "$T/d/log.jsonl" 2>/dev/null; do
  n=$((n + 1)); [ $n -lt 600 ] || { kill $pid; fail "no training step logged in 60 s"; }
  sleep 0.1
done
kill -TERM $pid
st=0; wait $pid || st=$?
[ "$st" = 143 ] || fail "SIGTERM: exit $st (want 143: stopped with a checkpoint)"
[ ! -e "$T/d/result.json" ] || fail "an interrupted run wrote result.json"
$NT "$T/net.nao" --resume --max-steps 8 --out "$T/d" --progress off --quiet --threads 2 || fail "resume"
grep -q '"end":"max_steps","epochs":0,"recipe_epochs":1,"steps":8,' "$T/d/result.json" ||
  fail "after the resume: $(cat "$T/d/result.json" 2>&1)"
echo ok
