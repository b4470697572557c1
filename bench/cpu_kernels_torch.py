#!/usr/bin/python3
"""bench/cpu_kernels_torch.py — PyTorch's times for the shapes of
tests/tools/cpu_kernels_bench.c, the peer of the CPU backend's kernels.

    /usr/bin/python3 bench/cpu_kernels_torch.py [--threads N] [--batch N] [--reps N]
                                                [--clock wall|cpu]

Convolutions: forward, backward data (grad_input) and backward filter
(grad_weight), each timed alone through torch.ops.aten.convolution_backward
(output_mask), best of --reps, in ms. Then the other kernels' forward and
backward. Run it right after the C bench: timings on a shared machine are noisy.
"""
import argparse
import time

import torch
import torch.nn.functional as F

CONVS = [  # name, ci, h, w, co, kh, kw, sh, sw, pt, pl, pb, pr, groups (as the C bench)
    ("stem 3x3 3->48 @32", 3, 32, 32, 48, 3, 3, 1, 1, 1, 1, 1, 1, 1),
    ("1x1 48->16 @32", 48, 32, 32, 16, 1, 1, 1, 1, 0, 0, 0, 0, 1),
    ("3x3 16 @32", 16, 32, 32, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1),
    ("1x3 16 @32", 16, 32, 32, 16, 1, 3, 1, 1, 0, 1, 0, 1, 1),
    ("3x1 16 @32", 16, 32, 32, 16, 3, 1, 1, 1, 1, 0, 1, 0, 1),
    ("1x1 16 @32", 16, 32, 32, 16, 1, 1, 1, 1, 0, 0, 0, 0, 1),
    ("3x3 s2 32 @32", 32, 32, 32, 32, 3, 3, 2, 2, 1, 1, 1, 1, 1),
    ("1x7 s(1,2) 32 @32", 32, 32, 32, 32, 1, 7, 1, 2, 0, 3, 0, 3, 1),
    ("7x1 s(2,1) 32 @32x16", 32, 32, 16, 32, 7, 1, 2, 1, 3, 0, 3, 0, 1),
    ("FR 1x1 s2 48->8 @32", 48, 32, 32, 8, 1, 1, 2, 2, 0, 0, 0, 0, 1),
    ("FR 1x1 s2 crop 48->8 @32", 48, 32, 32, 8, 1, 1, 2, 2, -1, -1, 1, 1, 1),
    ("3x3 32 @16", 32, 16, 16, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1),
    ("1x3 32 @16", 32, 16, 16, 32, 1, 3, 1, 1, 0, 1, 0, 1, 1),
    ("1x1 32 @16", 32, 16, 16, 32, 1, 1, 1, 1, 0, 0, 0, 0, 1),
    ("3x3 64 @8", 64, 8, 8, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1),
    ("1x1 64 @8", 64, 8, 8, 64, 1, 1, 1, 1, 0, 0, 0, 0, 1),
    ("dw 3x3 16 @32 (NAONet-B)", 16, 32, 32, 16, 3, 3, 1, 1, 1, 1, 1, 1, 16),
    ("dw 5x5 32 @16 (NAONet-B)", 32, 16, 16, 32, 5, 5, 1, 1, 2, 2, 2, 2, 32),
]


CLOCK = time.perf_counter  # --clock cpu: time.process_time


def best_ms(fn, reps):
    fn()
    t = []
    for _ in range(reps):
        t0 = CLOCK()
        fn()
        t.append((CLOCK() - t0) * 1e3)
    return min(t)  # the run least disturbed by other processes


def bench_conv(c, batch, reps):
    name, ci, h, w, co, kh, kw, sh, sw, pt, pl, pb, pr, g = c
    x = torch.randn(batch, ci, h, w)
    if pt < 0:  # the factorized reduce's path 2: pad right/bottom, drop the first row/column
        x = F.pad(x, (0, pr, 0, pb))[:, :, -pt:, -pl:].contiguous()
        pad = (0, 0)
    else:
        assert pt == pb and pl == pr
        pad = (pt, pl)
    wt = torch.randn(co, ci // g, kh, kw)
    y = F.conv2d(x, wt, None, (sh, sw), pad, 1, g)
    dy = torch.randn_like(y)

    def fwd():
        F.conv2d(x, wt, None, (sh, sw), pad, 1, g)

    def bwd(mask):
        return lambda: torch.ops.aten.convolution_backward(
            dy, x, wt, None, (sh, sw), pad, (1, 1), False, (0, 0), g, mask)

    ms = [best_ms(fwd, reps), best_ms(bwd([True, False, False]), reps),
          best_ms(bwd([False, True, False]), reps)]
    print(f"{name:26s}" + "".join(f" {m:7.2f}" for m in ms))
    return ms


def bench_other(batch, reps):
    x = torch.randn(batch, 16, 32, 32, requires_grad=True)
    dy = torch.randn(batch, 16, 32, 32)
    bn = torch.nn.BatchNorm2d(16)
    cases = [
        ("bn train", lambda: bn(x)),
        ("relu", lambda: F.relu(x)),
        ("add 2", lambda: x + dy),
        ("avg 5x5", lambda: F.avg_pool2d(x, 5, 1, 2, count_include_pad=True)),
        ("max 3x3", lambda: F.max_pool2d(x, 3, 1, 1)),
    ]
    print(f"\nother kernels, 16 channels at 32x32, batch {batch} (ms: forward, backward)")
    for name, f in cases:
        fw = best_ms(lambda: f(), reps)
        def fb():
            y = f()
            y.backward(dy)
        total = best_ms(fb, reps)
        print(f"  {name:14s} {fw:7.3f} {max(total - fw, 0):7.3f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    a = ap.parse_args()
    global CLOCK
    if a.clock == "cpu":
        CLOCK = time.process_time
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    print(f"pytorch {torch.__version__}, {torch.get_num_threads()} threads, batch {a.batch}, "
          f"best of {a.reps} (ms): forward, bwd data, bwd filter")
    total = [0.0, 0.0, 0.0]
    with torch.no_grad():
        for c in CONVS:
            for i, m in enumerate(bench_conv(c, a.batch, a.reps)):
                total[i] += m
    print(f"{'sum':26s}" + "".join(f" {m:7.2f}" for m in total))
    bench_other(a.batch, a.reps)


if __name__ == "__main__":
    main()
