"""Parity of the C controller with a PyTorch model of the reference's controller
(tests/py/ctl_torch.py), given the same weights.

build/tests/tools/ctl_tool writes a fixture: weights under their state_dict names, a
batch of architectures, targets, dropout masks, and what the C code computed: the
predictions, O, e, log-probabilities, the losses, every gradient, the weights after two
optimiser steps (clip + Adam with weight decay), the inference step's gradient w.r.t. O,
and the greedy decodings at lambda and at 0. This test loads the weights into PyTorch,
recomputes everything and compares: max|c - torch| / max|torch| < 1e-4 per tensor (1e-3
for Adam's parameter updates, which divide by sqrt(v)), decodings token for token.
Run by tests/run.sh with Debian's python3 (PyTorch 1.13).
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctl_torch import Controller, mask_from_bits, nao_small_mask, st_read  # noqa: E402

BUILD = os.environ.get("BUILD", "build")
TOOL = os.path.join(BUILD, "tests", "tools", "ctl_tool")
failures = []


def rel(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL", what)


def close(name, c, t, tol=1e-4):
    r = rel(c, t)
    print("  %-48s rel err %.2e" % (name, r))
    check(r < tol, "%s: relative error %.3e >= %g" % (name, r, tol))


def build_model(fx, names):
    emb = fx["encoder.embedding.weight"]
    vocab, e_size = emb.shape
    hidden = fx["encoder.rnn.weight_hh_l0"].shape[1]
    length = fx["fx.tokens"].shape[1]
    mlp_layers = len([n for n in names if n.startswith("encoder.mlp.") and n.endswith(".weight")])
    mlp_hidden = fx["encoder.regressor.weight"].shape[1] if mlp_layers else 200
    enc_len = length * e_size // hidden
    m = Controller(vocab=vocab, emb=e_size, hidden=hidden, src_len=length, enc_len=enc_len,
                   mlp_layers=mlp_layers, mlp_hidden=mlp_hidden, mlp_dropout=0.1, dec_len=length)
    sd = m.state_dict()
    check(list(sd.keys()) == names, "state_dict names/order differ: %s vs %s" % (list(sd.keys()), names))
    m.load_state_dict({n: torch.from_numpy(fx[n].copy()) for n in names})
    return m


def run_case(space, batch, seed, lam, bound, mlp_layers=3):
    print("case space=%s batch=%d seed=%d lambda=%g bound=%g mlp_layers=%d" % (space, batch, seed, lam, bound,
                                                                               mlp_layers))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "fx.safetensors")
        subprocess.run([TOOL, "fixture", path, "--space", space, "--batch", str(batch), "--seed", str(seed),
                        "--lambda", str(lam), "--grad-bound", str(bound), "--mlp-layers", str(mlp_layers)],
                       check=True)
        fx, _ = st_read(path)
        with open(path, "rb") as f:  # tensor order in the file = the C layout order
            import json
            import struct
            (hlen,) = struct.unpack("<Q", f.read(8))
            order = [k for k in json.loads(f.read(hlen)) if k != "__metadata__"]
    names = [k for k in order if not k.startswith(("fx.", "grad.", "grad2.", "step1.", "step2."))]
    m = build_model(fx, names)
    x = torch.from_numpy(fx["fx.tokens"].astype(np.int64))
    tgt = torch.from_numpy(fx["fx.targets"])
    masks = [torch.from_numpy(fx["fx.masks"][i]) for i in range(max(mlp_layers, 1))]
    allowed = mask_from_bits(fx["fx.allowed"], m.decoder.out.out_features)
    if space == "nao-small":
        check(torch.equal(allowed, nao_small_mask()), "nao-small allowed tokens differ from NAO-SPEC 1b's rule")
    if space == "nao-small" and mlp_layers == 3:
        n = sum(p.numel() for p in m.parameters())
        n_enc = sum(p.numel() for k, p in m.named_parameters() if k.startswith("encoder."))
        check(n == 279533 and n_enc == 175073, "parameter count %d (encoder %d), want 279533 (175073)" % (n, n_enc))

    m.train()
    out = m.loss(x, tgt, masks=masks)
    close("prediction", fx["fx.yhat"], out["y"].detach().squeeze(1).numpy())
    close("encoder outputs O", fx["fx.O"], out["O"].detach().permute(1, 0, 2).numpy())
    close("arch embedding e", fx["fx.e"], out["e"].detach().numpy())
    close("log-probabilities", fx["fx.logp"], out["logp"].detach().permute(1, 0, 2).numpy())
    close("loss, mse, nll", fx["fx.loss"], [out["loss"].item(), out["mse"].item(), out["nll"].item()])
    m.zero_grad()
    out["loss"].backward()
    for k, p in m.named_parameters():
        close("grad " + k, fx["grad." + k], p.grad.numpy())

    # Two optimiser steps (clip to the bound, Adam lr 1e-3, weight_decay 1e-4), fed with
    # the C gradients so that the optimiser's semantics are compared on their own (the
    # first Adam step is ~lr*sign(g): gradient noise would dominate tiny entries).
    p0 = {k: p.detach().clone() for k, p in m.named_parameters()}
    opt = torch.optim.Adam(m.parameters(), lr=1e-3, weight_decay=1e-4)
    for step, prev in ((1, None), (2, "step1.")):
        for k, p in m.named_parameters():
            p.grad = torch.from_numpy(fx[("grad." if step == 1 else "grad2.") + k].copy())
        norm = torch.nn.utils.clip_grad_norm_(m.parameters(), bound)
        if step == 1:
            close("gradient norm", fx["fx.grad_norm"], [norm.item()])
        opt.step()
        for k, p in m.named_parameters():
            before = p0[k].numpy() if prev is None else fx[prev + k]
            close("Adam step %d update %s" % (step, k), fx["step%d.%s" % (step, k)] - before,
                  p.detach().numpy() - before, 1e-3)
    # The C gradient at the weights after step 1 is PyTorch's there too.
    m.load_state_dict({n: torch.from_numpy(fx["step1." + n].copy()) for n in names})
    m.zero_grad()
    m.loss(x, tgt, masks=masks)["loss"].backward()
    for k, p in m.named_parameters():
        close("grad after step 1 " + k, fx["grad2." + k], p.grad.numpy())

    # The inference step at the initial weights.
    m.load_state_dict({n: torch.from_numpy(fx[n].copy()) for n in names})
    m.eval()
    syms, y, g = m.generate(x, float(fx["fx.lambda"][0]), allowed)
    close("inference gradient dsum(pred)/dO", fx["fx.gO"], g.permute(1, 0, 2).numpy())
    close("inference predictions", fx["fx.gen_pred"], y.squeeze(1).numpy())
    same = (syms.numpy() == fx["fx.gen_tokens"]).all(axis=1)
    print("  generated archs equal: %d of %d" % (same.sum(), len(same)))
    check(same.all(), "generation at lambda %g differs for samples %s" % (fx["fx.lambda"][0], np.where(~same)[0]))
    syms0, _, _ = m.generate(x, 0.0, allowed)
    same0 = (syms0.numpy() == fx["fx.rec_tokens"]).all(axis=1)
    print("  reconstructions equal: %d of %d" % (same0.sum(), len(same0)))
    check(same0.all(), "reconstruction differs for samples %s" % np.where(~same0)[0])
    for s in (syms, syms0):  # decoded archs obey the space
        ok = allowed[torch.arange(s.size(1)).unsqueeze(0).expand_as(s), s].all()
        check(bool(ok), "a decoded token is outside the allowed set")
    if space == "nao-small" and bound < 1:
        check(fx["fx.grad_norm"][0] > bound, "clipping case: gradient norm %g not above the bound" % fx["fx.grad_norm"][0])


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    run_case("nao-small", 16, 1, 1.0, 5.0)
    run_case("nao-small", 8, 2, 3.0, 0.01)     # clipping active
    run_case("nao-large", 8, 3, 2.0, 5.0)
    run_case("nb201", 8, 4, 5.0, 5.0)
    run_case("nao-small", 6, 5, 1.0, 5.0, mlp_layers=0)
    if failures:
        print("%d failures" % len(failures))
        sys.exit(1)
    print("all parity checks passed")


if __name__ == "__main__":
    main()
