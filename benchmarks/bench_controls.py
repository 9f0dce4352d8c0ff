"""The lottery-ticket controls of ``compare_baselines`` on real data (issue 23).

Does a ticket's initialization θ0, and does its mask, matter? ``compare_baselines`` scores
the estimator next to OpenLTH's two control branches: the same masks retrained from a new
random initialization, and random masks of the same per-layer sparsity retrained from θ0.

* three tables of ``bench_quality.py`` with the default ``RTLClassifier()`` where the
  default floor keeps several tickets in every fold: phoneme (where KMeans tickets pay),
  satimage and spambase (where they do not);
* rotated Fashion-MNIST (4,000 rows, 4 environments rotated by 0/90/180/270 degrees, as
  in ``experiments/heterogeneous.py``), routed by the environment (``routing="groups"``),
  MLP (256, 128), sparsity 0.9.

Stratified 3-fold cross-validation (shuffled, seed 0), balanced accuracy, one thread.
Writes ``benchmarks/results/controls.md`` (``--out`` for another name).

    python benchmarks/bench_controls.py [--quick] [--only tables|images] [--out NAME]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from _impl import set_threads  # noqa: E402
from bench_quality import load_table  # noqa: E402

from sklearn_rtl import RTLClassifier, compare_baselines  # noqa: E402

RESULTS = ROOT / "results"


def rotated_fashion(n_rows, seed=0):
    """Fashion-MNIST rows, each rotated by 0, 90, 180 or 270 degrees (its environment), as
    ``experiments/heterogeneous.py`` builds them."""
    from _common import load_fashion_mnist

    X, y = load_fashion_mnist("train", n_rows, seed=seed)
    env = np.random.default_rng(seed).integers(0, 4, len(X))
    images = X.reshape(-1, 28, 28)
    out = np.empty_like(images)
    for e in range(4):
        out[env == e] = np.rot90(images[env == e], k=e, axes=(1, 2))
    return out.reshape(-1, 784), y, env


def cases(quick, only=None):
    if quick:
        X, y = load_table("iris")
        small = dict(hidden_layer_sizes=(8,), max_epochs=2, n_prune_rounds=1, random_state=0)
        yield "iris (tiny, smoke)", RTLClassifier(**small), X, y, None
        return
    for table in ("phoneme", "satimage", "spambase") if only != "images" else ():
        X, y = load_table(table)
        yield table, make_pipeline(StandardScaler(), RTLClassifier(random_state=0)), X, y, None
    if only == "tables":
        return
    X, y, env = rotated_fashion(4000)
    rtl = RTLClassifier(
        routing="groups", hidden_layer_sizes=(256, 128), sparsity=0.9, random_state=0
    )
    yield "rotated Fashion-MNIST, groups", rtl, X, y, env


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["tables", "images"], default=None)
    parser.add_argument("--out", default="controls")
    args = parser.parse_args(argv)
    set_threads(1)
    lines = ["# Lottery-ticket controls (`benchmarks/bench_controls.py`)", "",
             "Balanced accuracy, stratified 3-fold CV, shuffled (mean ± std over folds).", ""]  # fmt: skip
    cv = StratifiedKFold(2 if args.quick else 3, shuffle=True, random_state=0)
    for name, estimator, X, y, groups in cases(args.quick, args.only):
        table = compare_baselines(
            estimator, X, y, groups=groups, cv=cv,
            scoring="balanced_accuracy",
        )  # fmt: skip
        models = list(table["model"])
        lines += [f"## {name}", "", "| model | balanced accuracy | weights stored | fit s |",
                  "|---|---|---|---|"]  # fmt: skip
        for i, model in enumerate(models):
            mean, std = float(table["score_mean"][i]), float(table["score_std"][i])
            lines.append(f"| {model} | {mean:.3f} ± {std:.3f} | "
                         f"{float(table['n_params'][i]):,.0f} | {float(table['fit_time'][i]):.1f} |")  # fmt: skip
        lines.append("")
        print("\n".join(lines[-len(models) - 5 :]), flush=True)
        stem = "controls_quick" if args.quick else args.out
        (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")  # after every case
    return lines


if __name__ == "__main__":
    main()
