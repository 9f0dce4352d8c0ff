"""4. Pickled size of fitted models and peak memory during fit.

Pickled size of RTL (K=8, KMeans) / the single ticket, for masks bit-packed (current) and
stored as one byte per weight ("before": the plain nn.Module pickle), plus
``share_weights=False``. Peak memory: every fit runs in a fresh subprocess; a thread
samples the process's current resident set (``VmRSS`` in ``/proc/self/status``) every
2 ms during ``fit`` and reports the peak over the RSS just before ``fit`` (torch's
allocations are invisible to tracemalloc, and ``ru_maxrss`` is already raised by loading
the data, so it cannot see the fit's own peak).

    python benchmarks/bench_memory.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_fashion_mnist, machine, peak_rss_growth  # noqa: E402
from _impl import set_threads  # noqa: E402

from sklearn_rtl import RTLClassifier  # noqa: E402
from sklearn_rtl._network import TicketNetwork  # noqa: E402


def _params(quick):
    return dict(
        hidden_layer_sizes=(64, 64) if quick else (256, 256),
        n_prune_rounds=1,
        max_epochs=1,
        sparsity=0.9,
        random_state=0,
    )


def _data(quick):
    return load_fashion_mnist(n_samples=1000 if quick else 10000, seed=0)


def child(config, quick):
    set_threads(1)
    X, y = _data(quick)
    model = RTLClassifier(**config, **_params(quick), min_cluster_size=0)
    _, growth, _ = peak_rss_growth(model.fit, X, y)
    print(json.dumps({"growth_mb": growth}))


def pickled_sizes(clf):
    packed = len(pickle.dumps(clf))
    getstate = TicketNetwork.__getstate__
    TicketNetwork.__getstate__ = lambda self: self.__dict__.copy()
    try:
        plain = len(pickle.dumps(clf))
    finally:
        TicketNetwork.__getstate__ = getstate
    return packed, plain


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", default=None)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child), args.quick)
        return
    set_threads(1)
    X, y = _data(args.quick)
    configs = {
        "single ticket (K=1)": {"n_clusters": 1},
        "RTL K=8": {"n_clusters": 8},
        "RTL K=16": {"n_clusters": 16},
        "share_weights=False K=8": {"n_clusters": 8, "share_weights": False},
        "label, 10 tickets": {"routing": "label"},
    }
    print(f"# bench_memory: {machine()}")
    print(f"# Fashion-MNIST n={len(X)}, {_params(args.quick)}")
    print("\n## 4. pickled size (bytes) and peak RSS growth during fit")
    print(
        "| model | pickle, packed masks | / single | pickle, bool masks (before) | / single "
        "| peak RSS growth in fit: MB |"
    )
    print("|---|---|---|---|---|---|")
    rows = {}
    for name, config in configs.items():
        clf = RTLClassifier(**config, **_params(args.quick), min_cluster_size=0).fit(X, y)
        out = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(config)]
            + (["--quick"] if args.quick else []),
            capture_output=True,
            text=True,
            check=True,
        )
        rss = json.loads(out.stdout.strip().splitlines()[-1])
        rows[name] = (*pickled_sizes(clf), rss["growth_mb"])
    single = rows["single ticket (K=1)"]
    for name, (packed, plain, growth) in rows.items():
        print(
            f"| {name} | {packed:,} | {packed / single[0]:.2f} | {plain:,} | {plain / single[1]:.2f} "
            f"| {growth:.0f} |"
        )


if __name__ == "__main__":
    main()
