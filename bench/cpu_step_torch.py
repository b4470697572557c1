#!/usr/bin/python3
"""bench/cpu_step_torch.py — PyTorch's peer of tests/tools/cpu_step_bench.c.

One training step of the same network: NAONet-A cells with the CIFAR-10
backbone (F=16, N=2 by default), batch 64 of 32x32x3, no auxiliary head, no
drop-path, dropout keep 0.6; forward, label cross-entropy, backward,
clip_grad_norm_(5), SGD (lr 0.025, momentum 0.9, weight decay 3e-4), as the
reference's train loop does it. The model is tests/py/naonet_ref.py, the
verified PyTorch model of the reference networks (its parity with our lowering
is tested in make test).

  /usr/bin/python3 bench/cpu_step_torch.py [--threads T] [--steps S] [--warmup W]
      [--channels F] [--layers N] [--batch B] [--dropout-keep K] [--clock wall|cpu]

Prints the same lines as cpu_step_bench: "step K ms M loss L" per timed step,
then median_ms, min_ms, max_rss_kb (getrusage of this process) and
base_rss_kb (the RSS once torch is imported and the model and batch exist,
before the first step: what the step itself adds is max_rss_kb - base_rss_kb).
"""

import argparse
import os
import resource
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "py"))

import torch  # noqa: E402

import naonet_ref  # noqa: E402

NAONET_A = "0 7 1 15 2 8 1 7 0 6 1 7 0 8 4 7 1 5 0 7 0 7 1 13 0 6 0 14 0 9 1 10 0 14 2 6 1 11 0 7"


def rss_kb():
    """Current resident set size in KiB (from /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default=NAONET_A)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--dropout-keep", type=float, default=0.6)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = naonet_ref.NAONet(a.arch, a.channels, a.layers, dataset="cifar10", aux_weight=0.0,
                              keep_prob=a.dropout_keep, drop_path_keep=1.0)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(a.batch, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (a.batch,), generator=g)
    clock = time.process_time if a.clock == "cpu" else time.perf_counter

    def step(t):
        opt.zero_grad()
        logits, aux = model(x, t)
        loss = naonet_ref.nao_loss(logits, aux, y, 0.0)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        return loss.item()

    base = rss_kb()
    for t in range(a.warmup):
        step(t)
    times = []
    for t in range(a.warmup, a.warmup + a.steps):
        t0 = clock()
        loss = step(t)
        ms = (clock() - t0) * 1e3
        times.append(ms)
        if not a.quiet:
            print("step %d ms %.3f loss %.6f" % (t, ms, loss))
    n_params = sum(p.numel() for p in model.parameters())
    print("threads %d batch %d params %d torch %s" % (torch.get_num_threads(), a.batch, n_params,
                                                     torch.__version__))
    print("median_ms %.3f" % statistics.median(times))
    print("min_ms %.3f" % min(times))
    print("base_rss_kb %d" % base)
    print("max_rss_kb %d" % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


if __name__ == "__main__":
    main()
