"""Fashion-MNIST with the default CNN: RTL vs single ticket vs independent tickets, shared vs
per-ticket batch-norm statistics, and per-layer mask similarity (shallow vs deep).

CPU, small on purpose (a 5k-image training subset, a 2k-image test subset, a few epochs):

    .venv/bin/python benchmarks/bench_fashion_cnn.py            # ~5 min on 1 core
    .venv/bin/python benchmarks/bench_fashion_cnn.py --n-train 1000 --n-test 500 --epochs 1

Images come from Debian's ``dataset-fashion-mnist`` (nothing is downloaded; see
``_common.py``). Prints Markdown tables (the ones in ``docs/images.md``) and, with
``--json PATH``, writes every number.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_fashion_mnist, machine, timed  # noqa: E402

from sklearn_rtl import RTLClassifier, random_mask_jaccard  # noqa: E402

CONFIGS = {
    # name: estimator parameters on top of the shared ones
    "RTL (K=4), shared BN": dict(n_clusters=4, ticket_batchnorm=False),
    "RTL (K=4), per-ticket BN": dict(n_clusters=4, ticket_batchnorm=True),
    "single ticket (IMP)": dict(n_clusters=1),
    "independent tickets (K=4), shared BN": dict(
        n_clusters=4, share_weights=False, ticket_batchnorm=False
    ),
    "independent tickets (K=4), per-ticket BN": dict(
        n_clusters=4, share_weights=False, ticket_batchnorm=True
    ),
}


def run(args):
    torch.set_num_threads(args.threads)
    X, y = load_fashion_mnist("train", args.n_train, seed=args.seed)
    X_test, y_test = load_fashion_mnist("test", args.n_test, seed=args.seed)
    X, X_test = X.reshape(-1, 1, 28, 28), X_test.reshape(-1, 1, 28, 28)
    common = dict(
        min_cluster_size=0,  # K tickets whatever the cluster sizes
        module_params={"channels": tuple(args.channels)},
        sparsity=args.sparsity,
        n_prune_rounds=args.rounds,
        max_epochs=args.epochs,
        batch_size=64,
        lr=args.lr,
        random_state=args.seed,
    )
    results = {}
    for name, params in CONFIGS.items():
        if args.only and not any(part in name for part in args.only):
            continue
        clf = RTLClassifier(**common, **params)
        seconds, _ = timed(clf.fit, X, y)
        ba = balanced_accuracy_score(y_test, clf.predict(X_test))
        layers = list(clf.layer_similarity_)
        k = clf.n_tickets_
        off_diagonal = ~np.eye(k, dtype=bool)
        layer_sim = {
            n: float(s[off_diagonal].mean()) if k > 1 else 1.0
            for n, s in clf.layer_similarity_.items()
        }
        results[name] = {
            "balanced_accuracy": float(ba),
            "fit_seconds": seconds,
            "n_params": clf.n_params_,
            "n_params_dense": clf.n_params_dense_,
            "n_tickets": k,
            "collapse_score": float(clf.collapse_score_),
            "layer_similarity": layer_sim,
            "layer_sparsity": {n: float(v.mean()) for n, v in clf.layer_sparsity_.items()},
            "layer_size": {n: int(clf.masks_[0][n].size) for n in layers},
        }
        print(f"{name}: BA {ba:.3f}, fit {seconds:.1f} s", file=sys.stderr, flush=True)
    return results


def report(results, args):
    lines = [
        f"Fashion-MNIST, {args.n_train} train / {args.n_test} test images (random subsets, "
        f"seed {args.seed}); default `SmallCNN` with channels {tuple(args.channels)}; "
        f"sparsity {args.sparsity}, {args.rounds} pruning rounds, {args.epochs} epochs per "
        f"stage, batch 64 per ticket, Adam lr {args.lr}, KMeans routing on pixels.",
        f"Machine: {machine()}.",
        "",
        "| model | balanced accuracy | fit time (s) | weights kept (of dense) | collapse score |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['balanced_accuracy']:.3f} | {r['fit_seconds']:.0f} | "
            f"{r['n_params']:,} ({r['n_params_dense']:,}) | {r['collapse_score']:.3f} |"
        )
    multi = {n: r for n, r in results.items() if r["n_tickets"] > 1}
    if multi:
        layers = list(next(iter(multi.values()))["layer_similarity"])
        sizes = next(iter(multi.values()))["layer_size"]
        density = 1.0 - args.sparsity
        lines += [
            "",
            "Mean pairwise Jaccard similarity of the ticket masks per conv layer (shallow to "
            f"deep); random masks of density {density:.2f} would score "
            f"{random_mask_jaccard(density):.3f}.",
            "",
            "| model | " + " | ".join(f"{n} ({sizes[n]:,} w)" for n in layers) + " |",
            "|---|" + "---|" * len(layers),
        ]
        for name, r in multi.items():
            lines.append(
                f"| {name} | "
                + " | ".join(f"{r['layer_similarity'][n]:.3f}" for n in layers)
                + " |"
            )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sparsity", type=float, default=0.8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--channels", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", nargs="*", help="run only configs whose name contains one")
    parser.add_argument("--json", type=Path, help="also write every number here")
    args = parser.parse_args(argv)
    results = run(args)
    print(report(results, args))
    if args.json:
        args.json.write_text(
            json.dumps(
                {"args": vars(args) | {"json": str(args.json)}, "results": results}, indent=2
            )
        )


if __name__ == "__main__":
    main()
