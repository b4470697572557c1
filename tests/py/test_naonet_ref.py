"""tests/py/test_naonet_ref.py — the PyTorch peer model keeps NAO-SPEC's semantics.

The parity tests trust tests/py/naonet_ref.py; this checks the details the
spec singles out, each against a value derived by hand or by another torch
function: FactorizedReduce's pixel grids, the divisors of ops 2/13/14, the max
of op 10 seeing the zero pad, the drop-path keep schedule with its clamp
(decision O17), label smoothing, the aux head only in training, drop-path
masks applied per sample as x / keep * mask.
"""

import sys

import torch
import torch.nn.functional as F

from naonet_ref import (FactorizedReduce, NAONet, drop_path_keep, make_op, nao_loss,
                        smoothed_xent)

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def test_fr_grids():
    fr = FactorizedReduce(1, 2)
    with torch.no_grad():
        fr.path1[1].weight.fill_(1)
        fr.path2[1].weight.fill_(1)
    fr.eval()  # running stats 0/1: BN is y = x / sqrt(1 + eps)
    x = torch.arange(36.0).view(1, 1, 6, 6)
    y = fr(x) * (1 + 1e-5) ** 0.5
    check(torch.allclose(y[0, 0], x[0, 0, 0::2, 0::2]), "FR path 1 reads (0,0), (0,2), ...")
    check(torch.allclose(y[0, 1], x[0, 0, 1::2, 1::2]), "FR path 2 reads (1,1), (1,3), ...")


def test_pools():
    x = torch.ones(1, 1, 4, 4)
    avg2 = make_op(2, 1, 1)(x)  # pad not counted: every output is 1
    check(torch.allclose(avg2, torch.ones_like(avg2)), "op 2 ignores padding")
    avg14 = make_op(14, 1, 1)(x)  # pad counted: the corner is 4/9
    check(abs(avg14[0, 0, 0, 0].item() - 4 / 9) < 1e-6, "op 14 counts padding")
    # op 13: explicit pad right/bottom then 2x2 average: bottom-right corner 1/4
    pad = F.pad(x, (0, 1, 0, 1))
    avg13 = make_op(13, 1, 1)(pad)
    check(avg13.shape[-1] == 4 and abs(avg13[0, 0, 3, 3].item() - 0.25) < 1e-6,
          "op 13 divides the padded zeros in")
    neg = -torch.ones(1, 1, 4, 4)
    max10 = make_op(10, 1, 1)(F.pad(neg, (0, 1, 0, 1)))
    check(max10[0, 0, 3, 3].item() == 0 and max10[0, 0, 0, 0].item() == -1,
          "op 10's max sees the zero pad")
    max3 = make_op(3, 1, 1)(neg)
    check(max3.max().item() == -1, "op 3 pads with -inf")


def test_schedule():
    check(drop_path_keep(0.8, 0, 10, 9, 10) == 1 - 0.1 * 1.0 * 0.2, "first step, last cell")
    check(abs(drop_path_keep(0.8, 9, 10, 4, 10) - (1 - 0.5 * 0.2)) < 1e-12, "last step, middle")
    check(drop_path_keep(0.8, 99, 10, 9, 10) == 0.8, "clamped at p beyond T (O17)")


def test_loss():
    torch.manual_seed(1)
    z = torch.randn(5, 7)
    t = torch.randint(0, 7, (5,))
    want = F.cross_entropy(z, t, label_smoothing=0.1)
    check(abs(smoothed_xent(z, t, 0.1).item() - want.item()) < 1e-6, "label smoothing")
    check(abs(smoothed_xent(z, t).item() - F.cross_entropy(z, t).item()) < 1e-6, "plain CE")
    za = torch.randn(5, 7)
    total = nao_loss(z, za, t, 0.4, 0.1)
    check(abs(total.item() - (want + 0.4 * F.cross_entropy(za, t, label_smoothing=0.1)).item())
          < 1e-6, "aux loss weight")


def test_modes():
    arch = "0 4 1 4 0 4 1 4"  # identities only: a node is x + y of its inputs
    net = NAONet(arch, 4, 1, "cifar10", aux_weight=0.4, keep_prob=1.0, drop_path_keep=0.5,
                 steps=1)
    x = torch.randn(3, 3, 32, 32)
    net.eval()
    logits, aux = net(x)
    check(aux is None and logits.shape == (3, 10), "eval: no aux logits")
    net.train()
    masks = []

    def fn(kind, shape, keep, tag):
        m = torch.tensor([1.0, 0.0, 1.0]).view(shape)
        masks.append((kind, tag, keep))
        return m

    net.rt.mask_fn = fn
    logits, aux = net(x, step=0)
    check(aux is not None and aux.shape == (3, 10), "train: aux logits")
    # 5 cells x 1 node x 2 branches; keep at step 0 of 1 in cell i: 1 - (i+1)/5 * 0.5
    check(len(masks) == 10, "one mask per branch")
    check(all(k == "drop_path" for k, _, _ in masks), "drop-path masks")
    check(abs(masks[0][2] - (1 - 0.2 * 0.5)) < 1e-12 and masks[0][1] == (0, 0, "x"),
          "keep of cell 0")


def main():
    test_fr_grids()
    test_pools()
    test_schedule()
    test_loss()
    test_modes()
    if failures:
        print("\n".join(failures))
        sys.exit(1)
    print("naonet_ref: ok")


if __name__ == "__main__":
    main()
