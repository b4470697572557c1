#!/bin/sh
# bench/cpu_step.sh — one training step of NAONet-A (CIFAR-10 backbone, F=16,
# N=2, batch 64, no auxiliary head, no drop-path, dropout keep 0.6) on the CPU
# backend against PyTorch on the same number of threads.
#
#   bench/cpu_step.sh [-r REPS] [-t THREADS] [-s STEPS] [-w WARMUP] [-c wall|cpu] [-p]
#
# Runs tests/tools/cpu_step_bench (ours, NAO_THREADS=THREADS) and
# bench/cpu_step_torch.py (Debian's PyTorch, torch.set_num_threads(THREADS))
# alternately, REPS times each (default 7), each run timing STEPS steps
# (default 10) after WARMUP (default 2). Every run is under /usr/bin/time -v:
# its maximum resident set size is the process's peak memory. Prints one line
# per run, then the medians over runs of each run's median step time and of
# the peak memory, and the ratios ours / PyTorch. With -c cpu the step times
# are process CPU time (all threads) instead of wall-clock time. The load
# average is printed before and after: on a shared machine wall-clock figures
# move with it. -p runs PyTorch with OMP_WAIT_POLICY=PASSIVE: its OpenMP
# threads then sleep at barriers instead of spinning, which is what keeps it
# usable when the machine is busier than its thread count (on a loaded 2-CPU
# machine a default 2-thread step took 22-30 s, a passive one 4.5 s); on a
# quiet machine spinning is PyTorch's faster default.
set -eu

reps=7 threads=2 steps=10 warmup=2 clock=wall passive=0
while getopts r:t:s:w:c:p opt; do
  case $opt in
    r) reps=$OPTARG ;;
    t) threads=$OPTARG ;;
    s) steps=$OPTARG ;;
    w) warmup=$OPTARG ;;
    c) clock=$OPTARG ;;
    p) passive=1 ;;
    *) echo "usage: bench/cpu_step.sh [-r REPS] [-t THREADS] [-s STEPS] [-w WARMUP] [-c wall|cpu] [-p]" >&2
       exit 2 ;;
  esac
done

here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build}
ours="$here/$build/tests/tools/cpu_step_bench"
torch_py="$here/bench/cpu_step_torch.py"
python=${PYTHON:-/usr/bin/python3}
[ -x "$ours" ] || { echo "cpu_step.sh: $ours is missing: run make $build/tests/tools/cpu_step_bench" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "cpu_step.sh: /usr/bin/time is missing (Debian package time)" >&2; exit 1; }
"$python" -c 'import torch' 2>/dev/null || { echo "cpu_step.sh: $python has no torch (python3-torch)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# run NAME COMMAND...: appends "NAME median_ms max_rss_kib" to $tmp/runs.
run() {
  name=$1
  shift
  if ! /usr/bin/time -v -o "$tmp/time" "$@" >"$tmp/out" 2>"$tmp/err"; then
    echo "cpu_step.sh: $name failed:" >&2
    cat "$tmp/err" >&2
    exit 1
  fi
  ms=$(awk '/^median_ms/ {print $2}' "$tmp/out")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tmp/time")
  echo "$name $ms $rss" >>"$tmp/runs"
  printf '%-8s median step %9.1f ms   peak RSS %8d KiB\n' "$name" "$ms" "$rss"
}

omp_env=""
[ "$passive" = 1 ] && omp_env="OMP_WAIT_POLICY=PASSIVE"
echo "NAONet-A, CIFAR-10 backbone F=16 N=2, batch 64, $threads thread(s), $reps runs each of $steps steps after $warmup ($clock clock)${omp_env:+, PyTorch with $omp_env}"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$reps"); do
  run ours env NAO_THREADS="$threads" "$ours" --threads "$threads" --steps "$steps" \
    --warmup "$warmup" --clock "$clock" --quiet
  run pytorch env $omp_env "$python" "$torch_py" --threads "$threads" --steps "$steps" \
    --warmup "$warmup" --clock "$clock" --quiet
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

"$python" - "$tmp/runs" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
ms = {k: [float(r[1]) for r in rows if r[0] == k] for k in ("ours", "pytorch")}
rss = {k: [int(r[2]) for r in rows if r[0] == k] for k in ("ours", "pytorch")}
mo, mt = statistics.median(ms["ours"]), statistics.median(ms["pytorch"])
ro, rt = statistics.median(rss["ours"]), statistics.median(rss["pytorch"])
print()
print("| | ours | PyTorch | ours / PyTorch |")
print("| --- | --- | --- | --- |")
print("| median step time (ms) | %.1f | %.1f | %.3f |" % (mo, mt, mo / mt))
print("| peak memory, max RSS (MiB) | %.1f | %.1f | %.3f |" % (ro / 1024, rt / 1024, ro / rt))
print("step times (ms), ours: %s" % " ".join("%.1f" % v for v in ms["ours"]))
print("step times (ms), PyTorch: %s" % " ".join("%.1f" % v for v in ms["pytorch"]))
EOF
