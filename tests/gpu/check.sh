#!/bin/sh
# tests/gpu/check.sh — the GPU check: one command for one call of the device
# tool (docs/cuda-runtime.md, "The GPU check"), under 8 minutes.
#
#   tests/gpu/check.sh [--dry-run] [--budget SECONDS] [--out DIR] [--no-torch]
#
# Stages, each with its own time limit inside a global budget (default 450 s),
# each reporting ok / failed / timeout and the script going on where it can:
#   env       machine, commit, tools
#   locate    CUDA, cuDNN, cuBLAS, NVRTC, NCCL: the toolkit's folders and the
#             Python wheels' site-packages/nvidia/*/lib (found with python3),
#             put on LD_LIBRARY_PATH
#   smi       nvidia-smi
#   build     make -j16 of the two programs the check needs; when the machine
#             cannot build naoc (no bison, flex or OpenBLAS there), the
#             prebuilt copies carried in .gpu-prebuilt/gpu-tools.tar.gz
#             (tests/gpu/prebuild.sh) are used
#   check-*   NAONet-A (CIFAR and ImageNet settings) and NAONet-B: one
#             training step on the cuda backend against the cpu backend, every
#             stored tensor (each kernel's output), the loss, every gradient,
#             the updated weights, the evaluation logits (cuda_check), TF32 off
#             and a bound of 1e-4; NAONet-A ImageNet again with arena reuse as
#             in training (outputs, gradients, update); then with TF32 on under a
#             looser bound (2e-2: TF32 keeps 10 mantissa bits), informational
#             (reported, not counted in the exit status)
#   bench-*   training images/s of NAONet-A, ImageNet setting (F=42, N=4, aux,
#             224x224, batch 128) and CIFAR setting (F=36, N=6, batch 128):
#             ours (cuda_bench: NVRTC cold and cached compile times, peak
#             memory, the floor from measured copy bandwidth and SGEMM rate),
#             PyTorch eager (cudnn.benchmark, channels_last) and torch.compile
#             (bench/gpu_torch.py), skipped with a note when PyTorch is missing
# It ends with a table. Everything goes to $OUT (the device tool's output
# folder; else ./gpu-out, or --out): check.log (all output), summary.txt
# (KEY=VALUE), table.txt. The kernel cache lives in /tmp (not in $OUT).
#
# --dry-run (CI, tests/e2e/gpu_check_dryrun.sh): the same script on the mock
# device, tests/gpu/tiny.nao, the build tree of this checkout, small sizes.
set -u

dry=0
budget=450
notorch=0
out=${OUT:-}
while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) dry=1 ;;
    --budget) budget=${2:?--budget needs seconds}; shift ;;
    --out) out=${2:?--out needs a folder}; shift ;;
    --no-torch) notorch=1 ;;
    -h|--help) sed -n '2,40p' "$0"; exit 0 ;;
    *) echo "check.sh: unknown option $1 (--help)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$out" ] || out=./gpu-out
mkdir -p "$out" || { echo "check.sh: cannot create $out" >&2; exit 1; }
out=$(cd "$out" && pwd)
log=$out/check.log
summary=$out/summary.txt
table=$out/table.txt
: >"$log"
: >"$summary"
start=$(date +%s)
reserve=15                       # seconds kept for the table at the end
PY=${PYTHON:-python3}
kcache=${TMPDIR:-/tmp}/naoc-gpu-kcache

elapsed() { echo $(($(date +%s) - start)); }
say() { echo "$*"; echo "$*" >>"$log"; }
put() { echo "$1=$2" >>"$summary"; }

# run NAME LIMIT CMD...: CMD under a time limit (cut to what the budget has
# left), its output appended to the log; one status line on stdout; the
# status as stage_NAME in the summary. Returns CMD's status.
run() {
  name=$1
  limit=$2
  shift 2
  left=$((budget - $(elapsed) - reserve))
  if [ "$left" -lt 20 ]; then
    put "stage_$name" "skipped"
    printf '%-26s %-24s\n' "$name" "skipped (time budget)"
    return 99
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  {
    echo
    echo "=========== $name (limit ${limit}s, at $(elapsed)s): $*"
  } >>"$log"
  t0=$(date +%s)
  timeout -k 10 "$limit" "$@" >"$out/.stage" 2>&1
  rc=$?
  cat "$out/.stage" >>"$log"
  case $rc in
    0) st=ok ;;
    124|137) st="timeout (${limit}s)" ;;
    *) st="failed ($rc)" ;;
  esac
  put "stage_$name" "$st"
  printf '%-26s %-24s %4ss\n' "$name" "$st" "$(($(date +%s) - t0))"
  return $rc
}

# The lines of the last stage that matter, indented, on stdout.
show() {
  grep -E "$1" "$out/.stage" | sed 's/^/    /' | head -n "${2:-12}"
}

# ---------------------------------------------------------------- env
say "naoc GPU check $(date -u '+%Y-%m-%d %H:%M:%S UTC')$( [ $dry = 1 ] && echo ' (dry run: mock device)')"
commit=$(git rev-parse --short HEAD 2>/dev/null || true)
[ -n "$commit" ] || commit=$(cat .gpu-prebuilt/COMMIT 2>/dev/null || echo unknown)
put commit "$commit"
say "commit $commit; $(uname -srm); $(nproc 2>/dev/null || echo '?') CPUs"

# ---------------------------------------------------------------- locate
find_libs() {
  dirs=$(timeout 30 "$PY" - <<'EOF' 2>/dev/null
import glob, os, site, sys
roots = set(p for p in sys.path if p.endswith(("site-packages", "dist-packages")))
try:
    roots.update(site.getsitepackages())
    roots.add(site.getusersitepackages())
except Exception:
    pass
found = []
for r in sorted(roots):
    for d in sorted(glob.glob(os.path.join(r, "nvidia", "*", "lib"))):
        found.append(d)
print(":".join(found))
EOF
)
  for d in /usr/local/cuda/lib64 /usr/local/nvidia/lib64; do
    [ -d "$d" ] && dirs="$dirs${dirs:+:}$d"
  done
  echo "$dirs"
}
libdirs=$(find_libs)
if [ -n "$libdirs" ]; then
  LD_LIBRARY_PATH="$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export LD_LIBRARY_PATH
fi
locate_report() {
  echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
  for lib in libcuda.so.1 libnvrtc.so.13 libnvrtc.so.12 libcudnn.so.9 libcublas.so.13 libcublas.so.12 libnccl.so.2; do
    where=""
    oldifs=$IFS
    IFS=:
    for d in ${LD_LIBRARY_PATH:-}; do
      [ -e "$d/$lib" ] && { where="$d/$lib"; break; }
    done
    IFS=$oldifs
    [ -n "$where" ] || where=$(ldconfig -p 2>/dev/null | awk -v l="$lib" '$1 == l { print $NF; exit }')
    echo "$lib: ${where:-not found}"
  done
  timeout 60 "$PY" -c 'import torch; print("python3: torch", torch.__version__, "CUDA", torch.version.cuda, "GPU", torch.cuda.is_available())' 2>&1 | tail -1
}
# (a shell function: no time limit around it, its commands have theirs)
echo "=========== locate" >>"$log"
locate_report >"$out/.stage" 2>&1
cat "$out/.stage" >>"$log"
put stage_locate ok
printf '%-26s %-24s\n' locate ok
show "^lib|torch" 10
if grep -q "^python3: torch" "$out/.stage"; then havetorch=1; else havetorch=0; fi
[ "$notorch" = 1 ] && havetorch=0

# ---------------------------------------------------------------- smi
if [ "$dry" = 0 ]; then
  run smi 30 nvidia-smi && show "H200|H100|NVIDIA|MiB" 4
fi

# ---------------------------------------------------------------- build
B=${BUILD:-build}
[ "$dry" = 0 ] && B=${BUILD:-build-gpu}
jobs=16
[ "$dry" = 1 ] && jobs=2
bin=""
# What a build of naoc needs; when it is missing, go straight to the prebuilt
# programs (NAOC_CHECK_PREBUILT=1 forces them).
can_build() {
  [ "${NAOC_CHECK_PREBUILT:-0}" = 1 ] && return 1
  for t in make cc bison flex; do command -v "$t" >/dev/null 2>&1 || return 1; done
  blas=$(pkg-config --cflags openblas 2>/dev/null)
  for h in cblas.h jpeglib.h png.h zlib.h; do
    # shellcheck disable=SC2086
    echo "#include <$h>" | cc -E $blas - >/dev/null 2>&1 || return 1
  done
}
if can_build && run build 240 make -j"$jobs" BUILD="$B" "$B/tests/tools/cuda_check" "$B/tests/tools/cuda_bench"; then
  bin=$B/tests/tools
elif [ -f .gpu-prebuilt/gpu-tools.tar.gz ]; then
  can_build || say "    this machine cannot build naoc (or NAOC_CHECK_PREBUILT=1)"
  show "rror" 6
  pre=${TMPDIR:-/tmp}/naoc-gpu-tools
  mkdir -p "$pre" && tar -xzf .gpu-prebuilt/gpu-tools.tar.gz -C "$pre" && bin=$pre
  say "    using the prebuilt programs of .gpu-prebuilt ($(cat .gpu-prebuilt/COMMIT 2>/dev/null || echo '?'))"
else
  show "rror" 6
  say "    no programs: the build failed and .gpu-prebuilt/gpu-tools.tar.gz is absent (tests/gpu/prebuild.sh)"
fi
put bin "${bin:-none}"

# ---------------------------------------------------------------- checks
mock=""
[ "$dry" = 1 ] && mock="--mock"
check() {  # LABEL NET BATCH [--info] [extra cuda_check options]
  label=$1
  net=$2
  batch=$3
  shift 3
  kind=check  # --info: reported, not counted (exit status)
  if [ "${1:-}" = --info ]; then kind=info; shift; fi
  if [ -z "$bin" ]; then put "${kind}_$label" "not run"; return; fi
  # shellcheck disable=SC2086
  run "check-$label" 150 "$bin/cuda_check" $mock --net "$net" --batch "$batch" --cache "$kcache" "$@"
  rc=$?
  show "^(device|kernels|batch|loss|forward|gradients|SGD|evaluation|  first|PASS|FAIL|CANNOT)" 14
  case $rc in
    0) put "${kind}_$label" PASS ;;
    99) put "${kind}_$label" skipped ;;
    124|137) put "${kind}_$label" timeout ;;
    3) put "${kind}_$label" "cannot run" ;;
    *) put "${kind}_$label" FAIL ;;
  esac
  worst=$(grep -E "^gradients " "$out/.stage" | sed 's/.*worst \([^ ]*\).*/\1/')
  [ -n "$worst" ] && put "${kind}_${label}_worst_gradient" "$worst"
}
if [ "$dry" = 1 ]; then
  check tiny tests/gpu/tiny.nao 4
else
  check a-cifar generated/naonet-a-cifar10.nao 8
  check a-imagenet generated/naonet-a-imagenet.nao 8
  check b-cifar generated/naonet-b-cifar10.nao 8
  check a-imagenet-reuse generated/naonet-a-imagenet.nao 8 --reuse
  check a-imagenet-tf32 generated/naonet-a-imagenet.nao 8 --info --tf32 --tol 2e-2
fi

# ---------------------------------------------------------------- benchmarks
bench_ours() {  # LABEL NET [options]
  label=$1
  net=$2
  shift 2
  if [ -z "$bin" ]; then return; fi
  # shellcheck disable=SC2086
  run "bench-ours-$label" 200 "$bin/cuda_bench" $mock --net "$net" --cache "$kcache" \
    --label "ours_$label" --out "$summary" "$@"
  show "images/s|NVRTC|floor|device:|warm-up|kernels" 10
}
bench_torch() {  # LABEL MODE NET DATASET CHANNELS LAYERS AUX DROPPATH DROPOUT SMOOTHING [options]
  label=$1
  mode=$2
  net=$3
  if [ "$havetorch" = 0 ]; then
    put "torch_${mode}_${label}_note" "no PyTorch"
    return
  fi
  if [ -z "$bin" ]; then return; fi
  arch=$("$bin/cuda_bench" --net "$net" --print-seq 2>>"$log")
  if [ -z "$arch" ]; then
    put "torch_${mode}_${label}_note" "no arch"
    return
  fi
  shift 3
  dataset=$1 channels=$2 layers=$3 aux=$4 dp=$5 dk=$6 sm=$7
  shift 7
  lim=150
  [ "$mode" = compile ] && lim=240
  run "bench-torch-$mode-$label" "$lim" env PYTHONUNBUFFERED=1 "$PY" bench/gpu_torch.py \
    --arch "$arch" --dataset "$dataset" --channels "$channels" --layers "$layers" --aux "$aux" \
    --drop-path-keep "$dp" --dropout-keep "$dk" --smoothing "$sm" --mode "$mode" \
    --label "torch_${mode}_$label" --out "$summary" "$@"
  show "images/s|first step|skipped|not available" 4
}
if [ "$dry" = 1 ]; then
  bench_ours tiny tests/gpu/tiny.nao --batch 2 --steps 1 --warmup 2 --gemm 64 --copy-mib 4
  bench_torch tiny eager tests/gpu/tiny.nao cifar10 4 1 0.4 0.8 0.6 0 --dry-run
  bench_torch tiny compile tests/gpu/tiny.nao cifar10 4 1 0.4 0.8 0.6 0 --dry-run
  settings="tiny"
else
  bench_ours imagenet generated/naonet-a-imagenet.nao --batch 128 --steps 20 --warmup 3 --cold
  bench_torch imagenet eager generated/naonet-a-imagenet.nao imagenet 42 4 0.4 1 1 0.1 --batch 128
  bench_torch imagenet compile generated/naonet-a-imagenet.nao imagenet 42 4 0.4 1 1 0.1 --batch 128
  bench_ours cifar generated/naonet-a-cifar10.nao --batch 128 --steps 20 --warmup 3
  bench_torch cifar eager generated/naonet-a-cifar10.nao cifar10 36 6 0.4 0.8 0.6 0 --batch 128
  bench_torch cifar compile generated/naonet-a-cifar10.nao cifar10 36 6 0.4 0.8 0.6 0 --batch 128
  settings="imagenet cifar"
fi

# ---------------------------------------------------------------- table
get() { awk -F= -v k="$1" '$1 == k { v = substr($0, length(k) + 2) } END { print v }' "$summary"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else printf "-" }'; }
or_dash() { if [ -n "$1" ]; then echo "$1"; else echo "-"; fi; }
{
  echo
  echo "naoc GPU check, commit $commit, $(date -u '+%Y-%m-%d'), $(elapsed) s"
  echo
  echo "correctness (cuda vs cpu backend, one training step)"
  grep -E '^check_[^=]*=' "$summary" | grep -v _worst_ | sed 's/^check_/  /; s/=/: /'
  grep -E '^(check|info)_[^=]*_worst_gradient=' "$summary" | sed 's/^/  /; s/=/: /'
  grep -E '^info_[^=]*=' "$summary" | grep -v _worst_ | sed 's/^info_/  (informational) /; s/=/: /'
  echo
  printf '%-9s %9s %9s %9s %7s %7s %9s %22s\n' setting "ours" "eager" "compile" "/eager" "/compile" "floor" "peak GiB ours/e/c"
  for s in $settings; do
    o=$(get "ours_${s}_images_per_s")
    e=$(get "torch_eager_${s}_images_per_s")
    c=$(get "torch_compile_${s}_images_per_s")
    f=$(get "ours_${s}_floor_images_per_s")
    po=$(get "ours_${s}_peak_gib")
    pe=$(get "torch_eager_${s}_peak_gib")
    pc=$(get "torch_compile_${s}_peak_gib")
    printf '%-9s %9s %9s %9s %7s %7s %9s %22s\n' "$s" "$(or_dash "$o")" "$(or_dash "$e")" "$(or_dash "$c")" \
      "$(ratio "$o" "$e")" "$(ratio "$o" "$c")" "$(or_dash "$f")" "$(or_dash "$po")/$(or_dash "$pe")/$(or_dash "$pc")"
  done
  echo "(images/s of training; floor = the step's FLOPs and bytes over the measured SGEMM rate and copy bandwidth)"
  for s in $settings; do
    cold=$(get "ours_${s}_nvrtc_cold_s")
    cached=$(get "ours_${s}_nvrtc_cached_s")
    [ -n "$cold$cached" ] && echo "NVRTC $s: cold $(or_dash "$cold") s, cached $(or_dash "$cached") s"
  done
  notes=$(grep -E '_note=' "$summary" | sed 's/^/  /')
  [ -n "$notes" ] && printf 'notes:\n%s\n' "$notes"
  echo "stages: $(grep -c '^stage_.*=ok' "$summary") ok of $(grep -c '^stage_' "$summary"); log: $log"
} >"$table"
cat "$table"
cat "$table" >>"$log"
rm -f "$out/.stage"
if grep -qE '^check_[^=]*=(FAIL|cannot run)' "$summary"; then exit 1; fi
exit 0
