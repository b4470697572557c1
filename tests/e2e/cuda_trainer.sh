#!/bin/sh
# tests/e2e/cuda_trainer.sh — generated trainers (make trainer, naoc --trainer;
# docs/cuda-runtime.md):
#  - naoc FILE --trainer -o OUT builds OUT and OUT.cu; make trainer finds the
#    .nao from net.cu's header (generated/);
#  - with --backend cpu a trainer trains exactly as nao-train on the same
#    network and options (the logs' losses are identical);
#  - with --backend cuda and no GPU it exits 1 naming the missing driver;
#  - a trainer whose .nao is not net.cu's network, or a recipe that changes
#    the training graph, is refused with --backend cuda (before any device
#    work) and says why; a network file argument is refused (exit 2).
set -u
BUILD=${BUILD:-build}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/naoc-trainer.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() { echo "cuda_trainer: $*" >&2; exit 1; }
"$BUILD/naoc" tests/gpu/tiny.nao --trainer -o "$tmp/tiny" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "naoc --trainer"; }
[ -x "$tmp/tiny" ] || fail "naoc --trainer made no trainer"
[ -s "$tmp/tiny.cu" ] || fail "naoc --trainer wrote no net.cu"
make --no-print-directory BUILD="$BUILD" trainer NET=generated/naonet-fashion-mnist.cu TRAINER="$tmp/fm" \
  >"$tmp/make.log" 2>&1 || { cat "$tmp/make.log"; fail "make trainer (NAO from the header)"; }
grep -q "network naonet-fashion-mnist.nao" "$tmp/make.log" || fail "make trainer found another .nao"
# cpu: the same run as nao-train's
opts="--recipe cifar10 --data synthetic --synthetic-size 16,8 --batch 4 --eval-batch 4 --epochs 1 --max-steps 3 --val-size 4 --threads 2 --quiet --progress off"
# shellcheck disable=SC2086
"$tmp/tiny" $opts --out "$tmp/a" || fail "the trainer (cpu) failed"
# shellcheck disable=SC2086
"$BUILD/nao-train" tests/gpu/tiny.nao $opts --out "$tmp/b" || fail "nao-train failed"
losses() { grep -o '"loss":[^,}]*' "$1/log.jsonl"; }
[ -n "$(losses "$tmp/a")" ] || fail "no losses in the trainer's log"
[ "$(losses "$tmp/a")" = "$(losses "$tmp/b")" ] || fail "the trainer and nao-train train differently"
# expect RC PATTERN LABEL: the last command's status and message
expect() {
  if [ "$rc" != "$1" ] || ! grep -q "$2" "$tmp/err"; then
    cat "$tmp/err"
    fail "$3: exit $rc"
  fi
}
# cuda without a GPU driver: a clear message, exit 1
# shellcheck disable=SC2086
NAOC_CUDA_LIB=/nonexistent/libcuda.so.1 "$tmp/tiny" $opts --backend cuda --out "$tmp/c" 2>"$tmp/err"
rc=$?
expect 1 "the CUDA driver (libcuda)" "--backend cuda without a driver"
# a .nao that is not net.cu's network
make --no-print-directory BUILD="$BUILD" trainer NET="$tmp/tiny.cu" NAO=generated/naonet-fashion-mnist.nao \
  TRAINER="$tmp/bad" >"$tmp/make2.log" 2>&1 || fail "make trainer (mismatched)"
"$tmp/bad" --data synthetic --synthetic-size 16,8 --batch 4 --val-size 4 --max-steps 1 --quiet --backend cuda \
  --out "$tmp/d" 2>"$tmp/err"
rc=$?
expect 1 "do not have the same parameters" "a trainer whose .nao is not net.cu's network"
# a recipe that changes the training graph
# shellcheck disable=SC2086
"$tmp/tiny" $opts --drop-path-keep 0.5 --backend cuda --out "$tmp/e" 2>"$tmp/err"
rc=$?
expect 1 "another training graph" "a recipe that changes the training graph"
"$tmp/tiny" tests/gpu/tiny.nao --data synthetic 2>"$tmp/err"
rc=$?
expect 2 "network built in" "a network file argument"
echo "cuda_trainer: ok"
