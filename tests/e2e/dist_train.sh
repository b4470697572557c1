# tests/e2e/dist_train.sh — data-parallel training on the CPU under
# `mpirun -np 2` (docs/distributed.md), on a real Fashion-MNIST subset:
#  1. the all-reduced gradient is the mean of the two shards' gradients computed
#     separately (bit for bit), and with BN in eval mode that of the whole batch
#     (tests/tools/dist_grad.c);
#  2. two ranks with batch B take the same steps as one rank with batch 2B when
#     BN is in eval mode (nao-train --bn-eval): weights, momentum, losses and the
#     (sharded) evaluation agree to float rounding; one rank with batch B does not;
#  3. only rank 0 writes: with a working folder per rank, rank 1's stays empty;
#  4. a run stopped mid-epoch and resumed on 2 ranks ends bit-identical to a
#     straight one; resuming it on 1 rank is refused, naming the world size;
#  5. faults: a rank killed mid-run ends the job (mpirun names it) and the
#     checkpoint on disk resumes; a rank that hangs (SIGSTOP) makes rank 0 fail
#     within --dist-timeout naming it.
. tests/e2e/common.inc
. tests/e2e/lib/mpi.sh
ST="$PYTHON tests/e2e/lib/st_close.py"
tiny_net "$T/net.nao" 0.4 1 1
tiny_net "$T/net_drop.nao"   # drop-path and dropout: masks drawn per (step, node, sample)
fmnist_subset "$T/fm" 240 100
NTA=$(pwd)/$NT

note "1: the averaged gradient"
mpirun_np 2 "$BUILD/tests/tools/dist_grad" "$T/net.nao" >"$T/g1" 2>&1 || { cat "$T/g1"; fail "dist_grad (BN batch statistics)"; }
mpirun_np 2 "$BUILD/tests/tools/dist_grad" "$T/net.nao" --bn-eval >"$T/g2" 2>&1 || { cat "$T/g2"; fail "dist_grad --bn-eval"; }
cat "$T/g1" "$T/g2"

note "2: 2 ranks x batch 8 = 1 rank x batch 16 (BN in eval mode)"
# lr 0.01: at a larger rate these few steps (BN on its initial running statistics,
# gradient norms in the hundreds, clipped) amplify the rounding of the sums.
A="$T/net.nao --data $T/fm --eval-batch 50 --epochs 1 --val-size 40 --log-interval 1 --progress off --quiet --bn-eval --max-steps 6 --lr 0.01"
mpirun_np 2 "$NT" $A --batch 8 --out "$T/s2" || fail "2 ranks, batch 8"
"$NT" $A --batch 16 --out "$T/s1" --threads 1 || fail "1 rank, batch 16"
"$NT" $A --batch 8 --out "$T/s1b" --threads 1 || fail "1 rank, batch 8"
$ST "$T/s2/checkpoint.safetensors" "$T/s1/checkpoint.safetensors" --tol 1e-4 || fail "2 x 8 and 1 x 16 took different steps"
$ST "$T/s1b/checkpoint.safetensors" "$T/s1/checkpoint.safetensors" --min-diff 1e-2 || fail "the negative control (1 x 8) is as close"
$PYTHON - "$T/s2/log.jsonl" "$T/s1/log.jsonl" <<'PY' || fail "losses or evaluation differ"
import json, sys
def recs(p, ev): return [r for r in map(json.loads, open(p)) if r["event"] == ev]
a, b = sys.argv[1:3]
for ta, tb in zip(recs(a, "train"), recs(b, "train")):
    assert abs(ta["loss"] - tb["loss"]) <= 1e-5 * abs(tb["loss"]), (ta, tb)
    assert ta["top1"] == tb["top1"] and ta["images_per_sec"] > 0, (ta, tb)
assert len(recs(a, "train")) == 6
for ea, eb in zip(recs(a, "eval"), recs(b, "eval")):
    assert ea["images"] == eb["images"] and ea["split"] == eb["split"], (ea, eb)
    assert abs(ea["loss"] - eb["loss"]) <= 1e-4 * abs(eb["loss"]) and ea["top1"] == eb["top1"], (ea, eb)
d = recs(a, "distributed")[0]
assert d["world"] == 2 and d["global_batch"] == 16 and d["launcher"] == "mpirun", d
print("steps and evaluation agree; distributed record:", d["rule"])
PY

note "3: only rank 0 writes (a working folder per rank)"
mkdir -p "$T/w0" "$T/w1"
mpirun_np 2 sh -c 'cd "$0/w$OMPI_COMM_WORLD_RANK" && exec "$@"' "$T" "$NTA" $A --batch 8 --out run || fail "run with a folder per rank"
[ -f "$T/w0/run/checkpoint.safetensors" ] && [ -f "$T/w0/run/log.jsonl" ] || fail "rank 0 wrote no checkpoint or log"
[ -z "$(ls -A "$T/w1")" ] || { ls -R "$T/w1"; fail "rank 1 wrote files"; }
[ "$(json_field "$T/w0/run/log.jsonl" checkpoint path | wc -l)" -ge 1 ] || fail "no checkpoint record"
[ "$(grep -c '"event":"start"' "$T/w0/run/log.jsonl")" -eq 1 ] || fail "the log holds more than one start record"

note "4: resume on 2 ranks"
R="$T/net_drop.nao --data $T/fm --batch 8 --eval-batch 50 --epochs 2 --val-size 40 --log-interval 1 --progress off --quiet"
mpirun_np 2 "$NT" $R --out "$T/ra" || fail "straight run"
mpirun_np 2 "$NT" $R --out "$T/rb" --max-steps 9 || fail "run stopped at step 9"
[ "$(json_field "$T/rb/log.jsonl" checkpoint step | tail -n 1)" = 9 ] || fail "no checkpoint at step 9"
expect_fail 1 "was written by a run of 2 processes, this one has 1" "$NT" "$T/net_drop.nao" --out "$T/rb" --resume --max-steps 0 --progress off
mpirun_np 2 "$NT" "$T/net_drop.nao" --out "$T/rb" --resume --max-steps 0 --progress off --quiet || fail "resume on 2 ranks"
"$STC" "$T/ra/checkpoint.safetensors" "$T/rb/checkpoint.safetensors" || fail "the resumed run differs from the straight one"

# wait_steps LOG N PID: until LOG has N train records (or 60 s).
wait_steps() {
  i=0
  until [ -f "$1" ] && [ "$(grep -c '"event":"train"' "$1")" -ge "$2" ]; do
    i=$((i + 1)); [ $i -lt 600 ] || { kill -9 "$3"; fail "no $2 steps in 60 s"; }
    sleep 0.1
  done
}
F="$T/net.nao --data $T/fm --batch 8 --eval-batch 50 --epochs 20 --val-size 40 --log-interval 1 --progress off --quiet --checkpoint-steps 2"

note "5a: a rank killed mid-run"
mpirun_np 2 sh -c 'echo $$ >"$0/pid$OMPI_COMM_WORLD_RANK"; exec "$@"' "$T" "$NTA" $F --out "$T/k" --dist-timeout 20 >"$T/kout" 2>&1 &
job=$!
wait_steps "$T/k/log.jsonl" 5 $job
start=$(date +%s)
kill -9 "$(cat "$T/pid1")"
wait $job
rc=$?
t=$(elapsed_since "$start")
[ $rc -ne 0 ] || fail "the job exited 0 after a rank was killed"
grep -q "process rank 1 .*exited on signal 9" "$T/kout" || { cat "$T/kout"; fail "the killed rank is not named"; }
[ "$t" -lt 20 ] || fail "the job took $t s to end after the kill"
note "the job ended $t s after the kill; resume from its checkpoint"
mpirun_np 2 "$NT" "$T/net.nao" --out "$T/k" --resume --max-steps "$(( $(json_field "$T/k/log.jsonl" checkpoint step | tail -n 1) + 2 ))" --progress off --quiet ||
  fail "the checkpoint left by the killed job does not resume"

note "5b: a rank that hangs"
mpirun_np 2 sh -c 'echo $$ >"$0/pid$OMPI_COMM_WORLD_RANK"; exec "$@"' "$T" "$NTA" $F --out "$T/h" --dist-timeout 3 >"$T/hout" 2>&1 &
job=$!
wait_steps "$T/h/log.jsonl" 3 $job
start=$(date +%s)
kill -STOP "$(cat "$T/pid1")"
wait $job
rc=$?
t=$(elapsed_since "$start")
[ $rc -ne 0 ] || fail "the job exited 0 with a hung rank"
# Stopped between collectives, rank 1 never arrives; stopped inside one, it
# arrived and then fell silent (its arrival repeats stop): either way, named.
grep -Eq "rank 0: .*did not complete within 3 s: (rank 1 \(last reached #[0-9]+\) did not reach it|rank 1 \(silent for [0-9.]+ s\) reached it and stopped responding)" "$T/hout" ||
  { cat "$T/hout"; fail "the hung rank is not named"; }
[ "$t" -lt 30 ] || fail "the job took $t s to end (timeout 3 s)"
note "rank 0 named the hung rank and the job ended $t s after the stop"
echo ok
