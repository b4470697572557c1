# tests/e2e/lib/mpi.sh — sourced by tests/e2e/dist_*.sh: Open MPI's mpirun set up
# for CI (root allowed, more ranks than cores, no core binding so each rank's
# threads may use any core) and helpers shared by the distributed tests.
# Not a test itself (tests/run.sh runs tests/e2e/*.sh only).
BUILD=${BUILD:-build}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Shared-memory single copy (CMA) is often refused in containers; plain copies work everywhere.
export OMPI_MCA_btl_vader_single_copy_mechanism=none
# Under the sanitizers (make sanitize): Open MPI's own allocations at init and
# exit are not ours (full stacks are needed to see where they come from).
export LSAN_OPTIONS="suppressions=$(pwd)/tests/e2e/lib/lsan-openmpi.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export ASAN_OPTIONS="fast_unwind_on_malloc=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
command -v mpirun >/dev/null 2>&1 || { echo "mpirun not found (Debian: openmpi-bin; make deps installs it)" >&2; exit 1; }

# mpirun_np N COMMAND...: N ranks of COMMAND, never longer than 120 s.
mpirun_np() {
  n=$1; shift
  timeout -k 5 120 mpirun --oversubscribe --bind-to none -np "$n" "$@"
}

fail() { echo "FAIL: $*" >&2; exit 1; }

# elapsed_since START: whole seconds since START (date +%s).
elapsed_since() { echo $(( $(date +%s) - $1 )); }
