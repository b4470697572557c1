#!/bin/sh
# tests/e2e/train_resume.sh — a resumed run continues bit for bit.
#
# On a real Fashion-MNIST subset (crop and flip augmentation, a validation
# split) with a network whose training draws drop-path and dropout masks and
# has an auxiliary head:
#   a: 2 epochs straight (2 threads);
#   b: the same run stopped by --max-steps at the end of epoch 1, then resumed
#      with 1 thread for epoch 2;
#   c: the same run stopped by SIGINT in the middle of epoch 1 (exit 130, a
#      checkpoint at that batch), then resumed;
# b's and c's final checkpoints must equal a's byte for byte: parameters, BN
# statistics and momentum buffers.
. tests/e2e/common.inc
tiny_net "$T/net.nao"
fmnist_subset "$T/fm" 600 200
ARGS="--data $T/fm --batch 32 --eval-batch 100 --epochs 2 --val-size 100 --log-interval 1 --progress off --quiet"
# 500 training images: 16 batches an epoch (the last one of 20).

note "a: two epochs straight"
$NT "$T/net.nao" $ARGS --out "$T/a" --threads 2 || fail "run a"
[ "$(json_field "$T/a/log.jsonl" train step | tail -n 1)" = 32 ] || fail "run a did not take 32 steps"

note "b: stop at step 16 (--max-steps), resume on 1 thread"
$NT "$T/net.nao" $ARGS --out "$T/b" --threads 2 --max-steps 16 || fail "run b, part 1"
[ "$(json_field "$T/b/log.jsonl" checkpoint step | tail -n 1)" = 16 ] || fail "b stopped at step 16 without its checkpoint"
$NT "$T/net.nao" --out "$T/b" --resume --max-steps 0 --threads 1 --progress off --quiet || fail "run b, resume"
$STC "$T/a/checkpoint.safetensors" "$T/b/checkpoint.safetensors" || fail "b differs from a"

note "c: SIGINT in the middle of epoch 1, resume"
$NT "$T/net.nao" $ARGS --out "$T/c" --threads 2 &
pid=$!
i=0
until [ -f "$T/c/log.jsonl" ] && [ "$(json_field "$T/c/log.jsonl" train step | wc -l)" -ge 3 ]; do
  i=$((i + 1))
  [ $i -lt 600 ] || { kill -9 $pid; fail "run c took no 3 steps in 60 s"; }
  sleep 0.1
done
kill -INT $pid
wait $pid
rc=$?
[ $rc -eq 130 ] || fail "run c exited $rc after SIGINT, expected 130"
batch=$(json_field "$T/c/log.jsonl" checkpoint batch | tail -n 1)
reason=$(json_field "$T/c/log.jsonl" checkpoint reason | tail -n 1)
[ "$reason" = "stop requested" ] || fail "no checkpoint on SIGINT (last: $reason)"
[ "$batch" -gt 0 ] && [ "$batch" -lt 16 ] || fail "SIGINT landed at batch $batch, not within epoch 1"
note "c stopped at batch $batch of epoch 1"
$NT "$T/net.nao" --out "$T/c" --resume --threads 2 --progress off --quiet || fail "run c, resume"
$STC "$T/a/checkpoint.safetensors" "$T/c/checkpoint.safetensors" || fail "c differs from a"
echo "resume: bit-identical"
