#!/bin/sh
# tests/e2e/train_kill.sh — SIGKILL at any moment leaves the last checkpoint
# loadable.
#
# A run writes its checkpoint after every step (--checkpoint-steps 1), so most
# kills land during or between checkpoint writes. Eight times: start (or
# resume) the run, kill it with SIGKILL after a pseudo-random delay, then check
# that whatever checkpoint.safetensors holds loads completely: --eval-only
# scores it (weights), and the next round's --resume loads it all (momentum,
# position, metadata). Any refusal fails the test; a run that ends by itself
# (it finished) starts a fresh folder.
. tests/e2e/common.inc
tiny_net "$T/net.nao" 0 1 1
ARGS="--data synthetic --synthetic-size 4096,32 --batch 16 --eval-batch 32 --val-size 0 --epochs 1 --checkpoint-steps 1 --progress off --quiet --threads 1"
run=0 loaded=0 seed=7
for round in 1 2 3 4 5 6 7 8; do
  dir="$T/run$run"
  if [ -f "$dir/checkpoint.safetensors" ]; then
    $NT "$T/net.nao" --out "$dir" --resume --progress off --quiet --threads 1 >/dev/null 2>"$T/err" &
  else
    $NT "$T/net.nao" $ARGS --out "$dir" >/dev/null 2>"$T/err" &
  fi
  pid=$!
  seed=$(( (seed * 1103515245 + 12345) % 2147483648 ))
  delay=$(( 300 + seed % 1700 ))  # 0.3 to 2 s
  sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
  kill -9 $pid 2>/dev/null
  wait $pid
  rc=$?
  if [ $rc -ne 137 ]; then
    [ $rc -eq 0 ] || { cat "$T/err"; fail "round $round: the run exited $rc before the kill"; }
    run=$((run + 1))  # it finished: a new folder next round
    continue
  fi
  [ -f "$dir/checkpoint.safetensors" ] || { note "round $round: killed before the first checkpoint"; continue; }
  $NT "$T/net.nao" --eval-only --weights "$dir/checkpoint.safetensors" --data synthetic \
    --synthetic-size 64,32 --val-size 0 --eval-batch 32 --progress off >"$T/scores" 2>"$T/err" ||
    { cat "$T/err"; fail "round $round: the checkpoint after SIGKILL does not load"; }
  grep -q '"split":"test"' "$T/scores" || fail "round $round: no test score"
  loaded=$((loaded + 1))
  note "round $round: killed after ${delay} ms, checkpoint at step $(json_field "$dir/log.jsonl" checkpoint step | tail -n 1) loads"
done
[ $loaded -ge 3 ] || fail "only $loaded rounds had a checkpoint to check"
echo "kill: $loaded checkpoints checked"
