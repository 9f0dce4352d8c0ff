"""Candidate defaults side by side: which network and pruning-round cap to ship.

Every candidate runs the protocol of ``bench_quality.py`` (``StandardScaler`` first,
stratified 5-fold CV repeated twice, 5 stratified 70/30 splits on tables of at least 3,000
rows, each split's index seeding its models; the four candidates in ``defaults.jsonl`` ran
under the earlier protocol: one 5-fold run, or 2 splits, every model seeded 0) for the
default KMeans K=4, the single ticket and label routing, next to ``MLPClassifier()`` on the
same folds in the same process, one process per (table, candidate) and one thread each.
A summary per candidate gives every model's balanced-accuracy gap to MLPClassifier() and
its fit-time ratio, and lists the issue-13 misses (K=4 and single within 0.01, label
within 0.02).

    OMP_NUM_THREADS=1 python benchmarks/bench_defaults.py --jobs 2
    python benchmarks/bench_defaults.py --render results/defaults.jsonl   # table only

Writes ``benchmarks/results/defaults.jsonl`` (one line per table, model and candidate) and
``benchmarks/results/defaults.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from itertools import product
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CANDIDATES = [
    "hidden_layer_sizes=(256, 256)",
    "hidden_layer_sizes=(128, 128)",
    "hidden_layer_sizes=(256,)",
    "hidden_layer_sizes=(128, 128), max_prune_epochs=10",
]
MODELS = {"k4": {}, "single": {"n_clusters": 1}, "label": {"routing": "label"}}
TOLERANCE = {"k4": 0.01, "single": 0.01, "label": 0.02}


def worker(table, candidate):
    """Score MLPClassifier() and the three RTL models of one candidate on one table."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    sys.path.insert(0, str(HERE))
    from bench_quality import evaluate, load_table
    from sklearn.neural_network import MLPClassifier

    from sklearn_rtl import RTLClassifier

    params = eval(f"dict({candidate})")  # noqa: S307 - our own candidate strings
    X, y = load_table(table)
    order = np.argsort(y, kind="stable")  # warm-up on rows of the first and last class
    warm = np.r_[order[:30], order[-30:]]
    RTLClassifier(max_epochs=1, hidden_layer_sizes=(4,)).fit(X[warm], y[warm])
    makes = {"mlp": lambda seed: MLPClassifier(random_state=seed)}
    for name, routing in MODELS.items():
        makes[name] = lambda seed, routing=routing: RTLClassifier(
            random_state=seed, **routing, **params
        )
    for name, make in makes.items():
        scores, seconds = evaluate(make, X, y, 5, 2)
        row = {"table": table, "model": name, "cfg": candidate, "score": round(scores.mean(), 4),
               "sd": round(scores.std(), 4), "sec": round(seconds.mean(), 2)}  # fmt: skip
        print(json.dumps(row), flush=True)


def run_all(tables, candidates, jobs, out):
    """Every (table, candidate) in its own process, ``jobs`` at a time."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def one(job):
        command = [sys.executable, __file__, "--worker", *job]
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode:
            print(f"{job} failed:\n{done.stderr[-2000:]}", flush=True)
        return lines

    with open(out, "a") as sink, ThreadPoolExecutor(jobs) as pool:
        for lines in pool.map(one, product(tables, candidates)):
            sink.writelines(line + "\n" for line in lines)
            print("\n".join(lines), flush=True)


def render(rows):
    """Markdown: per candidate, every table's gaps to MLPClassifier() and time ratios."""
    by_key = {(r["table"], r["model"], r["cfg"]): r for r in rows}
    tables = list(dict.fromkeys(r["table"] for r in rows))
    candidates = list(dict.fromkeys(r["cfg"] for r in rows))
    out = []
    for candidate in candidates:
        out += [f"### `{candidate}`", "",
                "| table | MLPClassifier | K=4 | single | label |", "|---|---|---|---|---|"]  # fmt: skip
        misses = []
        for table in tables:
            mlp = by_key.get((table, "mlp", candidate))
            if mlp is None:
                continue
            cells = [f"{mlp['score']:.3f}, {mlp['sec']:.1f} s"]
            for model, tol in TOLERANCE.items():
                row = by_key[(table, model, candidate)]
                gap = row["score"] - mlp["score"]
                cells.append(f"{gap:+.3f}, {row['sec'] / mlp['sec']:.1f}x")
                if gap < -tol:
                    misses.append(f"{table} {model} {gap:+.3f}")
            out.append(f"| {table} | " + " | ".join(cells) + " |")
        out += ["", "Misses: " + ("; ".join(misses) or "none"), ""]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=2, metavar=("TABLE", "CANDIDATE"))
    parser.add_argument("--tables", nargs="*", default=None)
    parser.add_argument("--candidates", nargs="*", default=CANDIDATES)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--render", metavar="JSONL", help="only write the markdown of a run")
    parser.add_argument("--note", default="", help="with --render: where the run was made")
    parser.add_argument("--out", default=None, help="results file (default results/defaults.jsonl)")
    args = parser.parse_args(argv)
    if args.worker:
        return worker(*args.worker)
    sys.path.insert(0, str(HERE))
    from _common import machine
    from bench_quality import ALSO_USED, NAMED

    jsonl = Path(args.render or args.out or RESULTS / "defaults.jsonl")
    if not args.render:
        RESULTS.mkdir(exist_ok=True)
        jsonl.unlink(missing_ok=True)
        run_all(args.tables or NAMED + ALSO_USED, args.candidates, args.jobs, jsonl)
        header = [f"Machine: {machine()}; {args.jobs} processes side by side", ""]
    else:
        header = [f"Rendered from {jsonl.name}. {args.note}".strip(), ""]
    rows = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    lines = header + ["Gap in balanced accuracy to MLPClassifier(), fit time / its time.", ""]
    jsonl.with_suffix(".md").write_text("\n".join(lines + render(rows)) + "\n")
    print("\n".join(render(rows)))


if __name__ == "__main__":
    main()
