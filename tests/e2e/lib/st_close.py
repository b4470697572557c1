"""tests/e2e/lib/st_close.py A B [--tol T] [--min-diff D]: float32 tensors of two
safetensors files compared: the largest difference relative to the tensor's
scale, max|a - b| / (max|b| + 1e-12), over every tensor both hold.

Exit 0 when it is at most T (default 1e-5); with --min-diff, when it is at
least D instead (a negative control: files that must differ). Prints the largest one and its
tensor. Exit 1 otherwise, 2 on bad input (missing tensors, other shapes).
"""
import json
import struct
import sys

import numpy as np


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        body = f.read()
    out = {}
    for name, t in head.items():
        if name == "__metadata__" or t["dtype"] != "F32":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(body[a:b], dtype="<f4").reshape(t["shape"])
    return out


def main(argv):
    tol, min_diff, files = 1e-5, None, []
    i = 0
    while i < len(argv):
        if argv[i] == "--tol":
            tol = float(argv[i + 1]); i += 2
        elif argv[i] == "--min-diff":
            min_diff = float(argv[i + 1]); i += 2
        else:
            files.append(argv[i]); i += 1
    a, b = load(files[0]), load(files[1])
    if set(a) != set(b):
        print("tensors differ:", sorted(set(a) ^ set(b))[:5])
        return 2
    worst, where = 0.0, ""
    for name in a:
        if a[name].shape != b[name].shape:
            print("%s: shapes %s vs %s" % (name, a[name].shape, b[name].shape))
            return 2
        scale = float(np.max(np.abs(b[name]))) + 1e-12
        d = float(np.max(np.abs(a[name].astype(np.float64) - b[name]))) / scale
        if d > worst:
            worst, where = d, name
    print("largest relative difference %.3g (%s)" % (worst, where))
    if min_diff is not None:
        return 0 if worst >= min_diff else 1
    return 0 if worst <= tol else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
