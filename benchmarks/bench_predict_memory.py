"""Peak memory of ``predict`` on 200,000 rows of 784 features (issue 16, item 8).

Every configuration runs in a fresh subprocess: it fits a small model on 2,000 synthetic
rows, builds ``X`` of shape (200,000, 784) in float32 (627 MB), collects garbage, and then
a thread samples the process's current resident set (``VmRSS`` in ``/proc/self/status``)
every 2 ms while ``predict(X)`` runs. The number reported is the peak over the RSS just
before ``predict`` (torch's allocations are invisible to tracemalloc). A copy of ``X`` in
float32 shows as about 598 MiB (627 MB), one in float64 as about 1196 MiB.

    python benchmarks/bench_predict_memory.py [--n-rows 200000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, peak_rss_growth  # noqa: E402
from _impl import set_threads  # noqa: E402

from sklearn_rtl import RTLClassifier  # noqa: E402

N_FEATURES = 784
CONFIGS = {
    "kmeans, K=4": {"routing": "kmeans", "n_clusters": 4},
    "label, 10 tickets": {"routing": "label"},
    "groups, 4 groups": {"routing": "groups"},
}


def _fitted(config):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, N_FEATURES)).astype(np.float32)
    y = rng.integers(0, 10, size=len(X))
    groups = rng.integers(0, 4, size=len(X))
    clf = RTLClassifier(
        hidden_layer_sizes=(64, 64), n_prune_rounds=1, max_epochs=1, sparsity=0.9,
        random_state=0, min_cluster_size=0, **config,
    )  # fmt: skip
    return clf.fit(X, y, groups=groups)


def child(name, n_rows):
    """Fit, then print the peak RSS growth of ``predict`` on ``n_rows`` rows as JSON."""
    set_threads(1)
    clf = _fitted(CONFIGS[name])
    X = np.random.default_rng(1).normal(size=(n_rows, N_FEATURES)).astype(np.float32)
    groups = np.random.default_rng(2).integers(0, 4, size=n_rows)
    _, growth, seconds = peak_rss_growth(clf.predict, X, groups=groups)
    print(json.dumps({"growth_mb": growth, "x_mb": X.nbytes / 2**20, "s": seconds}))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-rows", type=int, default=200_000)
    parser.add_argument("--child", default=None)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.n_rows)
        return
    print(f"# bench_predict_memory: {machine()}")
    print(f"# predict on {args.n_rows:,} x {N_FEATURES} float32 rows, 784-64-64-10 MLP")
    print("| routing | X: MiB | peak RSS growth in predict: MiB | predict: s |")
    print("|---|---|---|---|")
    for name in CONFIGS:
        out = subprocess.run(
            [sys.executable, __file__, "--child", name, "--n-rows", str(args.n_rows)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {name} | {r['x_mb']:.0f} | {r['growth_mb']:.0f} | {r['s']:.2f} |")


if __name__ == "__main__":
    main()
