"""Neuron-level against weight-level tickets: quality at the default sparsity.

Issue 22 asks whether ``prune_granularity="neuron"`` (whole units removed, a ticket that
runs as a physically smaller network) should become the default. This measures it:

* the 17 classification tables of ``bench_quality.py`` (same loader, same splits: 5-fold
  CV, or 5 stratified 70/30 splits on tables of 3,000+ rows; every split seeds its models
  with its index), balanced accuracy of the default ``RTLClassifier()`` (KMeans K=4,
  weight tickets), the same with ``prune_granularity="neuron"``, and ``MLPClassifier()``,
  each inside ``make_pipeline(StandardScaler(), model)``; the gaps with their standard
  errors over the paired splits;
* ``--images``: the default CNN on Fashion-MNIST (``--n-train`` training rows, the test
  set), weight against neuron tickets (whole channels removed).

One thread. Results are appended to ``benchmarks/results/granularity.jsonl`` table by
table (a partial run keeps what it measured) and rendered in ``granularity.md``.

    python benchmarks/bench_granularity.py [--quick] [--tables iris ...] [--images]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.neural_network import MLPClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _impl import set_threads  # noqa: E402
from bench_quality import ALSO_USED, NAMED, UNSEEN, evaluate, load_table  # noqa: E402

from sklearn_rtl import RTLClassifier  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = {
    "weight": lambda seed: RTLClassifier(random_state=seed),
    "neuron": lambda seed: RTLClassifier(prune_granularity="neuron", random_state=seed),
    "MLPClassifier": lambda seed: MLPClassifier(random_state=seed),
}


def _gap(a, b):
    """Mean of the paired differences and its standard error."""
    d = np.asarray(a) - np.asarray(b)
    return d.mean(), d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else 0.0


def tables_run(tables, folds, out):
    for table in tables:
        X, y = load_table(table)
        record = {"table": table, "rows": len(X)}
        for name, make in MODELS.items():
            scores, seconds = evaluate(make, X, y, folds)
            record[name] = {"scores": scores.tolist(), "fit_s": float(seconds.mean())}
            print(f"{table:>14} {name:>14}: {scores.mean():.4f}  {seconds.mean():6.2f} s",
                  flush=True)  # fmt: skip
        with open(out, "a") as f:
            f.write(json.dumps(record) + "\n")


def images_run(n_train, out):
    from _common import load_fashion_mnist
    from sklearn.metrics import balanced_accuracy_score

    X, y = load_fashion_mnist("train", n_train)
    X_test, y_test = load_fashion_mnist("test")
    X, X_test = X.reshape(-1, 28, 28), X_test.reshape(-1, 28, 28)
    record = {"table": f"fashion-mnist CNN ({n_train} rows)", "rows": len(X)}
    for name in ("weight", "neuron"):
        model = MODELS[name](0)
        start = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - start
        score = balanced_accuracy_score(y_test, model.predict(X_test))
        record[name] = {"scores": [score], "fit_s": seconds, "n_tickets": model.n_tickets_}
        print(f"fashion-mnist {name}: {score:.4f} {seconds:.0f} s", flush=True)
    with open(out, "a") as f:
        f.write(json.dumps(record) + "\n")


def markdown(records):
    lines = [
        "| table | rows | weight | neuron | MLPClassifier | neuron - weight | "
        "neuron - MLP | weight - MLP | fit s (weight / neuron) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        w, n = r["weight"]["scores"], r["neuron"]["scores"]
        m = r.get("MLPClassifier", {}).get("scores")
        cells = [f"{np.mean(s):.3f}" if s else "" for s in (w, n, m)]
        gaps = [_gap(n, w)] + ([_gap(n, m), _gap(w, m)] if m else [])
        gap_cells = [f"{g:+.3f}" + (f" ± {e:.3f}" if len(w) > 1 else " (one split)")
                     for g, e in gaps] + [""] * (3 - len(gaps))  # fmt: skip
        fit = f"{r['weight']['fit_s']:.1f} / {r['neuron']['fit_s']:.1f}"
        lines.append(f"| {r['table']} | {r['rows']} | " + " | ".join(cells + gap_cells)
                     + f" | {fit} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="iris, 2 folds")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--tables", nargs="*", default=None)
    parser.add_argument("--images", action="store_true")
    parser.add_argument("--n-train", type=int, default=10000)
    args = parser.parse_args(argv)
    set_threads(1)
    stem = "granularity_quick" if args.quick else "granularity"
    out = RESULTS / f"{stem}.jsonl"
    if args.quick:
        out.unlink(missing_ok=True)
        tables_run(["iris"], 2, out)
    elif args.images:
        images_run(args.n_train, out)
    else:
        tables_run(args.tables or NAMED + ALSO_USED + UNSEEN, args.folds, out)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    (RESULTS / f"{stem}.md").write_text(markdown(records))
    print(markdown(records))


if __name__ == "__main__":
    main()
