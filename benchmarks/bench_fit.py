"""Fit time of RTL relative to the single ticket, measured side by side in one run.

1. RTL (KMeans routing, K = 2, 4, 8, 16) / single ticket (n_clusters=1), same rounds
   and epochs; "before" (generic per-ticket path, unfused Adam) and "after" (current).
2. RTL vs share_weights=False and vs a dense skorch NeuralNetClassifier of the same
   architecture trained for the same total number of epochs.
5. Growth of fit time with n_samples and with network width (K=8 vs K=1).

Every configuration is repeated (interleaved) and the median taken; ratios are of
medians. ``imbalance`` = K * (largest ticket) / n_samples: the extra sample passes that
the balanced batches (smaller tickets cycle, Alg. 2) cost over one pass over the data.

    python benchmarks/bench_fit.py [--quick] [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_fashion_mnist, machine, median  # noqa: E402
from _impl import ROUTER_SECONDS, implementation, set_threads, time_routers  # noqa: E402

from sklearn_rtl import RTLClassifier  # noqa: E402


def fit_time(X, y, impl="after", **params):
    with implementation(impl):
        clf = RTLClassifier(random_state=0, min_cluster_size=0, **params)  # K tickets
        ROUTER_SECONDS.clear()
        start = time.perf_counter()
        clf.fit(X, y)
        elapsed = time.perf_counter() - start
    counts = np.bincount(clf.router_.predict(X)) if clf.n_tickets_ > 1 else np.array([len(X)])
    routing = sum(ROUTER_SECONDS)
    return elapsed, (clf.n_tickets_ * counts.max() / len(X), routing)


def _kmeans_n_init_1(k):
    """The default router with one KMeans initialization instead of ten."""
    from sklearn.cluster import KMeans
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), KMeans(n_clusters=k, n_init=1, random_state=0))


def dense_time(X, y, hidden, epochs, batch_size=128):
    import torch
    from skorch import NeuralNetClassifier

    from sklearn_rtl import MLP

    torch.manual_seed(0)
    net = NeuralNetClassifier(
        MLP,
        module__n_features=X.shape[1],
        module__hidden_layer_sizes=hidden,
        module__n_outputs=10,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=epochs,
        batch_size=batch_size,
        train_split=None,
        verbose=0,
    )
    start = time.perf_counter()
    net.fit(X, y)
    return time.perf_counter() - start


def run_grid(configs, repeats):
    """configs: {label: callable returning seconds or (seconds, extra)}; interleaved."""
    times = {label: [] for label in configs}
    extra = {}
    for _ in range(repeats):
        for label, fn in configs.items():
            result = fn()
            if isinstance(result, tuple):
                result, extra[label] = result
            times[label].append(result)
    return {label: median(v) for label, v in times.items()}, extra


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--only", default="1,2,5", help="sections to run, e.g. '1,2'")
    args = parser.parse_args()
    set_threads(args.threads)
    time_routers()
    sections = set(args.only.split(","))
    quick = args.quick
    repeats = args.repeats or (1 if quick else 3)
    n = 1500 if quick else 10000
    X, y = load_fashion_mnist(n_samples=n, seed=0)
    hidden = (64, 64) if quick else (256, 256)
    base = dict(
        hidden_layer_sizes=hidden, n_prune_rounds=2, max_epochs=1 if quick else 2, sparsity=0.9
    )
    print(f"# bench_fit: {machine()}; threads={args.threads}")
    print(
        f"# Fashion-MNIST n={n}, MLP 784-{'-'.join(map(str, hidden))}-10, "
        f"{base['n_prune_rounds']} rounds x {base['max_epochs']} epochs + retrain, "
        f"repeats={repeats} (median)"
    )
    fit_time(X[:300], y[:300], **{**base, "n_clusters": 2})  # warm-up (imports, threads)

    if "1" in sections:
        ks = [2, 8] if quick else [2, 4, 8, 16]
        configs = {}
        for impl in ("before", "after"):
            for k in [1, *ks]:
                configs[(impl, k)] = lambda impl=impl, k=k: fit_time(
                    X, y, impl, n_clusters=k, **base
                )
        configs[("after", "8, KMeans n_init=1")] = lambda: fit_time(
            X, y, "after", routing=_kmeans_n_init_1(8), **base
        )
        med, imbalance = run_grid(configs, repeats)
        print("\n## 1. fit time, RTL (KMeans, K tickets) / single ticket (K=1)")
        print(
            "| K | imbalance | before: s | before: ratio | after: s | after: ratio "
            "| speed-up | KMeans router: s | after, training only: ratio |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        a1 = med[("after", 1)] - imbalance[("after", 1)][1]
        for k in [1, *ks, "8, KMeans n_init=1"]:
            b = med.get(("before", k), float("nan"))
            a = med[("after", k)]
            imb, route = imbalance[("after", k)]
            print(
                f"| {k} | {imb:.2f} | {b:.2f} | {b / med[('before', 1)]:.2f} "
                f"| {a:.2f} | {a / med[('after', 1)]:.2f} | {b / a:.2f}x | {route:.2f} "
                f"| {(a - route) / a1:.2f} |"
            )

    if "2" in sections:
        k = 8
        epochs = (base["n_prune_rounds"] + 1) * base["max_epochs"]
        configs = {
            "single ticket (K=1)": lambda: fit_time(X, y, n_clusters=1, **base),
            f"RTL K={k}": lambda: fit_time(X, y, n_clusters=k, **base),
            f"share_weights=False K={k}": lambda: fit_time(
                X, y, n_clusters=k, share_weights=False, **base
            ),
            f"dense skorch NeuralNetClassifier, {epochs} epochs": lambda: dense_time(
                X, y, hidden, epochs
            ),
        }
        med, _ = run_grid(configs, repeats)
        rtl = med[f"RTL K={k}"]
        print(f"\n## 2. fit time vs baselines (same total epochs = {epochs})")
        print("| model | s | RTL / model |")
        print("|---|---|---|")
        for label, t in med.items():
            print(f"| {label} | {t:.2f} | {rtl / t:.2f} |")

    if "5" in sections:
        scale = dict(base, n_prune_rounds=1, max_epochs=1)
        sizes = [2000, 8000] if quick else [2000, 8000, 20000, 60000]
        X_all, y_all = load_fashion_mnist(n_samples=max(sizes), seed=1)
        configs = {}
        for size in sizes:
            for k in (1, 8):
                configs[(size, k)] = lambda size=size, k=k: fit_time(
                    X_all[:size], y_all[:size], n_clusters=k, **scale
                )
        med, imbalance = run_grid(configs, 1 if not quick else 1)
        print("\n## 5a. fit time vs n_samples (1 round x 1 epoch + retrain, 1 run each)")
        print(
            "| n_samples | K=1: s | K=8: s | ratio | imbalance | K=8 router: s | K=1 us/sample-epoch |"
        )
        print("|---|---|---|---|---|---|---|")
        for size in sizes:
            t1, t8 = med[(size, 1)], med[(size, 8)]
            print(
                f"| {size} | {t1:.2f} | {t8:.2f} | {t8 / t1:.2f} | {imbalance[(size, 8)][0]:.2f} "
                f"| {imbalance[(size, 8)][1]:.2f} | {t1 / (2 * size) * 1e6:.0f} |"
            )
        widths = [(64, 64), (256, 256)] if quick else [(64, 64), (256, 256), (1024, 1024)]
        Xw, yw = X_all[:4000], y_all[:4000]
        configs = {}
        for width in widths:
            for k in (1, 8):
                configs[(width, k)] = lambda width=width, k=k: fit_time(
                    Xw, yw, n_clusters=k, **dict(scale, hidden_layer_sizes=width)
                )
        med, imbalance = run_grid(configs, repeats)
        print("\n## 5b. fit time vs width (n=4000, 1 round x 1 epoch + retrain)")
        print("| hidden | K=1: s | K=8: s | ratio | imbalance | K=8 router: s |")
        print("|---|---|---|---|---|---|")
        for width in widths:
            t1, t8 = med[(width, 1)], med[(width, 8)]
            print(
                f"| {width} | {t1:.2f} | {t8:.2f} | {t8 / t1:.2f} | {imbalance[(width, 8)][0]:.2f} | {imbalance[(width, 8)][1]:.2f} |"
            )


if __name__ == "__main__":
    main()
