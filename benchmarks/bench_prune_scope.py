"""prune_scope="layer" vs "global": balanced accuracy on held-out data.

load_digits (70/30 split) and a Fashion-MNIST subset (train subset / test subset),
routing "label" and "kmeans", sparsity 0.8 and 0.95, several seeds. Prints one row per
setting with the mean (and per-seed) balanced accuracy of both scopes and their difference.

    python benchmarks/bench_prune_scope.py [--quick] [--seeds 0 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_digits_data, load_fashion_mnist, machine  # noqa: E402
from _impl import set_threads  # noqa: E402

from sklearn_rtl import RTLClassifier  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    args = parser.parse_args()
    set_threads(args.threads)
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    Xd, yd = load_digits_data()
    digits = train_test_split(Xd, yd, test_size=0.3, stratify=yd, random_state=0)
    n_train = 600 if args.quick else 4000
    Xf, yf = load_fashion_mnist("train", n_samples=n_train, seed=0)
    Xt, yt = load_fashion_mnist("test", n_samples=500 if args.quick else 2000, seed=0)
    datasets = {"digits": digits, f"fashion{n_train // 1000}k": (Xf, Xt, yf, yt)}
    common = dict(
        min_cluster_size=0,  # K tickets whatever the cluster sizes
        hidden_layer_sizes=(64, 64) if args.quick else (256, 256),
        n_prune_rounds=2 if args.quick else 3,
        max_epochs=2 if args.quick else 5,
    )
    print(f"# bench_prune_scope: {machine()}; threads={args.threads}")
    print(f"# {common}, KMeans n_clusters=4, seeds={seeds}")
    print(
        "| data | routing | sparsity | layer BA | global BA | global - layer | per seed (layer / global) |"
    )
    print("|---|---|---|---|---|---|---|")
    for data_name, (X_tr, X_te, y_tr, y_te) in datasets.items():
        for routing in ("label", "kmeans"):
            for sparsity in (0.8, 0.95):
                scores = {"layer": [], "global": []}
                for seed in seeds:
                    for scope in scores:
                        clf = RTLClassifier(
                            routing=routing,
                            n_clusters=4,
                            sparsity=sparsity,
                            prune_scope=scope,
                            random_state=seed,
                            **common,
                        )
                        clf.fit(X_tr, y_tr)
                        scores[scope].append(balanced_accuracy_score(y_te, clf.predict(X_te)))
                lay, glo = np.mean(scores["layer"]), np.mean(scores["global"])
                per_seed = ", ".join(
                    f"{a:.3f}/{b:.3f}"
                    for a, b in zip(scores["layer"], scores["global"], strict=False)
                )
                print(
                    f"| {data_name} | {routing} | {sparsity} | {lay:.3f} | {glo:.3f} | {glo - lay:+.3f} "
                    f"| {per_seed} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
