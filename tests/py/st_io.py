"""tests/py/st_io.py — a tiny safetensors reader and writer (struct + json), so
the parity tests need no extra package, and helpers to run naoc's programs.

Format: 8-byte little-endian header length, the JSON header
{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}},
then the data, little-endian, C order.
"""

import json
import os
import struct
import subprocess

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("BUILD", "build")

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32,
          "U8": np.uint8}
NAMES = {np.dtype(v).str: k for k, v in DTYPES.items()}


def write(path, tensors, metadata=None):
    """tensors: {name: numpy array or torch tensor}."""
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().numpy()
        a = np.ascontiguousarray(t)
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        raw = a.tobytes()
        header[name] = {"dtype": NAMES[a.dtype.str], "shape": list(a.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read(path):
    """({name: numpy array}, metadata)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, h in header.items():
        b, e = h["data_offsets"]
        a = np.frombuffer(data[base + b:base + e], dtype=DTYPES[h["dtype"]])
        out[name] = a.reshape(h["shape"]).copy()
    return out, meta


def program(name):
    path = os.path.join(ROOT, BUILD, name)
    if not os.path.exists(path):
        raise SystemExit("missing %s: run make first" % path)
    return path


def run(args, check=True):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s" % (" ".join(args), r.returncode, r.stderr))
    return r


def nao_text(name, arch, dataset="cifar10", channels=8, layers=1, aux=0.4, drop_path=0.8,
             dropout=0.6, in_shape=None, classes=None, stem=None):
    """A .nao program of the network (arch string of both cells)."""
    toks = arch.split()
    b = len(toks) // 8
    lines = ["network %s {" % name]
    if dataset:
        lines.append("  dataset %s;" % dataset)
    if in_shape:
        lines.append("  input %dx%dx%d;" % tuple(in_shape))
    if classes:
        lines.append("  classes %d;" % classes)
    if stem:
        lines.append("  stem %s;" % stem)
    lines += ["  channels %d;" % channels, "  layers %d;" % layers, "  nodes %d;" % b,
              "  aux_weight %r;" % aux, "  drop_path_keep %r;" % drop_path,
              "  dropout_keep %r;" % dropout, "}",
              'cell normal = "%s";' % " ".join(toks[:4 * b]),
              'cell reduction = "%s";' % " ".join(toks[4 * b:])]
    return "\n".join(lines) + "\n"


def rel_err(a, b):
    """max |a - b| / max |b| (norm-wise relative error, inf norm)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    scale = max(np.max(np.abs(b)) if b.size else 0.0, 1e-30)
    return float(np.max(np.abs(a - b)) / scale) if a.size else 0.0
