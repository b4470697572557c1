"""The reference interpreter (tests/unit/ir_ref.c) against PyTorch.

build/tests/tools/ir_ref_cases runs one-op graphs (input -> conv "pre" -> t ->
OP -> classifier -> smoothed, weighted cross-entropy) through ir_autodiff and
ir_ref in double precision and writes inputs, parameters and results. Here
PyTorch (float64) recomputes each case from the same inputs and parameters, the
way the reference implementation computes it (NAO-SPEC.md: F.pad then pool for
the right/bottom padded pools, count_include_pad, batch norm running statistics
with the unbiased variance, label smoothing), and the loss, logits, parameter
gradients, the gradient of t and the updated running statistics must agree to
1e-10 (relative to each tensor's largest value): both sides compute in double,
so only summation order differs (~1e-15); a semantic difference shows at 1e-3
or more.
"""
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

BUILD = os.environ.get("BUILD", "build")
TOOL = os.path.join(BUILD, "tests", "tools", "ir_ref_cases")
TOL = 1e-10


def read_records(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"NAOREF1\n", "bad magic"
    at, cases = 8, []
    while at < len(data):
        (n,) = struct.unpack_from("<I", data, at)
        name = data[at + 4:at + 4 + n].decode()
        at += 4 + n
        (ndim,) = struct.unpack_from("<I", data, at)
        dims = struct.unpack_from("<%dI" % ndim, data, at + 4)
        at += 4 + 4 * ndim
        count = int(np.prod(dims)) if ndim else 0
        values = (np.frombuffer(data, dtype="<f8", count=count, offset=at).reshape(dims)
                  if count else None)
        at += 8 * count
        if name.startswith("case:"):
            cases.append({"spec": name[5:], "rec": {}})
        else:
            cases[-1]["rec"][name] = values
    return cases


def parse_spec(spec):
    words = spec.split()
    kv = dict(w.split("=") for w in words[1:])
    return words[0], {k: float(v) for k, v in kv.items()}


def pool(t, a):
    kh, kw, sh, sw = int(a["kh"]), int(a["kw"]), int(a["sh"]), int(a["sw"])
    pt, pl, pb, pr = int(a["pt"]), int(a["pl"]), int(a["pb"]), int(a["pr"])
    if a["counted"]:  # padded cells are real zeros (F.pad, then an unpadded pool)
        t = F.pad(t, (pl, pr, pt, pb))
        return (F.max_pool2d(t, (kh, kw), (sh, sw)) if a["max"]
                else F.avg_pool2d(t, (kh, kw), (sh, sw)))
    assert pt == pb and pl == pr
    if a["max"]:
        return F.max_pool2d(t, (kh, kw), (sh, sw), (pt, pl))
    return F.avg_pool2d(t, (kh, kw), (sh, sw), (pt, pl), count_include_pad=False)


def run_case(case):
    kind, a = parse_spec(case["spec"])
    rec = case["rec"]
    params = {k[6:]: torch.tensor(v, requires_grad=True)
              for k, v in rec.items() if k.startswith("param:")}
    x = torch.tensor(rec["input"])
    labels = torch.tensor(rec["labels"]).long()
    t = F.conv2d(x, params["pre.weight"], padding=1)
    t.retain_grad()
    buffers = {}
    if kind == "conv":
        w = params["op.weight"]
        tp = F.pad(t, (int(a["pl"]), int(a["pr"]), int(a["pt"]), int(a["pb"])))
        y = F.conv2d(tp, w, stride=(int(a["sh"]), int(a["sw"])), groups=int(a["groups"]))
    elif kind == "pool":
        y = pool(t, a)
    elif kind == "bn":
        rm = params.pop("op.running_mean").detach().clone()
        rv = params.pop("op.running_var").detach().clone()
        buffers = {"op.running_mean": rm, "op.running_var": rv}
        y = F.batch_norm(t, rm, rv, params["op.weight"], params["op.bias"],
                         training=bool(a["train"]), momentum=a["momentum"], eps=a["eps"])
    elif kind == "relu":
        y = F.relu(t)
    elif kind == "gap":
        y = F.adaptive_avg_pool2d(t, 1)
    elif kind in ("dropout", "droppath"):
        y = t * torch.tensor(rec["mask"])  # the mask's values are checked in C
    else:
        raise ValueError(kind)
    logits = F.linear(y.flatten(1), params["classifier.weight"], params["classifier.bias"])
    loss = a["weight"] * F.cross_entropy(logits, labels, label_smoothing=a["smoothing"])
    loss.backward()
    got = {"t": t.detach(), "logits": logits.detach(), "loss": loss.detach().reshape(1),
           "grad_t": t.grad}
    for name, p in params.items():
        got["grad:" + name] = p.grad
    for name, b in buffers.items():
        if a.get("train"):
            got["buffer_after:" + name] = b
    return got


def compare(case, got):
    bad = []
    for name, want in got.items():
        if name not in case["rec"]:
            bad.append("%s: missing from the C side" % name)
            continue
        ref = case["rec"][name].reshape(tuple(want.shape))
        scale = max(1e-30, float(np.abs(want.numpy()).max()))
        err = float(np.abs(ref - want.numpy()).max()) / scale
        if not err <= TOL:
            bad.append("%s: relative error %.3g" % (name, err))
    return bad


def main():
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cases.bin")
        subprocess.run([TOOL, out], check=True)
        cases = read_records(out)
    assert len(cases) >= 18, "only %d cases" % len(cases)
    torch.set_default_dtype(torch.float64)
    failures = 0
    for case in cases:
        bad = compare(case, run_case(case))
        status = "ok" if not bad else "FAIL"
        print("%-4s %s" % (status, case["spec"].split(" eps=")[0]))
        for b in bad:
            print("     " + b)
        failures += bool(bad)
    if failures:
        print("%d of %d cases differ from PyTorch" % (failures, len(cases)))
        return 1
    print("all %d cases agree with PyTorch" % len(cases))
    return 0


if __name__ == "__main__":
    sys.exit(main())
