"""Predict speed of tickets against the dense network of the same width, on one thread.

Rows per second of ``predict_proba`` at 1, 64 and 4,096 rows per call for

* the 784-256-256-10 ticket (one KMeans cluster) at sparsity 0.9 and 0.95,
* 4 KMeans tickets at sparsity 0.9 (``min_cluster_size=0``),
* a neuron-level ticket and 4 KMeans neuron-level tickets at sparsity 0.9
  (``prune_granularity="neuron"``; skipped on a version without that parameter),

against the dense torch network of the same width (its bare forward, no validation),
``MLPClassifier(hidden_layer_sizes=(256, 256)).predict_proba`` and the FLOP ideal: a dense
torch network whose hidden widths are scaled so that its weights equal one ticket's kept
weights. Rounds are interleaved; every figure is a median. Torch and BLAS run one thread
(``_impl.set_threads``). Also the one-row ``predict_proba`` latency against MLPClassifier's.

Fashion-MNIST rows where Debian's ``dataset-fashion-mnist`` is installed, else random
rows of 784 features (``make_classification``; the speed does not depend on the values).

    python benchmarks/bench_speed.py --label before   # on the code before a change
    python benchmarks/bench_speed.py --label after    # after it
    python benchmarks/bench_speed.py --quick          # seconds: the test suite's smoke run

Merges its results under ``label`` into ``benchmarks/results/speed.json`` and renders every
label in ``speed.md`` (``speed_quick.*`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_fashion_mnist, machine, median  # noqa: E402
from _impl import set_threads  # noqa: E402

from sklearn_rtl import RTLClassifier  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def load(n_train, quick):
    """Training rows and a pool of rows to predict (784 features, float32)."""
    try:
        X, y = load_fashion_mnist("train", n_train)
        X_pred, _ = load_fashion_mnist("test", 512 if quick else 4096)
        return X, y, X_pred, "Fashion-MNIST"
    except FileNotFoundError:
        from sklearn.datasets import make_classification

        n_pred = 512 if quick else 4096
        X, y = make_classification(
            n_train + n_pred, 784, n_informative=50, n_classes=10, n_clusters_per_class=1,
            random_state=0,
        )  # fmt: skip
        X = X.astype(np.float32)
        return X[:n_train], y[:n_train], X[n_train:], "random rows (make_classification)"


def tickets(hidden):
    """``({row name: RTLClassifier}, [skipped row names])``: the tickets to time; a row
    whose parameter the estimator does not have yet is skipped."""
    common = dict(
        hidden_layer_sizes=hidden, max_epochs=1, max_prune_epochs=1, n_prune_rounds=1,
        min_cluster_size=0, random_state=0,
    )  # fmt: skip
    rows = {
        "ticket, sparsity 0.9": dict(n_clusters=1, sparsity=0.9),
        "ticket, sparsity 0.95": dict(n_clusters=1, sparsity=0.95),
        "4 KMeans tickets, sparsity 0.9": dict(n_clusters=4, sparsity=0.9),
        "neuron ticket, sparsity 0.9": dict(n_clusters=1, sparsity=0.9, prune_granularity="neuron"),
        "4 KMeans neuron tickets, sparsity 0.9": dict(
            n_clusters=4, sparsity=0.9, prune_granularity="neuron"
        ),
    }
    known = RTLClassifier().get_params()
    ready = {name: all(key in known for key in params) for name, params in rows.items()}
    models = {name: RTLClassifier(**common, **rows[name]) for name in rows if ready[name]}
    return models, [name for name in rows if not ready[name]]


def dense_torch(widths):
    """A dense Linear/ReLU network of ``widths`` (input first), in eval mode."""
    torch.manual_seed(0)
    layers = []
    for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
        layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1]).eval()


def kept_weights(clf):
    """Weights one ticket multiplies per row: its kept masked weights plus the dense ones
    (ticket 0)."""
    network = clf.net_.module_
    masks = network.get_masks()
    total = 0
    for name, weight in network.get_weights().items():
        if name.endswith("weight"):
            total += int(masks[name][0].sum()) if name in masks else weight[0].numel()
    return total


def ideal_widths(n_in, hidden, n_out, kept):
    """Hidden widths scaled by one factor so the dense network has ``kept`` weights."""
    dense = sum(a * b for a, b in zip((n_in, *hidden), (*hidden, n_out), strict=True))
    scale = math.sqrt(kept / dense)  # exact for equal widths, n_in and n_out small terms
    for _ in range(50):  # solve sum(widths products) = kept for the factor
        widths = [max(1, round(h * scale)) for h in hidden]
        got = sum(a * b for a, b in zip((n_in, *widths), (*widths, n_out), strict=True))
        scale *= math.sqrt(kept / got) if got else 2.0
    return [n_in, *[max(1, round(h * scale)) for h in hidden], n_out]


def torch_forward(module):
    def run(X):
        with torch.inference_mode():
            return module(torch.from_numpy(X))

    return run


def measure(fns, X_pool, sizes, rounds, budget):
    """Median seconds per call of every function at every size; rounds interleaved."""
    times = {(name, n): [] for name in fns for n in sizes}
    for fn in fns.values():  # warm-up (and the lazily built inference caches)
        for n in sizes:
            fn(X_pool[:n])
    for _ in range(rounds):
        for n in sizes:
            X = X_pool[:n]
            reps = max(1, int(budget / max(n, 16)))
            for name, fn in fns.items():
                start = time.perf_counter()
                for _ in range(reps):
                    fn(X)
                times[(name, n)].append((time.perf_counter() - start) / reps)
    return {key: median(values) for key, values in times.items()}


def run(quick):
    hidden = (64, 64) if quick else (256, 256)
    X, y, X_pred, data = load(300 if quick else 2000, quick)
    sizes = (1, 64, 512) if quick else (1, 64, 4096)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        models, skipped = tickets(hidden)
        models = {name: clf.fit(X, y) for name, clf in models.items()}
        mlp = MLPClassifier(hidden_layer_sizes=hidden, max_iter=1, random_state=0).fit(X, y)
    n_out = len(np.unique(y))
    fns = {"dense torch": torch_forward(dense_torch([784, *hidden, n_out]))}
    fns["MLPClassifier"] = mlp.predict_proba
    ideal = {}
    for name, clf in models.items():
        fns[name] = clf.predict_proba
        widths = ideal_widths(784, hidden, n_out, kept_weights(clf))
        ideal[name] = widths
        fns[f"FLOP ideal of {name}"] = torch_forward(dense_torch(widths))
    rounds, budget = (3, 200) if quick else (7, 20000)
    seconds = measure(fns, X_pred, sizes, rounds, budget)
    kernels = {}
    for name, clf in models.items():
        network = clf.net_.module_
        if hasattr(network, "inference_kernels"):
            kernels[name] = network.inference_kernels()
    return {
        "machine": machine(),
        "data": data,
        "hidden": list(hidden),
        "sizes": list(sizes),
        "seconds": {f"{name}|{n}": s for (name, n), s in seconds.items()},
        "tickets": list(models),
        "skipped": skipped,
        "ideal_widths": ideal,
        "kernels": kernels,
    }


def render(results):
    """Markdown tables of every label in ``results``."""
    lines = ["# Predict speed on one thread (`benchmarks/bench_speed.py`)", ""]
    for label, r in results.items():
        sizes, sec = r["sizes"], r["seconds"]
        lines += [f"## {label}", "", f"{r['machine']}; {r['data']}; hidden {r['hidden']}.", ""]
        lines += ["| model | " + " | ".join(f"{n} rows: rows/s (x dense)" for n in sizes) + " |"]
        lines += ["|---|" + "---|" * len(sizes)]
        names = ["dense torch", "MLPClassifier"]
        for name in r["tickets"]:
            names += [name, f"FLOP ideal of {name}"]
        for name in names:
            cells = []
            for n in sizes:
                s, dense = sec[f"{name}|{n}"], sec[f"dense torch|{n}"]
                cells.append(f"{n / s:,.0f} ({dense / s:.2f}x)")
            width = ""
            if name.startswith("FLOP ideal of "):
                width = f" (widths {r['ideal_widths'][name[len('FLOP ideal of ') :]]})"
            lines.append(f"| {name}{width} | " + " | ".join(cells) + " |")
        mlp = sec["MLPClassifier|1"]
        lines += ["", "One-row `predict_proba` latency:", ""]
        lines += ["| model | ms | / MLPClassifier |", "|---|---|---|"]
        lines.append(f"| MLPClassifier | {mlp * 1e3:.3f} | 1.00 |")
        for name in r["tickets"]:
            s = sec[f"{name}|1"]
            lines.append(f"| {name} | {s * 1e3:.3f} | {s / mlp:.2f} |")
        for name in r.get("skipped", []):
            lines.append(f"\n{name}: skipped (the estimator has no such parameter yet).")
        for name, layers in r.get("kernels", {}).items():
            chosen = ", ".join(f"{layer}: {'/'.join(k)}" for layer, k in layers.items())
            lines.append(f"\nKernels of {name}: {chosen}.")
        lines.append("")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--label", default="after", help="key of this run in the results")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    stem = "speed_quick" if args.quick else "speed"
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{stem}.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results[args.label] = run(args.quick)
    path.write_text(json.dumps(results, indent=1) + "\n")
    lines = render(results)
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return results


if __name__ == "__main__":
    main()
