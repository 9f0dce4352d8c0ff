"""Predict throughput of routed tickets vs the single ticket, and sparse formats.

3. samples/s of ``predict`` on the Fashion-MNIST test set for the single ticket
   (n_clusters=1), KMeans routing (K=8) and label routing (10 class tickets); "before"
   (generic per-ticket ``functional_call``) vs "after" (batched Linear/ReLU path) on the
   same fitted models, interleaved, medians.
   Also: whether torch sparse formats (CSR, COO) beat a dense matmul for the masked first
   layer (784 -> 256, the largest) at 90% and 95% sparsity.

    python benchmarks/bench_predict.py [--quick] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_fashion_mnist, machine, median  # noqa: E402
from _impl import set_threads  # noqa: E402

from sklearn_rtl import RTLClassifier  # noqa: E402


def throughput(clf, X, fast, repeats):
    clf.net_.module_.fast_path = fast
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        clf.predict(X)
        times.append(time.perf_counter() - start)
    clf.net_.module_.fast_path = True
    return len(X) / median(times)


def sparse_vs_dense(X, weight, mask, repeats):
    dense_w = weight * mask
    csr = dense_w.to_sparse_csr()
    coo = dense_w.to_sparse_coo().coalesce()
    Xt = X.T.contiguous()
    fns = {
        "dense": lambda: X @ dense_w.T,
        "CSR": lambda: torch.sparse.mm(csr, Xt).T,
        "COO": lambda: torch.sparse.mm(coo, Xt).T,
    }
    ref = fns["dense"]()
    for fn in fns.values():
        torch.testing.assert_close(fn(), ref, rtol=1e-3, atol=1e-3)
    times = {name: [] for name in fns}
    with torch.inference_mode():
        for _ in range(repeats):
            for name, fn in fns.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return {name: median(v) for name, v in times.items()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    set_threads(args.threads)
    quick = args.quick
    repeats = 3 if quick else 7
    X, y = load_fashion_mnist("train", n_samples=1000 if quick else 6000, seed=0)
    X_test, _ = load_fashion_mnist("test", n_samples=1000 if quick else None)
    hidden = (64, 64) if quick else (256, 256)
    common = dict(
        min_cluster_size=0,  # K tickets whatever the cluster sizes
        hidden_layer_sizes=hidden,
        n_prune_rounds=2,
        max_epochs=1,
        sparsity=0.9,
        random_state=0,
    )
    models = {
        "single ticket (K=1)": RTLClassifier(n_clusters=1, **common).fit(X, y),
        "KMeans K=8": RTLClassifier(n_clusters=8, **common).fit(X, y),
        "label, 10 tickets": RTLClassifier(routing="label", **common).fit(X, y),
    }
    print(f"# bench_predict: {machine()}; threads={args.threads}")
    print(
        f"# predict on {len(X_test)} Fashion-MNIST test rows, MLP 784-{'-'.join(map(str, hidden))}-10, "
        f"sparsity 0.9, median of {repeats}"
    )
    for clf in models.values():  # warm-up
        clf.predict(X_test[:100])
    results = {(name, fast): [] for name in models for fast in (False, True)}
    for _ in range(2):
        for name, clf in models.items():
            for fast in (False, True):
                results[(name, fast)].append(throughput(clf, X_test, fast, repeats))
    tp = {key: median(v) for key, v in results.items()}
    single = {fast: tp[("single ticket (K=1)", fast)] for fast in (False, True)}
    print("\n## 3. predict throughput (samples/s) and ratio to the single ticket")
    print(
        "| model | before: samples/s | before: ratio | after: samples/s | after: ratio | speed-up |"
    )
    print("|---|---|---|---|---|---|")
    for name in models:
        b, a = tp[(name, False)], tp[(name, True)]
        print(
            f"| {name} | {b:,.0f} | {b / single[False]:.2f} | {a:,.0f} | {a / single[True]:.2f} "
            f"| {a / b:.2f}x |"
        )

    print("\n## 3b. masked first layer (784 -> 256) on the test rows: sparse formats vs dense")
    print("| sparsity | dense: ms | CSR: ms | COO: ms | CSR / dense | COO / dense |")
    print("|---|---|---|---|---|---|")
    torch.manual_seed(0)
    Xt = torch.as_tensor(X_test)
    weight = torch.randn(256, 784)
    for sparsity in (0.9, 0.95):
        mask = torch.rand(256, 784) >= sparsity
        t = sparse_vs_dense(Xt, weight, mask, repeats)
        print(
            f"| {sparsity} | {t['dense'] * 1e3:.2f} | {t['CSR'] * 1e3:.2f} | {t['COO'] * 1e3:.2f} "
            f"| {t['CSR'] / t['dense']:.2f} | {t['COO'] / t['dense']:.2f} |"
        )


if __name__ == "__main__":
    main()
