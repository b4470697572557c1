"""bench/gpu_torch.py — the PyTorch peer of naoc's GPU benchmark (tests/gpu/check.sh).

Trains the network of tests/py/naonet_ref.py (the verified PyTorch model of
NAO's networks) on a synthetic batch resident in device memory, the way the
reference trains it: the loss with the auxiliary head (label smoothing for
ImageNet), backward, clip_grad_norm_(5), SGD with momentum and weight decay.
Modes:
  eager    torch.backends.cudnn.benchmark = True, model and input in
           channels_last; PyTorch's default precision (TF32 allowed for
           convolutions, not for matmuls)
  compile  the same under torch.compile (default mode); its compile time is
           reported apart and excluded from the rate
Output: readable lines, and LABEL_KEY=VALUE lines appended to --out.
--dry-run: a tiny network on the CPU for one step (CI checks this script).
"""

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "py"))
import naonet_ref  # noqa: E402  (the path above)


def parse():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", required=True, help="token sequence (naoc --emit seq)")
    p.add_argument("--dataset", default="cifar10", choices=sorted(naonet_ref.PRESETS))
    p.add_argument("--channels", type=int, default=36)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--aux", type=float, default=0.4, help="auxiliary loss weight, 0: no head")
    p.add_argument("--drop-path-keep", type=float, default=0.8)
    p.add_argument("--dropout-keep", type=float, default=0.6)
    p.add_argument("--smoothing", type=float, default=0.0)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--mode", choices=["eager", "compile"], default="eager")
    p.add_argument("--device", default="cuda")
    p.add_argument("--label", default="torch")
    p.add_argument("--out", default=None, help="append LABEL_KEY=VALUE lines here")
    p.add_argument("--dry-run", action="store_true", help="a tiny network on the CPU, one step")
    return p.parse_args()


def emit(args, key, value):
    line = "%s_%s=%s" % (args.label, key, value)
    if args.out:
        with open(args.out, "a") as f:
            f.write(line + "\n")


def main():
    args = parse()
    if args.dry_run:
        args.device, args.batch, args.steps, args.warmup = "cpu", 2, 1, 1
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    if cuda and not torch.cuda.is_available():
        print("%s: CUDA is not available to PyTorch %s" % (args.label, torch.__version__))
        emit(args, "note", "no-cuda")
        return 3
    if args.mode == "compile" and not hasattr(torch, "compile"):
        print("%s: torch.compile needs PyTorch 2 (this is %s): skipped" % (args.label, torch.__version__))
        emit(args, "note", "no-torch.compile")
        return 0
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    model = naonet_ref.NAONet(args.arch, args.channels, args.layers, dataset=args.dataset,
                              aux_weight=args.aux, keep_prob=args.dropout_keep,
                              drop_path_keep=args.drop_path_keep, steps=1000000)
    model = model.to(dev).to(memory_format=torch.channels_last).train()
    c, h, w, classes, _ = naonet_ref.PRESETS[args.dataset]
    x = torch.randn(args.batch, c, h, w, device=dev).to(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (args.batch,), device=dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9,
                          weight_decay=3e-5 if args.dataset == "imagenet" else 3e-4)
    params = [p for p in model.parameters()]
    fwd = torch.compile(model) if args.mode == "compile" else model

    def step(i):
        # A fixed step for the drop-path schedule: under torch.compile a
        # changing keep probability would recompile every step. The masks are
        # still drawn anew each step; the cost of a step does not depend on it.
        del i
        logits, aux = fwd(x, 0)
        loss = naonet_ref.nao_loss(logits, aux, y, args.aux, args.smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        return loss

    def sync():
        if cuda:
            torch.cuda.synchronize()

    print("%s: PyTorch %s, %s, mode %s, cudnn.benchmark, channels_last; TF32: convolutions %s, "
          "matmul %s" % (args.label, torch.__version__,
                         torch.cuda.get_device_name(dev) if cuda else "CPU", args.mode,
                         torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32))
    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.time()
    loss = step(0)  # the first step compiles (torch.compile) and searches (cudnn.benchmark)
    sync()
    first = time.time() - t0
    for i in range(1, args.warmup):
        loss = step(i)
    sync()
    print("%s: first step %.1f s, %d warm-up steps, loss %.4f" % (args.label, first, args.warmup,
                                                                   float(loss)))
    if cuda:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
    t0 = time.time()
    for i in range(args.steps):
        step(args.warmup + i)
    if cuda:
        end.record()
        torch.cuda.synchronize()
        ms = start.elapsed_time(end) / args.steps
    else:
        ms = (time.time() - t0) * 1e3 / args.steps
    ips = args.batch / (ms * 1e-3)
    peak = torch.cuda.max_memory_allocated(dev) / 2**30 if cuda else 0.0
    reserved = torch.cuda.max_memory_reserved(dev) / 2**30 if cuda else 0.0
    print("%s: %.2f ms per step of %d images: %.1f images/s; peak memory %.2f GiB allocated, "
          "%.2f GiB reserved" % (args.label, ms, args.batch, ips, peak, reserved))
    emit(args, "ms_per_step", "%.3f" % ms)
    emit(args, "images_per_s", "%.1f" % ips)
    emit(args, "peak_gib", "%.3f" % peak)
    emit(args, "reserved_gib", "%.3f" % reserved)
    emit(args, "first_step_s", "%.1f" % first)
    return 0


if __name__ == "__main__":
    sys.exit(main())
