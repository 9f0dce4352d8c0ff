"""Collapse curves (paper Fig. 2) and the evidence for the collapse rules.

For every dataset, routing and seed: extract tickets well past collapse (to 99% sparsity,
12 rounds), recording per round the sparsity, mean pairwise Jaccard (global, per ticket,
per layer), the random-mask level and the held-out balanced accuracy (20% of the training
rows; copies trained under that round's masks). Then score label-free rules against the
accuracy drop, plot, and write JSON.

    python experiments/collapse_curves.py            # full run (~15 min on 2 CPU cores)
    python experiments/collapse_curves.py --quick    # seconds, for the tests
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from sklearn_rtl import (  # noqa: E402
    RTLClassifier,
    collapse_from_scores,
    detect_collapse,
    similarity_lift,
)

FULL = dict(
    settings=[
        ("fashion", "label"),
        ("fashion", "kmeans"),
        ("fashion", "groups"),
        ("digits", "label"),
        ("digits", "kmeans"),
        ("penbased", "label"),
        ("penbased", "kmeans"),
    ],
    seeds=[0, 1, 2],
    n_prune_rounds=12,
    max_epochs=4,
    n_train=5000,
)
QUICK = dict(
    settings=[("digits", "label"), ("digits", "kmeans")],
    seeds=[0],
    n_prune_rounds=3,
    max_epochs=1,
    n_train=500,
)

HIDDEN = {"fashion": (128, 128), "digits": (64, 64), "penbased": (64, 64)}
DROP_TOL = 0.02  # accuracy "drop": 2 points of balanced accuracy below the best so far


def run_one(dataset, routing, seed, cfg):
    Xtr, Xte, ytr, yte = C.load(dataset, seed, n_train=cfg["n_train"], n_test=500)
    kw = dict(
        min_cluster_size=0,  # K tickets whatever the cluster sizes
        hidden_layer_sizes=HIDDEN[dataset],
        sparsity=0.99,
        validation_fraction=0.2,
        n_prune_rounds=cfg["n_prune_rounds"],
        max_epochs=cfg["max_epochs"],
        batch_size=64,
        random_state=seed,
    )
    fit_kw = {}
    if routing == "groups":
        kw["routing"] = "groups"
        fit_kw["groups"] = C.group_of(ytr)
    elif routing == "kmeans":
        kw.update(routing="kmeans", n_clusters=4)
    else:
        kw["routing"] = "label"
    clf = RTLClassifier(**kw).fit(Xtr, ytr, **fit_kw)
    curve = []
    for r in clf.collapse_curve_:
        curve.append(
            {
                "sparsity": r["sparsity"],
                "similarity": r["similarity"],
                "random_similarity": r["random_similarity"],
                "ticket_similarity": np.asarray(r["ticket_similarity"]).tolist(),
                "layer_similarity": {k: float(v) for k, v in r["layer_similarity"].items()},
                "val_score": r.get("val_score"),
                "ticket_val_score": np.asarray(r.get("ticket_val_score")).tolist(),
            }
        )
    return {
        "dataset": dataset,
        "routing": routing,
        "seed": seed,
        "dense_val_score": clf.validation_score_dense_,
        "curve": curve,
    }


# ------------------------------------------------------------------ label-free rules
def _rules():
    """Candidate label-free rules: curve -> index of the first flagged round or None."""

    def rise(curve, delta=0.02):
        s = [r["similarity"] for r in curve]
        return next((i for i in range(1, len(s)) if s[i] - s[i - 1] > delta), None)

    def lift_peak(curve):
        lift = similarity_lift(curve)
        return next((i for i in range(1, len(lift)) if lift[i] < lift[i - 1]), None)

    def ticket_rise(curve, delta=0.02):
        t = np.array([r["ticket_similarity"] for r in curve])
        return next((i for i in range(1, len(t)) if np.any(t[i] - t[i - 1] > delta)), None)

    def layer_rise(curve, delta=0.02):
        names = list(curve[0]["layer_similarity"])
        for i in range(1, len(curve)):
            if any(
                curve[i]["layer_similarity"][n] - curve[i - 1]["layer_similarity"][n] > delta
                for n in names
            ):
                return i
        return None

    def excess_floor(curve, floor=0.05):
        e = [r["similarity"] - r["random_similarity"] for r in curve]
        return next((i for i in range(len(e)) if e[i] < floor), None)

    def flatten(curve, rel=0.05):
        s = [r["similarity"] for r in curve]
        return next((i for i in range(1, len(s)) if s[i] > (1 - rel) * s[i - 1]), None)

    def layer_flatten(curve, rel=0.05):
        names = list(curve[0]["layer_similarity"])
        for i in range(1, len(curve)):
            if any(
                curve[i]["layer_similarity"][n] > (1 - rel) * curve[i - 1]["layer_similarity"][n]
                for n in names
            ):
                return i
        return None

    return {
        "detect_collapse (shipped: a layer's Jaccard stops falling, elasticity < 0.13)": detect_collapse,
        "similarity rise > 0.02 (paper)": rise,
        "similarity stops falling (< 5% relative drop)": flatten,
        "any layer's similarity stops falling (< 5%)": layer_flatten,
        "lift (J/J_random) falls": lift_peak,
        "any ticket's similarity rise > 0.02": ticket_rise,
        "any layer's similarity rise > 0.02": layer_rise,
        "excess J - J_random < 0.05": excess_floor,
    }


def accuracy_drop(run):
    scores = [run["dense_val_score"]] + [r["val_score"] for r in run["curve"]]
    i = collapse_from_scores(scores, DROP_TOL)
    return None if i is None else i - 1  # index into curve


def evaluate_rules(runs):
    table = {}
    for name, rule in _rules().items():
        early = at = late = late1 = false = missed = none_ok = 0
        for run in runs:
            fired, drop = rule(run["curve"]), accuracy_drop(run)
            if drop is None:
                false += fired is not None
                none_ok += fired is None
            elif fired is None:
                missed += 1
            elif fired < drop:
                early += 1
            elif fired == drop:
                at += 1
            else:
                late += 1
                late1 += fired == drop + 1
        table[name] = dict(
            before=early,
            at=at,
            after=late,
            after_by_one_round=late1,
            missed=missed,
            false_alarm_no_drop=false,
            quiet_no_drop=none_ok,
            n_with_drop=sum(accuracy_drop(r) is not None for r in runs),
        )
    return table


_TICKS = [0.0, 0.5, 0.75, 0.9, 0.95, 0.99]


def _sparsity_axis(ax):
    """x = density on a reversed log scale, labelled as sparsity: spreads 90-99%."""
    ax.set_xscale("log")
    ax.set_xlim(1.05, 0.008)
    ax.set_xticks([1 - t for t in _TICKS])
    ax.set_xticklabels([f"{100 * t:g}" for t in _TICKS], fontsize=7)
    ax.minorticks_off()
    ax.set_xlabel("sparsity (%)")


def plot(runs, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({(r["dataset"], r["routing"]) for r in runs})
    cols = min(len(keys), 4)
    rows = -(-len(keys) // cols)
    fig, grid = plt.subplots(rows, cols, figsize=(3.3 * cols, 3.0 * rows + 0.4), squeeze=False)
    for ax in grid.flat[len(keys) :]:
        ax.axis("off")
    axes = [list(grid.flat[: len(keys)])]
    for ax, key in zip(axes[0], keys, strict=False):
        sel = [r for r in runs if (r["dataset"], r["routing"]) == key]
        ax2 = ax.twinx()
        for j, run in enumerate(sel):
            sp = [1.0] + [1 - r["sparsity"] for r in run["curve"]]
            acc = [run["dense_val_score"]] + [r["val_score"] for r in run["curve"]]
            sim = [np.nan] + [r["similarity"] for r in run["curve"]]
            rnd = [np.nan] + [r["random_similarity"] for r in run["curve"]]
            ax.plot(sp, acc, "-", color="C0", alpha=0.7, label="held-out BA" if j == 0 else None)
            ax2.plot(sp, sim, "--", color="C3", alpha=0.7, label="mean Jaccard" if j == 0 else None)
            ax2.plot(sp, rnd, ":", color="gray", label="random masks" if j == 0 else None)
            d = accuracy_drop(run)
            if d is not None:
                ax.axvline(1 - run["curve"][d]["sparsity"], color="C0", lw=0.6, alpha=0.5)
            f = detect_collapse(run["curve"])
            if f is not None:
                ax.axvline(1 - run["curve"][f]["sparsity"], color="C3", lw=0.6, ls="--", alpha=0.6)
        ax.set_title(f"{key[0]} / {key[1]}", fontsize=9)
        _sparsity_axis(ax)
        ax.set_ylim(0, 1.02)
        ax2.set_ylim(0, 1.02)
        if key == keys[0]:
            ax.set_ylabel("balanced accuracy (solid)")
        if key == keys[-1]:
            ax2.set_ylabel("mean pairwise Jaccard (dashed)")
    h1, l1 = axes[0][0].get_legend_handles_labels()
    fig.legend(
        h1 + ax2.get_legend_handles_labels()[0],
        l1 + ax2.get_legend_handles_labels()[1],
        loc="lower center",
        ncol=4,
        fontsize=8,
    )
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_tickets(run, path):
    """Per-ticket curves (the paper's Fig. 2 panels): ticket BA solid, S_k dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(run["curve"][0]["ticket_similarity"])
    cols = min(n, 5)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.1 * rows), squeeze=False)
    sp = [1 - r["sparsity"] for r in run["curve"]]
    for k in range(rows * cols):
        ax = axes[k // cols][k % cols]
        if k >= n:
            ax.axis("off")
            continue
        ax.plot(sp, [r["ticket_val_score"][k] for r in run["curve"]], "-", color="C0")
        ax.plot(sp, [r["ticket_similarity"][k] for r in run["curve"]], "--", color="C3")
        ax.plot(sp, [r["random_similarity"] for r in run["curve"]], ":", color="gray")
        ax.set_ylim(0, 1.02)
        _sparsity_axis(ax)
        ax.set_xlabel("")
        ax.set_title(f"ticket {k}", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(
        f"{run['dataset']} / {run['routing']} (seed {run['seed']}): ticket score "
        f"(solid), S_k (dashed), random (dotted) vs sparsity %",
        fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--from-json", action="store_true", help="re-analyse the saved collapse_runs.json only"
    )
    parser.add_argument("--out", default=None, help="output folder (default: experiments/results)")
    parser.add_argument("--figures", default=None, help="figure folder (default: docs/figures)")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    out = Path(args.out) if args.out else C.RESULTS
    figs = Path(args.figures) if args.figures else C.FIGURES
    out.mkdir(parents=True, exist_ok=True)
    figs.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    if args.from_json:  # re-analyse saved runs without refitting
        runs = json.loads((out / "collapse_runs.json").read_text())
        cfg = dict(cfg, settings=[], seeds=sorted({r["seed"] for r in runs}))
    else:
        runs = []
    for dataset, routing in cfg["settings"]:
        for seed in cfg["seeds"]:
            t = time.time()
            runs.append(run_one(dataset, routing, seed, cfg))
            print(f"{dataset}/{routing}/seed {seed}: {time.time() - t:.1f}s", flush=True)
            (out / "collapse_runs.json").write_text(json.dumps(runs))
    drops = [accuracy_drop(r) for r in runs]
    print(
        "accuracy drops at:",
        [
            None if d is None else round(r["curve"][d]["sparsity"], 3)
            for d, r in zip(drops, runs, strict=False)
        ],
    )
    rules = evaluate_rules(runs)
    (out / "collapse_rules.json").write_text(json.dumps(rules, indent=1))
    plot(runs, figs / "collapse_curves.png")
    for run in runs:
        if run["seed"] == cfg["seeds"][0] and run["routing"] in ("label", "groups"):
            plot_tickets(run, figs / f"collapse_tickets_{run['dataset']}_{run['routing']}.png")
    for name, row in rules.items():
        print(name, row)
    return runs, rules


if __name__ == "__main__":
    main()
