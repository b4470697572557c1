"""NAO vs random search with the same number of queries on a table objective.

The objective is one of the synthetic tables over the NAS-Bench-201 cell space of
bench/search_quality_tables.py (read its header for exactly how they are made and what they are
not): --objective structured (hand-made, NAS-Bench-201-like) or rf (a fixed random-feature
model, nothing designed in). For each seed, nao-search runs
with the table evaluator; random search then draws the same number of distinct
architectures uniformly from the table (its own seed). Reported per method over the
seeds: the best accuracy found (mean, standard deviation, min, max), its regret to the
table's optimum and its rank in the table (1 = the optimum).

usage: python3 bench/search_quality.py [--objective structured|rf] [--seeds 10] [--seed-archs 100] [--new-archs 50]
           [--rounds 4] [--controller-epochs 300] [--threads 2] [--out DIR] [--build build]
Writes DIR/search_quality.json and prints a Markdown table. Uses only the standard
library (any python3).
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import search_quality_tables as tables  # noqa: E402


def stats(xs):
    return {"mean": statistics.mean(xs), "sd": statistics.stdev(xs) if len(xs) > 1 else 0.0,
            "min": min(xs), "max": max(xs), "median": statistics.median(xs)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--seed-archs", type=int, default=100)
    ap.add_argument("--new-archs", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--controller-epochs", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--objective", choices=["structured", "rf"], default="structured")
    ap.add_argument("--build", default=os.environ.get("BUILD", "build"))
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    out = a.out or tempfile.mkdtemp(prefix="naoc-quality-")
    os.makedirs(out, exist_ok=True)
    table = os.path.join(out, "nb201_synth.csv")
    rows = tables.table(a.objective)
    with open(table, "w") as f:
        f.write("arch,accuracy\n")
        for s, acc in rows:
            f.write("%s,%.4f\n" % (s, acc))
    acc_of = {s: round(acc, 4) for s, acc in rows}
    ranked = sorted(acc_of.values(), reverse=True)
    best_possible = ranked[0]

    def rank(acc):
        return 1 + sum(1 for x in ranked if x > acc)

    runs = []
    for seed in range(1, a.seeds + 1):
        run_dir = os.path.join(out, "nao-seed%d" % seed)
        t0 = time.time()
        subprocess.run([os.path.join(a.build, "nao-search"), "--space", "nb201", "--evaluator", "table",
                        "--table", table, "--out", run_dir, "--seed", str(seed),
                        "--seed-archs", str(a.seed_archs), "--new-archs", str(a.new_archs),
                        "--rounds", str(a.rounds), "--controller-epochs", str(a.controller_epochs),
                        "--threads", str(a.threads), "--quiet", "--no-progress"], check=True)
        wall = time.time() - t0
        with open(os.path.join(run_dir, "summary.json")) as f:
            summ = json.load(f)
        q = summ["evaluations"]
        nao_best = summ["best"]["accuracy"]
        rs = random.Random(1000 + seed)
        sample = rs.sample(list(acc_of), q)
        rand_best = max(acc_of[s] for s in sample)
        runs.append({"seed": seed, "queries": q, "nao_best": nao_best, "nao_rank": rank(nao_best),
                     "random_best": rand_best, "random_rank": rank(rand_best), "nao_wall_s": round(wall, 1)})
        print("seed %2d  queries %4d  NAO %.4f (rank %4d)  random %.4f (rank %4d)  [%.0f s]" % (
            seed, q, nao_best, rank(nao_best), rand_best, rank(rand_best), wall), flush=True)
    res = {
        "objective": "bench/search_quality_tables.py --kind %s (synthetic, NAS-Bench-201 cell space, 15625 archs)" % a.objective,
        "optimum": best_possible,
        "settings": {k: getattr(a, k) for k in ("seeds", "seed_archs", "new_archs", "rounds", "controller_epochs",
                                                  "threads")},
        "nao": {"best": stats([r["nao_best"] for r in runs]), "regret": stats([best_possible - r["nao_best"] for r in runs]),
                "rank": stats([r["nao_rank"] for r in runs])},
        "random": {"best": stats([r["random_best"] for r in runs]),
                   "regret": stats([best_possible - r["random_best"] for r in runs]),
                   "rank": stats([r["random_rank"] for r in runs])},
        "nao_wins": sum(r["nao_best"] > r["random_best"] for r in runs),
        "ties": sum(r["nao_best"] == r["random_best"] for r in runs),
        "runs": runs,
    }
    with open(os.path.join(out, "search_quality.json"), "w") as f:
        json.dump(res, f, indent=1)
    n = len(runs)
    print()
    qs = [r["queries"] for r in runs]
    qtext = "%d" % qs[0] if min(qs) == max(qs) else "%.0f (%d – %d)" % (statistics.mean(qs), min(qs), max(qs))
    print("| method | queries per seed | best accuracy (mean ± sd) | min – max | mean regret to optimum %.4f | "
          "median rank |" % best_possible)
    print("|---|---|---|---|---|---|")
    for m, name in (("nao", "NAO (nao-search)"), ("random", "random search, same queries")):
        b, g, r = res[m]["best"], res[m]["regret"], res[m]["rank"]
        print("| %s | %s | %.3f ± %.3f | %.3f – %.3f | %.3f | %g |" % (name, qtext, b["mean"], b["sd"], b["min"],
                                                                      b["max"], g["mean"], r["median"]))
    print()
    print("NAO better in %d of %d seeds, tied in %d. Results in %s" % (res["nao_wins"], n, res["ties"],
                                                                        os.path.join(out, "search_quality.json")))


if __name__ == "__main__":
    main()
