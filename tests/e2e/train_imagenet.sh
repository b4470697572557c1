#!/bin/sh
# tests/e2e/train_imagenet.sh — nao-train trains generated/naonet-a-imagenet.nao
# (F=42, N=4, auxiliary head, 224x224, 1000 classes, as the file says) on an
# ImageNet-format folder on the CPU for two steps: the folder reader, JPEG and
# PNG decoding by content, the reference's augmentation and the full network,
# end to end.
#
# The folder is generated (tests/tools/make_imagenet_folder): train/ has the
# 1000 class folders the network needs, one small JPEG each, plus the odd
# files of the real ImageNet (a PNG named .JPEG, a CMYK JPEG, grayscale,
# progressive, RGBA PNG, a nested folder) and unreadable ones (truncated,
# empty, text, BMP) that must be skipped; val/ has 3 classes of one image
# (evaluating 1000 images at 224x224 would cost a minute). Asserted: two
# training steps with finite losses, both evaluations over the images given
# and a checkpoint.
. tests/e2e/common.inc
MK=$BUILD/tests/tools/make_imagenet_folder
"$MK" "$T/in" --classes 1000 --train 1 --val 0 --size 80x60 --odd >/dev/null || fail "make_imagenet_folder"
"$MK" "$T/v" --classes 3 --train 0 --val 1 --size 80x60 >/dev/null || fail "make_imagenet_folder (val)"
rm -rf "$T/in/val" && mv "$T/v/val" "$T/in/val"

note "two steps of NAONet-A (ImageNet) at batch 2"
$NT generated/naonet-a-imagenet.nao --dataset imagenet --data "$T/in" --out "$T/r" --epochs 1 --batch 2 \
  --eval-batch 3 --val-size 2 --max-steps 2 --log-interval 1 --threads 2 --workers 2 --progress off \
  2>"$T/err" || { cat "$T/err"; fail "training"; }
cat "$T/err"
[ -f "$T/r/checkpoint.safetensors" ] || fail "no checkpoint"
"$PYTHON" - "$T/r/log.jsonl" <<'PY' || fail "log.jsonl"
import json, math, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
start = recs[0]
assert start["event"] == "start" and start["network"]["classes"] == 1000, start["network"]
assert start["network"]["input"] == [3, 224, 224], start["network"]
train = [r for r in recs if r["event"] == "train"]
assert [r["step"] for r in train] == [1, 2], train
# Cross-entropy over 1000 classes plus 0.4 x the auxiliary head's: finite and positive.
assert all(math.isfinite(r["loss"]) and r["loss"] > 0 for r in train), train
ev = {r["split"]: r for r in recs if r["event"] == "eval"}
assert ev["valid"]["images"] == 2 and ev["test"]["images"] == 3, ev
assert recs[-1]["event"] == "end" and recs[-1]["reason"] == "max_steps", recs[-1]
print("losses", [round(r["loss"], 3) for r in train], "- test images", ev["test"]["images"])
PY
echo ok
