#!/bin/sh
# tools/demo.sh — `make demo`: NAO end to end on Fashion-MNIST.
#
#   1. nao-search: a weight-sharing (NAO-WS) search on Fashion-MNIST, small
#      enough for a 2-core machine: a supernet trained by the runtime, the
#      pool scored on held-out training images, the controller trained and
#      asked for better architectures, a few rounds;
#   2. naoc on the best architecture: net.cu, statistics, a PNG of its cells;
#   3. nao-train of it, then its test accuracy.
#
# Everything goes to $DEMO_OUT (default demo-out/). Run again, it continues
# what an interrupted run left (nao-search --resume, nao-train --resume) and
# redoes nothing finished. On a machine with an NVIDIA GPU (nvidia-smi sees
# one) the training runs on it (--backend cuda); DEMO_BACKEND=cpu|cuda forces
# a choice; the search stays on the CPU (the ws evaluator has not run on a GPU
# yet). DEMO_FAST=1: a one-minute version (tiny search, 60 training steps).
# The settings of a full search: README.md, docs/search.md.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=${DEMO_OUT:-demo-out}
DATA=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
FAST=${DEMO_FAST:-0}

say() { printf '\n== %s\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

for p in naoc nao-search nao-train; do
  [ -x "$BUILD/$p" ] || die "$BUILD/$p is not built (run make)"
done
[ -f "$DATA/train-images-idx3-ubyte.gz" ] ||
  die "no Fashion-MNIST in $DATA (Debian: apt-get install dataset-fashion-mnist; or set FASHION_MNIST=DIR)"

backend=${DEMO_BACKEND:-}
if [ -z "$backend" ]; then
  backend=cpu
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
    backend=cuda
  fi
fi

# The backbone of the written architectures and of the final training: the
# demo network's (generated/naonet-fashion-mnist.nao: F=8, N=1, no auxiliary
# head, no drop-path or dropout).
BACKBONE="--dataset fashion-mnist --channels 8 --layers 1"
if [ "$FAST" = 1 ]; then
  SEARCH="--seed-archs 8 --new-archs 4 --rounds 1 --controller-epochs 20 --ws-epochs 1 --ws-train-images 1024 --ws-lr 0.1 --ws-eval-images 256"
  TRAIN="--epochs 1 --max-steps 60"
else
  # About 4 minutes on 2 idle cores (docs/search.md, "A CPU demo setting"),
  # scoring 500 held-out images an architecture, as the reference does.
  SEARCH="--seed-archs 24 --new-archs 8 --rounds 2 --controller-epochs 300 --ws-epochs 3 --ws-train-images 6400 --ws-lr 0.1 --ws-lr-min 0.005 --ws-eval-images 500"
  TRAIN=""
fi
mkdir -p "$OUT"
start=$(date +%s)

say "1/3 nao-search: weight-sharing NAO on Fashion-MNIST -> $OUT/search"
resume=""
[ -f "$OUT/search/config" ] && resume="--resume"
# shellcheck disable=SC2086
"$BUILD/nao-search" --evaluator ws --space nao-small $BACKBONE --data "$DATA" $SEARCH \
  --out "$OUT/search" $resume
best=$OUT/search/top/rank-1.nao
[ -f "$best" ] || die "the search wrote no $best"
echo "best architecture: $best"

say "2/3 naoc: compile the best architecture"
seq=$("$BUILD/naoc" --emit seq "$best")
# shellcheck disable=SC2086
"$BUILD/naoc" --from-seq "$seq" $BACKBONE --aux 0 --drop-path 1 --dropout 1 \
  --name demo_best -o "$OUT/best.nao"
echo "network:    $OUT/best.nao"
"$BUILD/naoc" "$OUT/best.nao" -o "$OUT/best.cu"
echo "CUDA C:     $OUT/best.cu"
"$BUILD/naoc" --emit stats "$OUT/best.nao" -o "$OUT/best-stats.json"
echo "statistics: $OUT/best-stats.json"
if command -v dot >/dev/null 2>&1; then
  "$BUILD/naoc" --emit dot "$OUT/best.nao" | dot -Tpng -Gdpi=80 -o "$OUT/best-cells.png"
  echo "cells:      $OUT/best-cells.png"
else
  "$BUILD/naoc" --emit dot "$OUT/best.nao" -o "$OUT/best-cells.dot"
  echo "cells:      $OUT/best-cells.dot (graphviz's dot is not installed: no PNG)"
fi

say "3/3 nao-train: train it ($backend) -> $OUT/train"
if [ -f "$OUT/train/result.json" ]; then
  echo "already trained ($OUT/train/result.json)"
else
  resume=""
  [ -f "$OUT/train/checkpoint.safetensors" ] && resume="--resume"
  # shellcheck disable=SC2086
  "$BUILD/nao-train" "$OUT/best.nao" --data "$DATA" --backend "$backend" --out "$OUT/train" \
    $TRAIN $resume
fi

test_top1=$(sed -n 's/.*"test_top1":\([0-9.e+-]*\).*/\1/p' "$OUT/train/result.json")
secs=$(($(date +%s) - start))
say "done in $((secs / 60)) min $((secs % 60)) s"
echo "search:        $OUT/search (summary.json, log.jsonl, round-*/, top/)"
echo "best network:  $OUT/best.nao, $OUT/best.cu"
echo "training:      $OUT/train (log.jsonl, best.safetensors, result.json)"
awk -v a="$test_top1" 'BEGIN { printf "test top-1:    %.2f%% (Fashion-MNIST test set, 10,000 images)\n", 100 * a }'
