#!/bin/sh
# tests/e2e/train_cli.sh — nao-train and nao-run as commands: a short run on
# --data synthetic (log records and their fields, checkpoints, --eval-only,
# --init-weights, the cuda switch), and clear refusals with the documented exit
# codes for bad options, data, run folders and checkpoints.
. tests/e2e/common.inc
tiny_net "$T/net.nao"
RUN="--data synthetic --synthetic-size 192,64 --batch 32 --eval-batch 64 --val-size 64 --epochs 2 --lr 0.05 --log-interval 2 --progress off"

note "a synthetic run"
$NT "$T/net.nao" $RUN --out "$T/r" --threads 2 2>"$T/err" || { cat "$T/err"; fail "synthetic run"; }
grep -q "epoch 2/2: train loss" "$T/err" || fail "no per-epoch line on stderr"
"$PYTHON" - "$T/r/log.jsonl" <<'PY' || fail "log.jsonl"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
ev = [r["event"] for r in recs]
assert ev[0] == "start" and ev[-1] == "end", ev
train = [r for r in recs if r["event"] == "train"]
assert [r["step"] for r in train] == [2, 4, 6, 8], [r["step"] for r in train]
for r in train:
    for k in ("step", "epoch", "loss", "lr", "images_per_sec", "top1", "grad_norm", "time"):
        assert k in r, (k, r)
    assert r["images_per_sec"] > 0 and r["loss"] > 0
assert [r["epoch"] for r in train] == [0, 0, 1, 1]
# cosine 0.05 -> 0 over 2 epochs: epoch 1 at half
assert train[0]["lr"] == 0.05 and abs(train[2]["lr"] - 0.025) < 1e-12, train
evals = [(r["split"], r["epoch"]) for r in recs if r["event"] == "eval"]
assert evals == [("valid", 0), ("test", 0), ("valid", 1), ("test", 1)], evals
for r in recs:
    if r["event"] == "eval":
        assert r["images"] == 64 and 0 <= r["top1"] <= r["top5"] <= 1, r
end = recs[-1]
assert end["reason"] == "done" and end["step"] == 8, end
PY
[ -f "$T/r/checkpoint.safetensors" ] && [ -f "$T/r/best.safetensors" ] || fail "no checkpoint or best"

note "the progress line (forced on: stderr is no terminal here)"
$NT "$T/net.nao" $RUN --out "$T/p" --epochs 1 --progress on 2>"$T/err" || fail "--progress on"
tr '\r' '\n' <"$T/err" | grep -q "^epoch 1/1  step 4/4 (100%)  [0-9]* img/s  loss [0-9.]*  acc [0-9.]*%  lr 0.05  ETA 0s" ||
  { cat -v "$T/err"; fail "no progress line"; }

note "--eval-only scores a checkpoint"
$NT "$T/net.nao" --eval-only --weights "$T/r/checkpoint.safetensors" --data synthetic \
  --synthetic-size 192,64 --val-size 64 --eval-batch 64 >"$T/scores" 2>"$T/err" || fail "--eval-only"
want=$(json_field "$T/r/log.jsonl" eval top1 test | tail -n 1)
got=$("$PYTHON" -c 'import json,sys; print([json.loads(l)["top1"] for l in open(sys.argv[1]) if "test" in l][0])' "$T/scores")
"$PYTHON" -c "import sys; sys.exit(abs($want - $got) > 1e-9)" || fail "--eval-only test top-1 $got, the run logged $want"

note "--init-weights starts from given weights"
$NT "$T/net.nao" $RUN --out "$T/i" --init-weights "$T/r/checkpoint.safetensors" --epochs 1 --lr 0 \
  --weight-decay 0 --progress off --quiet || fail "--init-weights"
# lr 0: the weights stay those given (BN statistics move in training)
$STC "$T/r/checkpoint.safetensors" "$T/i/checkpoint.safetensors" --prefix cells.0.ops.0.x_op.op.1 >/dev/null ||
  fail "--init-weights with lr 0 changed the weights"

note "refusals"
# (the cuda backend without its driver; NAOC_CUDA_LIB makes that so on any machine)
expect_fail 1 "--backend cuda: the CUDA driver (libcuda)" env NAOC_CUDA_LIB=/nonexistent/libcuda.so.1 \
  $NT "$T/net.nao" $RUN --out "$T/c" --backend cuda
expect_fail 2 "--backend: accepted values are cpu and cuda" $NT "$T/net.nao" --backend tpu
expect_fail 2 "--lr: 'fast' is not a number" $NT "$T/net.nao" $RUN --lr fast
expect_fail 2 "--schedule: 'linear' is not a schedule (cosine, exp or const)" $NT "$T/net.nao" $RUN --schedule linear
expect_fail 2 "--momentum: 2 is out of range" $NT "$T/net.nao" $RUN --momentum 2
expect_fail 2 "unknown option '--learning-rate'" $NT "$T/net.nao" $RUN --learning-rate 0.1 --out "$T/u"
expect_fail 2 "--recipe: 'mnist' is not a recipe" $NT "$T/net.nao" --recipe mnist
expect_fail 2 "no network file" $NT --epochs 3
expect_fail 1 "already holds a run" $NT "$T/net.nao" $RUN --out "$T/r"
expect_fail 1 "nothing to resume" $NT "$T/net.nao" --out "$T/empty" --resume
expect_fail 1 "$T/nowhere" $NT "$T/net.nao" --data "$T/nowhere" --out "$T/d"
expect_fail 2 "--data: the cifar10 dataset needs its folder" $NT "$T/net.nao" --dataset cifar10 --out "$T/d2"
expect_fail 1 "gives 1x28x28 images, the network takes 3x32x32" $NT generated/naonet-a-cifar10.nao \
  --data "$FMNIST" --dataset fashion-mnist --out "$T/d3"
printf 'network x {\n  channels 4\n}\n' >"$T/bad.nao"
expect_fail 1 "bad.nao:2:13: error: expected ';'" $NT "$T/bad.nao" --data synthetic

note "checkpoints of other networks are refused"
sed 's/channels 4;/channels 6;/' "$T/net.nao" >"$T/wide.nao"
expect_fail 1 "tensor 'stem.0.weight': shape is [12, 1, 3, 3], expected [18, 1, 3, 3]" $NT "$T/wide.nao" \
  --eval-only --weights "$T/r/checkpoint.safetensors" --data synthetic
expect_fail 1 "tensor 'stem.0.weight': shape is [12, 1, 3, 3], expected [18, 1, 3, 3]" $NT "$T/wide.nao" $RUN \
  --out "$T/w" --init-weights "$T/r/checkpoint.safetensors"
cp -r "$T/r" "$T/r2"
expect_fail 1 "checkpoint of another network: settings" $NT "$T/wide.nao" --out "$T/r2" --resume
"$PYTHON" -c 'import sys; sys.path.insert(0, "tests/py"); import st_io, numpy as np; st_io.write(sys.argv[1], {"input": np.zeros((2, 1, 28, 28), np.float32)})' "$T/x.safetensors"
expect_fail 1 "tensor 'stem.0.weight': shape is [12, 1, 3, 3], expected [18, 1, 3, 3]" \
  $NR "$T/wide.nao" --weights "$T/r/checkpoint.safetensors" --input "$T/x.safetensors" -o "$T/o.safetensors"
$NR "$T/net.nao" --weights "$T/r/checkpoint.safetensors" --input "$T/x.safetensors" -o "$T/o.safetensors" ||
  fail "nao-run on the run's checkpoint"
expect_fail 1 "tensor 'input' must be F32 (N, 1, 28, 28)" \
  $NR "$T/net.nao" --weights "$T/r/checkpoint.safetensors" --input "$T/r/checkpoint.safetensors" -o "$T/o.safetensors"
expect_fail 1 "--grad needs a tensor 'labels'" \
  $NR "$T/net.nao" --grad --weights "$T/r/checkpoint.safetensors" --input "$T/x.safetensors" -o "$T/o.safetensors"
expect_fail 2 "--weights, --input and -o are required" $NR "$T/net.nao" --input "$T/x.safetensors"
echo "cli: ok"
