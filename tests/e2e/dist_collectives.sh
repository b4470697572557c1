# tests/e2e/dist_collectives.sh — the MPI communicator (runtime/dist_mpi.c) under
# `mpirun -np 2` and -np 3: every collective against values each rank computes
# for all (tests/tools/dist_check.c), then the faults: a rank that hangs makes
# the other fail within the timeout naming it; a rank that dies ends the job
# with mpirun naming it.
set -u
. tests/e2e/lib/mpi.sh
check=$BUILD/tests/tools/dist_check
out=$(mktemp -d "${TMPDIR:-/tmp}/dist-coll.XXXXXX")
trap 'rm -rf "$out"' EXIT

for np in 2 3; do
  mpirun_np $np "$check" collectives >"$out/coll" 2>&1 || { cat "$out/coll"; fail "collectives on $np ranks"; }
  grep -q "^ok: $np ranks, mpi" "$out/coll" || { cat "$out/coll"; fail "collectives on $np ranks: no ok line"; }
done
"$check" collectives >"$out/one" 2>&1 || { cat "$out/one"; fail "collectives in one process"; }
grep -q "^ok: 1 ranks, single" "$out/one" || fail "one process is not 'single'"

# Rank 1 hangs for 60 s: rank 0 must give up after the 2 s timeout, naming rank 1.
start=$(date +%s)
mpirun_np 2 "$check" --timeout 2 hang 1 60 >"$out/hang" 2>&1
rc=$?
t=$(elapsed_since "$start")
[ $rc -ne 0 ] || { cat "$out/hang"; fail "a hung rank: exit status 0"; }
grep -q "rank 0: gradient all-reduce (collective #2): did not complete within 2 s: rank 1 (last reached #1) did not reach it" "$out/hang" ||
  { cat "$out/hang"; fail "a hung rank: no message naming rank 1"; }
[ "$t" -lt 30 ] || fail "a hung rank: the job took $t s (timeout 2 s)"

# Rank 1 exits with status 3 before the all-reduce: the job ends, non-zero, naming it.
start=$(date +%s)
mpirun_np 2 "$check" --timeout 30 die 1 >"$out/die" 2>&1
rc=$?
t=$(elapsed_since "$start")
[ $rc -ne 0 ] || { cat "$out/die"; fail "a dead rank: exit status 0"; }
grep -q "Exit code: *3" "$out/die" && grep -q "Process name: \[\[[0-9]*,[0-9]*\],1\]" "$out/die" ||
  { cat "$out/die"; fail "a dead rank: mpirun does not name rank 1"; }
[ "$t" -lt 30 ] || fail "a dead rank: the job took $t s"

# Rank 0 is killed (SIGKILL): mpirun names it, the other is stopped.
mpirun_np 2 "$check" --timeout 30 die-kill 0 >"$out/kill" 2>&1
rc=$?
[ $rc -ne 0 ] || { cat "$out/kill"; fail "a killed rank: exit status 0"; }
grep -q "process rank 0 .*exited on signal 9" "$out/kill" || { cat "$out/kill"; fail "a killed rank: not named"; }
echo "ok"
