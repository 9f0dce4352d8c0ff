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
    # many short interleaved rounds: a burst of load from another tenant of the machine
    # lands in few of them, and the median drops it
    rounds, budget = (3, 200) if quick else (15, 10000)
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


def hand_written_fit(X, y, hidden, epochs, batch_size=200, seed=0):
    """Seconds of a plain torch loop over the dense network: Adam, shuffled mini-batches."""
    torch.manual_seed(seed)
    net = dense_torch([X.shape[1], *hidden, int(y.max()) + 1]).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(Xt))
        for i in range(0, len(Xt), batch_size):
            rows = order[i : i + batch_size]
            loss = torch.nn.functional.cross_entropy(net(Xt[rows]), yt[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return time.perf_counter() - start


def training(quick):
    """A fit with fixed epochs (``tol=0``: one pruning round and the retraining, ``E``
    epochs each) against the hand-written loop running the same ``2E`` epochs over the
    dense network of the same width; rounds interleaved, medians."""
    hidden = (64, 64) if quick else (256, 256)
    X, y, _, data = load(300 if quick else 4000, quick)
    epochs, rounds = (1, 1) if quick else (5, 5)
    fixed = dict(
        hidden_layer_sizes=hidden, n_prune_rounds=1, max_prune_epochs=epochs,
        max_epochs=epochs, tol=0.0, n_iter_no_change=10**6, sparsity=0.9, random_state=0,
    )  # fmt: skip
    fits = {
        "single ticket": dict(n_clusters=1),
        "4 KMeans tickets": dict(n_clusters=4, min_cluster_size=0),
        "neuron ticket": dict(n_clusters=1, prune_granularity="neuron"),
    }
    known = RTLClassifier().get_params()
    fits = {name: p for name, p in fits.items() if all(k in known for k in p)}
    times = {name: [] for name in [*fits, "hand-written loop"]}
    hand_written_fit(X, y, hidden, 1)  # warm-up
    RTLClassifier(**{**fixed, "max_epochs": 1, "max_prune_epochs": 1}).fit(X, y)
    for _ in range(rounds):
        times["hand-written loop"].append(hand_written_fit(X, y, hidden, 2 * epochs))
        for name, params in fits.items():
            start = time.perf_counter()
            RTLClassifier(**fixed, **params).fit(X, y)
            times[name].append(time.perf_counter() - start)
    return {
        "data": data, "hidden": list(hidden), "epochs": 2 * epochs, "rows": len(X),
        "seconds": {name: median(t) for name, t in times.items()},
    }  # fmt: skip


def render_training(r):
    hand = r["seconds"]["hand-written loop"]
    lines = ["## Training: fixed epochs against a hand-written torch loop", "",
             f"{r['rows']} rows ({r['data']}), hidden {r['hidden']}, {r['epochs']} epochs "
             f"(one pruning round and the retraining, half each), Adam, batch 200.", "",
             "| fit | seconds | / hand-written loop |", "|---|---|---|"]  # fmt: skip
    lines += [f"| {name} | {s:.2f} | {s / hand:.2f} |" for name, s in r["seconds"].items()]
    return lines + [""]


def render(results):
    """Markdown tables of every label in ``results``."""
    lines = ["# Predict speed on one thread (`benchmarks/bench_speed.py`)", ""]
    for label, r in results.get("training", {}).items():
        lines += [f"{label}:", ""] + render_training(r)
    for label, r in results.items():
        if label == "training":
            continue
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
    parser.add_argument("--training", action="store_true", help="only the training ratio")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    stem = "speed_quick" if args.quick else "speed"
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{stem}.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    if args.training or args.quick:
        results.setdefault("training", {})[args.label] = training(args.quick)
    if not args.training:
        results[args.label] = run(args.quick)
    path.write_text(json.dumps(results, indent=1) + "\n")
    lines = render(results)
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return results


if __name__ == "__main__":
    main()
