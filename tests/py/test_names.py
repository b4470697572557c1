"""tests/py/test_names.py — naoc's parameter names, shapes and order equal the
reference state_dict's (NAO-SPEC.md §1a.8).

1. The worked example of NAO-SPEC §1a.8 (CIFAR, C=4, L=1, B=2, aux on), typed
   in from the spec's listing, equals both nao_probe --params and the
   state_dict of the PyTorch model tests/py/naonet_ref.py.
2. For many networks (random archs of the 5-op, 11-op and mixed vocabularies,
   B = 1..5, all three presets, an explicit input, several F/N, aux on and
   off), nao_probe --params equals the PyTorch model's state_dict listing
   (num_batches_tracked left out: naoc does not store it).
   Also the init rule, fan-in, trainable and aux flags of every entry against
   what torch says of the same tensor (kaiming fan_in for every tensor of two or
   more dims, torch's fan-in computation; Linear biases U(+-1/sqrt(fan_in));
   BN weight 1, bias 0, running mean 0, running var 1; buffers not trainable;
   aux = under auxiliary_head).
3. The same for the NAO-WS supernet (nao_probe --ws) against NAOWSNet, for
   several B, F, N, aux on/off, CIFAR-10 and Fashion-MNIST; the listing does
   not depend on the architecture the probe is given.
"""

import random
import sys

import torch

from naonet_ref import NAONet, NAOWSNet, random_arch, state_listing
from nao_probe import probe_inits, probe_params

EXAMPLE_ARCH = "0 0 1 8 2 4 0 2  0 4 0 7 2 10 2 13"


def bn(prefix, c):
    return [(prefix + ".weight", (c,)), (prefix + ".bias", (c,)),
            (prefix + ".running_mean", (c,)), (prefix + ".running_var", (c,))]


def fr(prefix, cin, cout):
    return ([(prefix + ".path1.1.weight", (cout // 2, cin, 1, 1)),
             (prefix + ".path2.1.weight", (cout // 2, cin, 1, 1))] + bn(prefix + ".bn", cout))


def sep3(prefix, c):
    return ([(prefix + ".op.1.weight", (c, 1, 3, 3)), (prefix + ".op.2.weight", (c, c, 1, 1))]
            + bn(prefix + ".op.3", c)
            + [(prefix + ".op.5.weight", (c, 1, 3, 3)), (prefix + ".op.6.weight", (c, c, 1, 1))]
            + bn(prefix + ".op.7", c))


def conv13(prefix, c):
    return ([(prefix + ".ops.1.weight", (c, c, 1, 3))] + bn(prefix + ".ops.2", c)
            + [(prefix + ".ops.4.weight", (c, c, 3, 1))] + bn(prefix + ".ops.5", c))


def rcb(prefix, cin, c):
    return [(prefix + ".conv.weight", (c, cin, 1, 1))] + bn(prefix + ".bn", c)


def spec_example():
    """NAO-SPEC §1a.8's listing, written out."""
    m = "cells.%d.maybe_calibrate_size."
    rows = [("stem.0.weight", (12, 3, 3, 3))] + bn("stem.1", 12)
    # cell 0 (normal, c=4)
    rows += sep3("cells.0.ops.0.x_op", 4) + conv13("cells.0.ops.0.y_op", 4)
    rows += rcb(m % 0 + "preprocess_x", 12, 4) + rcb(m % 0 + "preprocess_y", 12, 4)
    # cell 1 (reduction, c=8)
    rows += fr("cells.1.ops.0.x_id_fact_reduce", 8, 8)
    rows += [("cells.1.ops.0.y_op.ops.1.weight", (8, 8, 3, 3))] + bn("cells.1.ops.0.y_op.ops.2", 8)
    rows += rcb(m % 1 + "preprocess_x", 12, 8) + rcb(m % 1 + "preprocess_y", 4, 8)
    rows += fr("cells.1.final_combine.ops.0", 8, 8)
    # cell 2 (normal, c=8)
    rows += sep3("cells.2.ops.0.x_op", 8) + conv13("cells.2.ops.0.y_op", 8)
    rows += fr(m % 2 + "preprocess_x", 4, 8) + rcb(m % 2 + "preprocess_y", 16, 8)
    # cell 3 (reduction, c=16)
    rows += fr("cells.3.ops.0.x_id_fact_reduce", 16, 16)
    rows += ([("cells.3.ops.0.y_op.ops.1.weight", (16, 16, 3, 3))]
             + bn("cells.3.ops.0.y_op.ops.2", 16))
    rows += rcb(m % 3 + "preprocess_y", 8, 16)
    rows += fr("cells.3.final_combine.ops.0", 16, 16)
    # cell 4 (normal, c=16)
    rows += sep3("cells.4.ops.0.x_op", 16) + conv13("cells.4.ops.0.y_op", 16)
    rows += fr(m % 4 + "preprocess_x", 8, 16) + rcb(m % 4 + "preprocess_y", 32, 16)
    rows += [("auxiliary_head.conv1.weight", (128, 32, 1, 1))] + bn("auxiliary_head.bn1", 128)
    rows += [("auxiliary_head.conv2.weight", (768, 128, 2, 2))] + bn("auxiliary_head.bn2", 768)
    rows += [("auxiliary_head.classifier.weight", (10, 768)),
             ("auxiliary_head.classifier.bias", (10,))]
    rows += [("classifier.weight", (10, 16)), ("classifier.bias", (10,))]
    return rows


def torch_inits(model):
    """(name, init, fan_in, trainable, aux) of every state_dict entry, from torch."""
    params = dict(model.named_parameters())
    rows = []
    for name, v in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        leaf = name.split(".")[-1]
        if leaf.isdigit():  # ParameterList entries (the supernet): weight.j, bias.j, w.j
            leaf = name.split(".")[-2]
        fan_in = 0
        if v.dim() >= 2:
            init = "kaiming_normal"
            fan_in = torch.nn.init._calculate_fan_in_and_fan_out(v)[0]
        elif leaf == "bias" and name.rsplit(".", 1)[0].endswith("classifier"):
            init = "linear_bias"
            fan_in = model.get_submodule(name.rsplit(".", 1)[0]).in_features
        elif leaf in ("weight", "running_var"):
            init = "ones"
        else:
            init = "zeros"
        rows.append((name, init, fan_in, int(name in params),
                     int(name.startswith("auxiliary_head."))))
    return rows


def diff(a, b):
    """The first difference between two listings, for the failure message."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return "entry %d: %s vs %s" % (i, x, y)
    return "lengths %d vs %d" % (len(a), len(b))


def check(what, got, want, failures):
    if got != want:
        failures.append("%s: %s" % (what, diff(got, want)))


def networks():
    """(description, probe kwargs, NAONet kwargs) for the sweep."""
    rng = random.Random(20240611)
    vocabs = {"5-op": list(range(5)), "11-op": list(range(5, 16)), "mixed": list(range(16))}
    cases = []
    presets = [("cifar10", 8), ("imagenet", 6), ("fashion-mnist", 4)]
    for preset, f in presets:
        for vname, ops in vocabs.items():
            for layers in (0, 1, 2):
                for aux in (0.4, 0.0):
                    nodes = rng.randint(1, 5)
                    arch = random_arch(rng, nodes, ops)
                    if preset == "imagenet" and layers == 2:
                        continue  # the same structure as L=1, only bigger
                    cases.append(("%s %s L=%d B=%d aux=%g %s" % (preset, vname, layers, nodes,
                                                               aux, arch),
                                  dict(arch=arch, dataset=preset, channels=f, layers=layers,
                                       aux=aux),
                                  dict(arch=arch, channels=f, layers=layers, dataset=preset,
                                       aux_weight=aux)))
    # An explicit input shape and class count, no preset, a non-square image.
    arch = random_arch(rng, 5, list(range(16)))
    cases.append(("explicit 3x64x48", dict(arch=arch, dataset=None, channels=6, layers=1, aux=0,
                                           extra=["--input", "3x64x48", "--classes", "7"]),
                  dict(arch=arch, channels=6, layers=1, dataset=None, in_shape=(3, 64, 48),
                       classes=7, stem="cifar", aux_weight=0)))
    return cases


def main():
    torch.manual_seed(0)
    failures = []
    # 1. the worked example
    want = spec_example()
    got_c = probe_params(arch=EXAMPLE_ARCH, dataset="cifar10", channels=4, layers=1, aux=0.4)
    got_t = state_listing(NAONet(EXAMPLE_ARCH, 4, 1, "cifar10", aux_weight=0.4))
    check("worked example, naoc vs NAO-SPEC", got_c, want, failures)
    check("worked example, torch vs NAO-SPEC", got_t, want, failures)
    # 2. the sweep
    cases = networks()
    for k, (desc, pk, tk) in enumerate(cases):
        extra = pk.pop("extra", [])
        got = probe_params(extra=extra, **pk)
        model = NAONet(**tk)
        check(desc, got, state_listing(model), failures)
        if k % 4 == 0:
            check(desc + " (inits)", probe_inits(extra=extra, **pk), torch_inits(model), failures)
    # 3. the supernet
    rng = random.Random(99)
    n_ws = 0
    for dataset, f, layers, nodes, aux in (("cifar10", 4, 1, 5, 0.0), ("cifar10", 6, 2, 3, 0.4),
                                            ("fashion-mnist", 4, 1, 4, 0.4),
                                            ("cifar10", 2, 0, 2, 0.0)):
        ws_model = NAOWSNet(f, layers, nodes, dataset, aux_weight=aux)
        ref = state_listing(ws_model)
        arch = random_arch(rng, nodes, list(range(5)))
        check("supernet %s F=%d N=%d (inits)" % (dataset, f, layers),
              probe_inits(arch=arch, dataset=dataset, channels=f, layers=layers, aux=aux,
                          extra=["--ws"]), torch_inits(ws_model), failures)
        for _ in range(2):
            arch = random_arch(rng, nodes, list(range(5)))
            got = probe_params(arch=arch, dataset=dataset, channels=f, layers=layers, aux=aux,
                               extra=["--ws"])
            check("supernet %s F=%d N=%d B=%d aux=%g arch %s" % (dataset, f, layers, nodes, aux,
                                                                 arch), got, ref, failures)
            n_ws += 1
    print("%d networks and %d supernet listings compared" % (len(cases) + 1, n_ws))
    if failures:
        print("\n".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
