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
echo ok
