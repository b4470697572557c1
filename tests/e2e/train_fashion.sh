#!/bin/sh
# tests/e2e/train_fashion.sh — nao-train learns real Fashion-MNIST.
#
# The first 6,500 training and 1,000 test images of Debian's Fashion-MNIST
# (real images and labels, the real idx reader, crop and flip augmentation),
# 500 of them held out for validation: one epoch (94 steps of 64) of a tiny
# NAO network (F=4, N=1, two nodes a cell, 5.6k parameters) at lr 0.1.
# Asserted: the training loss of the last logging interval is below 60% of the
# first interval's (measured: 1.62-1.72 falling to 0.79-0.83, three seeds),
# and the test top-1 beats 40%, four times chance (measured 52-69% after 125
# steps on three seeds; the network is far from trained, so the margin is
# wide on purpose: the test is that it learns, not how well).
. tests/e2e/common.inc
[ -f "$FMNIST/train-images-idx3-ubyte.gz" ] || fail "no Fashion-MNIST in $FMNIST (make deps installs dataset-fashion-mnist)"
tiny_net "$T/net.nao" 0 1 1
fmnist_subset "$T/fm" 6500 1000
$NT "$T/net.nao" --data "$T/fm" --out "$T/r" --epochs 1 --batch 64 --lr 0.1 --val-size 500 \
  --log-interval 15 --threads 2 --progress off 2>"$T/err" || { cat "$T/err"; fail "training"; }
cat "$T/err"
"$PYTHON" - "$T/r/log.jsonl" <<'PY' || fail "it did not learn"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
loss = [r["loss"] for r in recs if r["event"] == "train"]
test = [r for r in recs if r["event"] == "eval" and r["split"] == "test"][-1]
print("training loss by interval:", " ".join("%.3f" % l for l in loss))
print("test top-1 %.4f top-5 %.4f on %d images" % (test["top1"], test["top5"], test["images"]))
assert test["images"] == 1000
assert loss[-1] < 0.6 * loss[0], "the loss did not fall enough"
assert test["top1"] > 0.40, "test top-1 at most 40%"
PY
