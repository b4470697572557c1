# tests/e2e/dist_launch.sh — the local launcher of nao-train --gpus
# (runtime/launch.h) with CPU-only children (tests/tools/launch_worker.c): the
# environment each rank gets, exit statuses, a rank that dies or is killed
# (named, the others stopped), a rank that hangs (named within the timeout),
# and signals: forwarded exactly once, a terminal's Ctrl-C (SIGINT to the
# whole process group) included, a second one kills.
set -u
BUILD=${BUILD:-build}
L=$BUILD/tests/tools/launch_check
W=$(pwd)/$BUILD/tests/tools/launch_worker
out=$(mktemp -d "${TMPDIR:-/tmp}/dist-launch.XXXXXX")
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# Environment: ranks 0..2 of 3, the parent's NCCL id intact, the timeout, a heartbeat pipe.
"$L" --nccl-id --timeout 7 3 "$W" env >"$out/env" 2>&1 || { cat "$out/env"; fail "env run"; }
for r in 0 1 2; do
  grep -q "^rank $r of 3, local $r of 3, launch nao-train --gpus, nccl id yes 0b30..66 sum 2988693568, timeout 7, fd yes" "$out/env" ||
    { cat "$out/env"; fail "rank $r's environment"; }
done

"$L" 3 "$W" steps 10 >"$out/ok" 2>&1 || { cat "$out/ok"; fail "a clean run"; }
grep -q "launch: status 0 failed_rank -1" "$out/ok" || fail "a clean run's result"

# A rank exits with status 3: the launcher names it and exits 3; the others are stopped.
start=$(date +%s)
"$L" 3 "$W" steps 3000 die 1 10 >"$out/die" 2>&1
rc=$?
[ $rc -eq 3 ] || { cat "$out/die"; fail "a dying rank: status $rc, not 3"; }
grep -q "rank 1 (pid [0-9]*) exited with status 3; stopping the other ranks" "$out/die" || { cat "$out/die"; fail "a dying rank: not named"; }
[ $(( $(date +%s) - start )) -lt 20 ] || fail "a dying rank: the others were not stopped"

# SIGKILL: named with the signal, status 137.
"$L" 3 "$W" steps 3000 kill 2 10 >"$out/kill" 2>&1
rc=$?
[ $rc -eq 137 ] || { cat "$out/kill"; fail "a killed rank: status $rc"; }
grep -q "rank 2 (pid [0-9]*) was killed by signal 9" "$out/kill" || { cat "$out/kill"; fail "a killed rank: not named"; }

# A rank stops sending heartbeats while the others go on: named after the 1 s timeout, status 70.
start=$(date +%s)
"$L" --timeout 1 3 "$W" steps 3000 hang 0 10 >"$out/hang" 2>&1
rc=$?
t=$(( $(date +%s) - start ))
[ $rc -eq 70 ] || { cat "$out/hang"; fail "a hung rank: status $rc"; }
grep -q "rank 0 (pid [0-9]*) made no progress for 1 s: it has not reached collective #10" "$out/hang" || { cat "$out/hang"; fail "a hung rank: not named"; }
[ $t -lt 15 ] || fail "a hung rank: took $t s"

# Ctrl-C: SIGINT to the launcher's whole process group reaches each child once
# (through the launcher): every child exits 130 (launch_worker exits 99 on a second signal).
setsid "$L" 3 "$W" signal >"$out/int" 2>&1 &
pid=$!
sleep 1
/bin/kill -s INT -- -"$pid"
wait $pid
rc=$?
[ $rc -eq 130 ] || { cat "$out/int"; fail "SIGINT: status $rc, not 130"; }
grep -q "launch: status 130 failed_rank -1" "$out/int" || { cat "$out/int"; fail "SIGINT: a child saw the signal twice or failed"; }

# SIGTERM to the launcher alone: forwarded, status 143.
"$L" 2 "$W" signal >"$out/term" 2>&1 &
pid=$!
sleep 1
kill -TERM "$pid"
wait $pid
rc=$?
[ $rc -eq 143 ] || { cat "$out/term"; fail "SIGTERM: status $rc"; }

# A child that ignores the forwarded signal: a second signal to the launcher kills it.
"$L" 2 "$W" steps 3000 deaf 1 5 >"$out/two" 2>&1 &
pid=$!
sleep 1
kill -TERM "$pid"; sleep 0.5; kill -TERM "$pid"
wait $pid
rc=$?
[ $rc -eq 137 ] || { cat "$out/two"; fail "two signals: status $rc, not 137"; }
grep -q "rank 1 (pid [0-9]*) was killed by signal 9" "$out/two" || { cat "$out/two"; fail "two signals: rank 1 not named"; }
# nao-train --gpus 2 itself on a machine without a GPU: the parent makes
# NCCL's unique id and starts two ranks, which fail to open the CUDA driver;
# the launcher names the first rank that failed and exits with its status.
# (Without libnccl the parent refuses first, naming NCCL.)
NT=$BUILD/nao-train
cat >"$out/net.nao" <<'NET'
network t { dataset fashion-mnist; channels 4; layers 1; aux_weight 0; }
cell normal { node 2 = sep3x3(0) + identity(1); node 3 = max3x3(2) + identity(0); }
cell reduction { node 2 = sep3x3(0) + identity(1); node 3 = max2x2(2) + avg2x2(1); }
NET
"$NT" "$out/net.nao" --data synthetic --val-size 100 --backend cuda --gpus 2 --epochs 1 --out "$out/g" --progress off >"$out/gpus" 2>&1
rc=$?
[ $rc -eq 1 ] || { cat "$out/gpus"; fail "nao-train --gpus 2 without a GPU: status $rc, not 1"; }
if grep -q "NCCL 2 (libnccl)" "$out/gpus"; then
  echo "no libnccl: the launcher refused before starting ranks"
else
  grep -q "nao-train: rank [01] (pid [0-9]*) exited with status 1; stopping the other ranks" "$out/gpus" ||
    { cat "$out/gpus"; fail "nao-train --gpus 2: the failed rank is not named"; }
  [ "$(grep -c 'the CUDA driver' "$out/gpus")" -ge 1 ] || { cat "$out/gpus"; fail "no rank said why"; }
fi
"$NT" "$out/net.nao" --data synthetic --backend cpu --gpus 2 --out "$out/c" --progress off >"$out/cpu" 2>&1
[ $? -eq 2 ] && grep -q "needs --backend cuda (for several CPU processes run nao-train under mpirun -np N)" "$out/cpu" ||
  { cat "$out/cpu"; fail "--gpus 2 with the cpu backend is not refused as bad usage"; }
echo ok
