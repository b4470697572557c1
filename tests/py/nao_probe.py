"""tests/py/nao_probe.py — runs build/tests/tools/nao_probe for the Python tests."""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("BUILD", "build")
PROBE = os.path.join(ROOT, BUILD, "tests", "tools", "nao_probe")


def probe_args(arch, dataset="cifar10", channels=8, layers=1, aux=0.4, drop_path=0.8,
               dropout=0.6, extra=()):
    args = [PROBE]
    if dataset:
        args += ["--dataset", dataset]
    args += ["--channels", str(channels), "--layers", str(layers), "--aux", str(aux),
             "--drop-path", str(drop_path), "--dropout", str(dropout)]
    args += list(extra)
    return args + [arch]


def run_probe(args):
    if not os.path.exists(PROBE):
        sys.exit("missing %s: run make first" % PROBE)
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(args), r.returncode, r.stderr))
    return r.stdout


def probe_params(**kw):
    """[(name, shape)] in the order naoc registers them."""
    out = run_probe(probe_args(extra=["--params"] + list(kw.pop("extra", ())), **kw))
    rows = []
    for line in out.splitlines():
        parts = line.split()
        rows.append((parts[0], tuple(int(d) for d in parts[1:])))
    return rows


def probe_inits(**kw):
    """[(name, init, fan_in, trainable, aux)] in the order naoc registers them."""
    out = run_probe(probe_args(extra=["--inits"] + list(kw.pop("extra", ())), **kw))
    rows = []
    for line in out.splitlines():
        name, init, fan_in, trainable, aux = line.split()
        rows.append((name, init, int(fan_in), int(trainable), int(aux)))
    return rows


def probe_stats(**kw):
    extra = list(kw.pop("extra", ()))
    return json.loads(run_probe(probe_args(extra=extra, **kw)))
