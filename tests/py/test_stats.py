"""tests/py/test_stats.py — naoc's `--emit stats` numbers against the PyTorch model.

1. The published figures (NAO-SPEC.md §1e, measured on the reference code):
   NAONet-A ImageNet (F=42, N=4, aux) 12,603,855 / 11,353,831 / 1,243,996,992
   and NAONet-B CIFAR-10 (F=36, N=6, aux) 3,379,296 / 2,921,302 / 462,002,400
   (params / params_no_aux / macs), from nao_probe and from the torch model.
2. params, params_no_aux and macs of many networks (both vocabularies, all
   three presets, several F/N, aux on and off) equal the torch model's:
   parameters counted over model.parameters(), MACs with forward hooks on
   Conv2d and Linear of the eval model (which has no aux head).
3. The NAO-WS supernet at the search's defaults (C=20, N=3, B=5, no aux) has
   7,387,350 parameters (NAO-SPEC §1c, measured on the reference), from
   nao_probe --ws and from the torch supernet.
4. activation_bytes, as docs/ir.md defines it, counted independently on the
   torch model in training mode with forward hooks (one float32 per element
   of every output a forward step writes; see act_bytes below).
"""

import random
import sys

import torch
import torch.nn as nn

from naonet_ref import (AuxHead, Dropout, FactorizedReduce, FinalCombine, NAONet, NAOWSNet, Node,
                        PRESETS, count_macs, count_params, random_arch, shape_copy)
from nao_probe import probe_stats

NAONET_A = "0 7 1 15 2 8 1 7 0 6 1 7 0 8 4 7 1 5 0 7 0 7 1 13 0 6 0 14 0 9 1 10 0 14 2 6 1 11 0 7"
NAONET_B = "0 1 0 2 0 1 2 2 1 3 0 2 4 0 1 3 2 1 0 3 1 1 1 0 2 1 2 4 1 0 2 3 3 1 2 2 0 2 0 2"

PUBLISHED = [
    ("NAONet-A imagenet F=42 N=4", dict(arch=NAONET_A, dataset="imagenet", channels=42, layers=4,
                                        aux=0.4, dropout=1.0, drop_path=1.0),
     (12603855, 11353831, 1243996992)),
    ("NAONet-B cifar10 F=36 N=6", dict(arch=NAONET_B, dataset="cifar10", channels=36, layers=6,
                                       aux=0.4, dropout=0.6, drop_path=0.8),
     (3379296, 2921302, 462002400)),
]


def torch_model(pk):
    return NAONet(pk["arch"], pk["channels"], pk["layers"], pk["dataset"],
                  aux_weight=pk["aux"], keep_prob=pk["dropout"], drop_path_keep=pk["drop_path"])


def act_bytes(model, in_shape):
    """Float32 bytes per image the forward pass of the training graph writes.

    Counted on what the reference modules output, with the rules of
    docs/ir.md: every conv, BN, ReLU, pool (not the stride-2 subsampling
    inside FactorizedReduce, which naoc folds into the conv), FR concat, node
    sum, cell concat of two or more loose ends, global pool and linear output;
    per drop-path branch its output plus a one-float mask; dropout's output
    plus a mask of its shape; per loss the softmax (the logits' shape). Not:
    the input, the pad of ops 10/13 (folded into the pool), identities."""
    n = 2  # BN in training mode needs more than one value per channel
    model = shape_copy(model)
    total = [0]
    fr_pools = set()
    for m in model.modules():
        if isinstance(m, FactorizedReduce):
            fr_pools.update((id(m.path1[0]), id(m.path2[0])))

    def hook(m, inp, out):
        per = out[0].numel()  # one image
        if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) and id(m) in fr_pools:
            return
        if isinstance(m, FinalCombine) and len(m.concat) < 2:
            return  # one loose end: the cell's output is that state
        if isinstance(m, Dropout):
            if m.training and m.keep < 1:
                total[0] += 2 * per  # output and mask
            return
        total[0] += per  # AuxHead: its softmax, shaped like its logits
        if isinstance(m, Node) and m.drop_path is not None:
            total[0] += 2 * (per + 1)  # x and y drop-path: outputs and masks

    kinds = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, FactorizedReduce,
             Node, FinalCombine, nn.AdaptiveAvgPool2d, nn.Linear, AuxHead, Dropout)
    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    model.train()
    with torch.no_grad():
        logits, _ = model(torch.zeros((n,) + tuple(in_shape), device="meta"), step=0)
    for h in hooks:
        h.remove()
    return 4 * (total[0] + logits.size(1))  # + the main head's softmax


def networks():
    rng = random.Random(7)
    vocabs = [list(range(5)), list(range(5, 16))]
    cases = []
    for preset, f in (("cifar10", 8), ("imagenet", 8), ("fashion-mnist", 6)):
        for ops in vocabs:
            for layers, aux, dp, do in ((1, 0.4, 0.8, 0.6), (2, 0.0, 1.0, 1.0)):
                arch = random_arch(rng, rng.randint(2, 5), ops)
                cases.append(("%s F=%d N=%d aux=%g ops%d-%d %s" % (preset, f, layers, aux, ops[0],
                                                                  ops[-1], arch),
                              dict(arch=arch, dataset=preset, channels=f, layers=layers, aux=aux,
                                   drop_path=dp, dropout=do)))
    return cases


def compare(desc, pk, want, failures, with_act):
    st = probe_stats(**pk)
    got = (st["params"], st["params_no_aux"], st["macs"])
    model = torch_model(pk)
    in_shape = PRESETS[pk["dataset"]][:3]
    ref = (count_params(model), count_params(model, include_aux=False),
           count_macs(model, in_shape))
    if got != ref:
        failures.append("%s: naoc %s, torch %s" % (desc, got, ref))
    if want is not None and got != want:
        failures.append("%s: naoc %s, published %s" % (desc, got, want))
    if with_act:
        ab = act_bytes(model, in_shape)
        if st["activation_bytes"] != ab:
            failures.append("%s: activation_bytes naoc %d, torch count %d"
                            % (desc, st["activation_bytes"], ab))


def main():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    failures = []
    for desc, pk, want in PUBLISHED:
        compare(desc, pk, want, failures, with_act=False)
    ws = probe_stats(arch=random_arch(random.Random(3), 5, list(range(5))), dataset="cifar10",
                     channels=20, layers=3, aux=0.0, extra=["--ws"])
    ws_torch = count_params(NAOWSNet(20, 3, 5, "cifar10", aux_weight=0.0))
    if not ws["params"] == ws_torch == 7387350:
        failures.append("supernet C=20 N=3: naoc %d, torch %d, measured 7387350"
                        % (ws["params"], ws_torch))
    cases = networks()
    for desc, pk in cases:
        compare(desc, pk, None, failures, with_act=True)
    print("%d networks compared" % (len(cases) + len(PUBLISHED)))
    if failures:
        print("\n".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
