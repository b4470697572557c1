"""A synthetic, structured accuracy table over the NAS-Bench-201 cell space (bench/).

There is no NAS-Bench-201 data on this machine and nothing can be downloaded, so the
quality bench (bench/search_quality.py) needs an objective it can build itself. This one
is NOT NAS-Bench-201: it is a hand-made function of the cell with a few properties of the
real benchmark's CIFAR-10 landscape, written down here exactly so anyone can judge it.

Cell: nodes 0..3, edges j<-i for i < j (6 edges), ops none, skip_connect, nor_conv_1x1,
nor_conv_3x3, avg_pool_3x3. An edge is *live* when its op is not none and it lies on a
path from node 0 to node 3 made of non-none edges.

  if node 3 is not reachable from node 0 through non-none edges: accuracy = 10.0 (chance)
  else:
    cap      = sum over live edges of w(op), w = skip 0.35, conv1x1 0.6, conv3x3 1.0, avg 0.3
    depth    = the largest number of conv edges (1x1 or 3x3) on one live 0->3 path
    residual = 1 when edge 3<-0 is skip_connect and depth >= 2
    pools    = number of live avg_pool edges
    wide     = number of live conv3x3 edges entering node 3
    score    = 1.6 cap + 2.5 depth + 2.0 residual - 0.8 pools + 0.7 wide - 0.9 max(0, depth - 2) * (1 - residual)
    accuracy = 96.2 - 62 exp(-score / 5.5) + noise
  noise: a fixed pseudo-random N(0, 0.15^2) per architecture (a hash of its string), so the
  table is deterministic but not a smooth function of the parts.

What it keeps of the real landscape: disconnected cells are at chance, 3x3 convolutions
beat 1x1 beat skip/pool, depth helps, a skip from the input helps deep cells (deep cells
without it are penalised), diminishing returns near the top (best about 94.4 %, the top
1 % above about 92.5 %, median about 77 %). What it does not have: the real benchmark's noise structure, its exact
ranking, anything about training. Results on it say whether a search exploits such
structure better than random sampling, not how it does on NAS-Bench-201.

A second, unstructured objective (--kind rf): a fixed random-feature model of the same
cell, with nothing designed in. x = one-hot of the 6 edge ops (30 inputs); h = tanh(W1 x +
b1) with 64 features, W1 and b1 ~ N(0, 1) drawn from Python's random.Random(201); y = w2 . h
with w2 ~ N(0, 1/64); accuracy = 70 + 24.4 (y - min y) / (max y - min y) over the space, so
the optimum is 94.4 and the worst 70; no noise. Every op on every edge interacts with all
others through the random features, so no part of it is additive by construction.

Usage: python3 bench/search_quality_tables.py OUT.csv [--kind structured|rf] -> writes the table
(15625 rows, header arch,accuracy) and prints the best architecture and accuracy as JSON.
"""
import hashlib
import itertools
import json
import math
import sys

OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
EDGES = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)]  # (to, from), string order
W = {"skip_connect": 0.35, "nor_conv_1x1": 0.6, "nor_conv_3x3": 1.0, "avg_pool_3x3": 0.3}


def arch_string(ops):
    e = dict(zip(EDGES, ops))
    nodes = []
    for j in (1, 2, 3):
        nodes.append("|" + "|".join("%s~%d" % (e[(j, i)], i) for i in range(j)) + "|")
    return "+".join(nodes)


def noise(s):
    h = hashlib.sha256(s.encode()).digest()
    u1 = (int.from_bytes(h[:8], "little") + 0.5) / 2.0 ** 64
    u2 = (int.from_bytes(h[8:16], "little") + 0.5) / 2.0 ** 64
    return 0.15 * math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)


def accuracy(ops):
    e = {k: v for k, v in zip(EDGES, ops) if v != "none"}
    fwd = {0}  # reachable from node 0
    for j in (1, 2, 3):
        if any((j, i) in e and i in fwd for i in range(j)):
            fwd.add(j)
    bwd = {3}  # reaches node 3
    for i in (2, 1, 0):
        if any((j, i) in e and j in bwd for j in range(i + 1, 4)):
            bwd.add(i)
    if 3 not in fwd:
        return 10.0
    live = {k: v for k, v in e.items() if k[1] in fwd and k[0] in bwd}
    cap = sum(W[v] for v in live.values())
    depth = [0, None, None, None]  # most convs on a live path 0 -> j
    for j in (1, 2, 3):
        c = [depth[i] + (live[(j, i)] in ("nor_conv_1x1", "nor_conv_3x3"))
             for i in range(j) if (j, i) in live and depth[i] is not None]
        depth[j] = max(c) if c else None
    d = depth[3]
    residual = 1 if e.get((3, 0)) == "skip_connect" and d >= 2 else 0
    pools = sum(v == "avg_pool_3x3" for v in live.values())
    wide = sum(v == "nor_conv_3x3" for k, v in live.items() if k[0] == 3)
    score = 1.6 * cap + 2.5 * d + 2.0 * residual - 0.8 * pools + 0.7 * wide - 0.9 * max(0, d - 2) * (1 - residual)
    return 96.2 - 62.0 * math.exp(-score / 5.5) + noise(arch_string(ops))


def rf_table():
    import random
    r = random.Random(201)
    w1 = [[r.gauss(0, 1) for _ in range(30)] for _ in range(64)]
    b1 = [r.gauss(0, 1) for _ in range(64)]
    w2 = [r.gauss(0, 1 / 8) for _ in range(64)]
    raw = []
    for ops in itertools.product(OPS, repeat=6):
        on = [e * 5 + OPS.index(o) for e, o in enumerate(ops)]  # one-hot positions
        y = sum(w2[k] * math.tanh(b1[k] + sum(w1[k][i] for i in on)) for k in range(64))
        raw.append((arch_string(ops), y))
    lo, hi = min(y for _, y in raw), max(y for _, y in raw)
    return [(s, 70.0 + 24.4 * (y - lo) / (hi - lo)) for s, y in raw]


def table(kind="structured"):
    if kind == "rf":
        return rf_table()
    rows = []
    for ops in itertools.product(OPS, repeat=6):
        rows.append((arch_string(ops), accuracy(ops)))
    return rows


def main():
    kind = sys.argv[sys.argv.index("--kind") + 1] if "--kind" in sys.argv else "structured"
    rows = table(kind)
    with open(sys.argv[1], "w") as f:
        f.write("arch,accuracy\n")
        for s, a in rows:
            f.write("%s,%.4f\n" % (s, a))
    best = max(rows, key=lambda r: r[1])
    accs = sorted((round(a, 4) for _, a in rows), reverse=True)
    print(json.dumps({"rows": len(rows), "best_arch": best[0], "best_accuracy": round(best[1], 4),
                      "top10_threshold": accs[9], "top100_threshold": accs[99],
                      "median": accs[len(accs) // 2], "chance_rows": sum(a == 10.0 for a in accs)}))


if __name__ == "__main__":
    main()
