"""Speed of the C controller against a PyTorch model of the same controller.

Both train the reference's controller (NAO-SPEC 1c defaults: vocabulary 12, 40 tokens,
widths 96/48/200) on 600 random nao-small architectures with random targets, batch 100,
swap augmentation on the fly, Adam with weight decay, clipping 5, for --epochs epochs; then
time one generation step (the inference step on 100 architectures at lambda 1).

PyTorch side: tests/py/ctl_torch.py, run the way the reference runs its controller
(nn.LSTM encoder; a Python loop over the decoder's 40 steps; a Dataset that swaps per
sample and a DataLoader that shuffles and collates), torch.set_num_threads(2),
OMP_WAIT_POLICY=PASSIVE unless set (see below).
C side: build/tests/tools/ctl_tool bench with 2 threads (OpenBLAS sgemm).

Reports wall time and process CPU time (both, because the machine may be shared), the
ratio, and the FLOPs of an epoch (counted for the reference's computation, with dense input
projections) over the measured time.

usage: /usr/bin/python3 bench/ctl_speed.py [--epochs 100] [--build build] [--skip-torch]
"""
import argparse
import json
import os
import subprocess
import sys
import time

# libgomp's threads spin while they wait by default; on a machine shared with other work
# that collapses PyTorch's speed (measured: 12 s instead of 1.2 s per batch at load 8), so
# they sleep instead unless the caller says otherwise. Must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "py"))
from ctl_torch import Controller, nao_small_mask, swap_augment  # noqa: E402


class SwapDataset(torch.utils.data.Dataset):
    """Like the reference's NAODataset with swap=True: a fresh swap at every fetch."""

    def __init__(self, seqs, targets):
        self.seqs, self.targets = seqs, targets

    def __len__(self):
        return len(self.seqs)

    def __getitem__(self, i):
        s = swap_augment(self.seqs[i], np.random.randint(0, 5), np.random.randint(0, 5))
        return torch.LongTensor(s), torch.FloatTensor([self.targets[i]])


def random_arch(rng):
    s = []
    for _ in range(2):
        for b in range(5):
            s += [rng.randint(0, b + 2) + 1, rng.randint(0, 5) + 7, rng.randint(0, b + 2) + 1, rng.randint(0, 5) + 7]
    return s


def epoch_flops(n=600, batch=100, H=96, V=12, L=40, T=20, M=200, layers=3):
    """2 x multiply-adds of one epoch, forward x 3 (backward = 2 x forward), the reference's way."""
    total = 0
    for start in range(0, n, batch):
        b = min(batch, n - start)
        enc = T * b * (H * 4 * H * 2)
        mlp = b * (H * M + (layers - 1) * M * M + M)
        dec = L * b * (H * 4 * H * 2 + H * H + 2 * T * H + 2 * H * H + H * V)
        total += 2 * 3 * (enc + mlp + dec)
    return total


def bench_torch(epochs):
    torch.set_num_threads(2)
    torch.manual_seed(0)
    np.random.seed(0)
    rng = np.random.RandomState(0)
    seqs = [random_arch(rng) for _ in range(600)]
    targets = rng.rand(600).tolist()
    model = Controller()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    loader = torch.utils.data.DataLoader(SwapDataset(seqs, targets), batch_size=100, shuffle=True)
    allowed = nao_small_mask()
    model.train()

    def run(n):
        for _ in range(n):
            for x, y in loader:
                opt.zero_grad()
                out = model.loss(x, y.squeeze(1), allowed=allowed)
                out["loss"].backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                opt.step()
        return out["loss"].item()

    run(1)  # warm-up
    w0, c0 = time.time(), time.process_time()
    loss = run(epochs)
    train_wall, train_cpu = time.time() - w0, time.process_time() - c0
    model.eval()
    x = torch.LongTensor(seqs[:100])
    model.generate(x, 1.0, allowed)
    reps = 5
    w0 = time.time()
    for _ in range(reps):
        model.generate(x, 1.0, allowed)
    gen = (time.time() - w0) / reps
    return {"impl": "pytorch %s" % torch.__version__, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "threads": torch.get_num_threads(), "epochs": epochs, "train_s": train_wall,
            "train_cpu_s": train_cpu, "epoch_s": train_wall / epochs, "generate_s": gen, "final_loss": loss}


def bench_c(build, epochs):
    tool = os.path.join(build, "tests", "tools", "ctl_tool")
    out = subprocess.run([tool, "bench", "--archs", "600", "--batch", "100", "--epochs", str(epochs), "--threads", "2"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--build", default=os.environ.get("BUILD", "build"))
    ap.add_argument("--skip-torch", action="store_true")
    a = ap.parse_args()
    flops = epoch_flops()
    print("load average before: %s" % " ".join(open("/proc/loadavg").read().split()[:3]), flush=True)
    c = bench_c(a.build, a.epochs)
    print("C:       %d epochs in %.2f s wall (%.2f s CPU): %.4f s/epoch, %.1f GFLOP/s; generation step %.4f s"
          % (a.epochs, c["train_s"], c.get("train_cpu_s", float("nan")), c["epoch_s"], flops / c["epoch_s"] / 1e9,
             c["generate_s"]), flush=True)
    if a.skip_torch:
        return
    t = bench_torch(a.epochs)
    print("PyTorch: %d epochs in %.2f s wall (%.2f s CPU): %.4f s/epoch, %.1f GFLOP/s; generation step %.4f s"
          % (a.epochs, t["train_s"], t["train_cpu_s"], t["epoch_s"], flops / t["epoch_s"] / 1e9, t["generate_s"]))
    print("epoch FLOPs (reference computation): %.2f GFLOP" % (flops / 1e9))
    print("speed-up: training %.2fx (wall), %.2fx (CPU); generation %.2fx"
          % (t["train_s"] / c["train_s"], t["train_cpu_s"] / c.get("train_cpu_s", float("nan")),
             t["generate_s"] / c["generate_s"]))
    print("load average after: %s" % " ".join(open("/proc/loadavg").read().split()[:3]))
    print(json.dumps({"c": c, "torch": t, "epoch_gflop": flops / 1e9}))


if __name__ == "__main__":
    main()
