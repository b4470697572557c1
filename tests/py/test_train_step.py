"""tests/py/test_train_step.py — whole training steps of nao-run --sgd (the
optimizer code nao-train runs) against torch.optim.SGD after
torch.nn.utils.clip_grad_norm_, on the PyTorch model of tests/py/naonet_ref.py
(float64: the reference values carry no float32 error of their own).

Two consecutive steps from random weights and BN statistics, in training mode
with the auxiliary head, drop-path and dropout (the masks nao-run drew are fed
to torch), label smoothing:
  step 1: no momentum buffers yet (buf = d), clipping active (the global norm is
          far above the limit);
  step 2: from step 1's state as nao-run wrote it (parameters, BN statistics,
          optimizer.momentum.*), buf = momentum * buf + d, clipping inactive.
Compared per tensor (relative error max|ours - torch| / max|torch| under 1e-4):
the loss, every gradient (before clipping), the global norm, every updated
parameter, every momentum buffer, every running statistic. And exactly, in
float32: new parameter = old - lr * momentum buffer (the change itself is not
compared with torch's: p_new - p_old in float32 cancels most of its digits).
"""

import copy
import os
import sys
import tempfile

import numpy as np
import torch

import st_io
from naonet_ref import NAONet, nao_loss

TOL = 1e-4
ARCH = "0 1 0 2 0 1 2 2 1 3 0 2 1 4 0 3  1 1 1 0 2 1 2 4 1 0 2 3 0 2 0 2"  # B=4, ops 0-4
LR, MOM, WD = 0.1, 0.9, 3e-4


def drop_path_name(tag):
    cell, b, side = tag
    return "cells.%d.ops.%d:%s_drop_path" % (cell, b, side)


def main():
    torch.set_num_threads(2)
    torch.manual_seed(3)
    steps, smoothing = 40, 0.1
    model = NAONet(ARCH, 4, 1, dataset="fashion-mnist", aux_weight=0.4, keep_prob=0.7,
                   drop_path_keep=0.6, steps=steps)
    gen = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=gen))
                m.bias.copy_(0.2 * torch.randn(m.num_features, generator=gen))
                m.running_mean.copy_(0.2 * torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=gen))
    tmp = tempfile.mkdtemp()
    net = os.path.join(tmp, "net.nao")
    with open(net, "w") as f:
        f.write(st_io.nao_text("step", ARCH, "fashion-mnist", 4, 1, 0.4, 0.6, 0.7))
    weights = os.path.join(tmp, "w0.safetensors")
    st_io.write(weights, model.state_dict())
    ref = copy.deepcopy(model).double()
    ref.train()
    opt = torch.optim.SGD(ref.parameters(), lr=LR, momentum=MOM, weight_decay=WD)
    failures = []
    for k, (step, clip) in enumerate([(5, 0.5), (6, 100.0)]):
        start = st_io.read(weights)[0]
        x = torch.randn(6, 1, 28, 28, generator=gen)
        y = torch.randint(0, 10, (6,), generator=gen)
        xin = os.path.join(tmp, "x%d.safetensors" % k)
        out = os.path.join(tmp, "out%d.safetensors" % k)
        st_io.write(xin, {"input": x, "labels": y})
        st_io.run([st_io.program("nao-run"), net, "--weights", weights, "--input", xin, "-o", out,
                   "--train", "--sgd", "--lr", str(LR), "--momentum", str(MOM), "--weight-decay",
                   str(WD), "--grad-clip", str(clip), "--label-smoothing", str(smoothing),
                   "--step", str(step), "--total-steps", str(steps), "--seed", "5",
                   "--dump-masks", "--threads", "2"])
        ours = st_io.read(out)[0]

        def mask_fn(kind, shape, keep, tag):
            name = "mask." + ("dropout" if kind == "dropout" else drop_path_name(tag))
            return torch.from_numpy((ours[name] != 0).astype(np.float64))

        ref.rt.mask_fn = mask_fn
        opt.zero_grad()
        logits, aux = ref(x.double(), step)
        loss = nao_loss(logits, aux, y, 0.4, smoothing)
        loss.backward()
        grads = {n: p.grad.detach().clone() for n, p in ref.named_parameters()}
        norm = torch.nn.utils.clip_grad_norm_(ref.parameters(), clip)
        opt.step()
        clipped = float(norm) > clip
        worst = [0.0, ""]

        def cmp(key, a, b):
            e = st_io.rel_err(a, b)
            if e > worst[0]:
                worst[:] = [e, key]
            if not e <= TOL:
                failures.append("step %d: %s: rel err %.3g" % (k + 1, key, e))

        cmp("loss", ours["loss"], [float(loss)])
        cmp("grad_norm", ours["grad_norm"], [float(norm)])
        state = ref.state_dict()
        for n, p in ref.named_parameters():
            cmp("grad." + n, ours["grad." + n], grads[n].numpy())
            cmp(n, ours[n], p.detach().numpy())
            want = start[n] - np.float32(LR) * ours["optimizer.momentum." + n]
            if not np.array_equal(ours[n], want):
                failures.append("step %d: %s is not old - lr * momentum in float32" % (k + 1, n))
            cmp("momentum of " + n, ours["optimizer.momentum." + n],
                opt.state[p]["momentum_buffer"].numpy())
        for n, v in state.items():
            if n.endswith("running_mean") or n.endswith("running_var"):
                cmp(n, ours[n], v.numpy())
        print("step %d: loss %.5f, norm %.4f (clip %g: %s), %d parameters; worst rel err %.2e (%s)"
              % (k + 1, float(loss), float(norm), clip, "clipped" if clipped else "not clipped",
                 len(grads), worst[0], worst[1]))
        if clipped != (k == 0):
            failures.append("step %d: clipping was expected %s" % (k + 1, "on" if k == 0 else "off"))
        # The next step starts from our state: parameters, statistics, momentum.
        weights = os.path.join(tmp, "w%d.safetensors" % (k + 1))
        st_io.write(weights, {n: v for n, v in ours.items()
                              if n in state or n.startswith("optimizer.momentum.")})
    for f in failures:
        print("FAIL", f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
