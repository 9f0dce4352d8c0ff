"""Tables (markdown) and figures from the results of table1.py, auto_vs_fixed.py and
collapse_curves.py; writes experiments/results/tables.md and docs/figures/table1_*.png.

    python experiments/report.py
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

SPARSITIES = [0.25, 0.5, 0.75, 0.9, 0.95]


def _load(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def _ms(values, digits=3):
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def _k(n):
    return f"{n / 1000:.1f}K"


def table1_markdown(rows):
    by = defaultdict(list)
    for r in rows:
        by[(r["method"], r["partition"], r["sparsity"])].append(r)
    lines = []
    partitions = [
        p for p in ("label", "kmeans", "groups") if any(r["partition"] == p for r in rows)
    ]
    names = {
        "label": "(a) class tickets (label routing, K=10)",
        "kmeans": "(b) KMeans tickets (K=4)",
        "groups": "(c) class-group tickets (K=4: tops, footwear, trousers+dresses, bags)",
    }
    for p in partitions:
        lines += [
            f"\n#### {names[p]}\n",
            "| method | sparsity | BA | macro P | macro R | OvR BA | OvR P | OvR R | #Params (prunable) | n |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for s in SPARSITIES:
            for method, part in (
                ("RTL", p),
                ("single", "single"),
                ("independent", p),
                (f"single@RTL-{p}", "single"),
            ):
                sel = by.get((method, part, s), [])
                if not sel:
                    continue
                label = method if not method.startswith("single@") else "single, RTL's #Params"
                sp = (
                    s
                    if not method.startswith("single@")
                    else np.mean([r["union_sparsity"] for r in sel])
                )
                lines.append(
                    f"| {label} | {100 * sp:.1f}% | {_ms([r['balanced_accuracy'] for r in sel])} | "
                    f"{_ms([r['precision'] for r in sel])} | {_ms([r['recall'] for r in sel])} | "
                    f"{_ms([r['ovr_balanced_accuracy'] for r in sel])} | {_ms([r['ovr_precision'] for r in sel])} | "
                    f"{_ms([r['ovr_recall'] for r in sel])} | {_k(np.mean([r['params'] for r in sel]))} | {len(sel)} |"
                )
    return "\n".join(lines)


def ratio_markdown(rows):
    by = defaultdict(list)
    for r in rows:
        by[(r["method"], r["partition"], r["sparsity"])].append(r["params"])
    lines = [
        "| partition | " + " | ".join(f"{int(100 * s)}%" for s in SPARSITIES) + " |",
        "|---|" + "---|" * len(SPARSITIES),
    ]
    for p in ("label", "kmeans", "groups"):
        cells = []
        for s in SPARSITIES:
            a, b = by.get(("independent", p, s)), by.get(("RTL", p, s))
            cells.append(f"{np.mean(a) / np.mean(b):.1f}x" if a and b else "–")
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def equal_params_markdown(rows):
    by = {}
    for r in rows:
        by.setdefault((r["method"], r["partition"], r["sparsity"]), {})[r["seed"]] = r
    lines = [
        "| partition | sparsity | RTL BA | single BA (same #Params) | diff (RTL - single) | RTL wins (seeds) |",
        "|---|---|---|---|---|---|",
    ]
    for p in ("label", "kmeans", "groups"):
        for s in SPARSITIES:
            a, b = by.get(("RTL", p, s), {}), by.get((f"single@RTL-{p}", "single", s), {})
            seeds = sorted(set(a) & set(b))
            if not seeds:
                continue
            d = [a[k]["balanced_accuracy"] - b[k]["balanced_accuracy"] for k in seeds]
            lines.append(
                f"| {p} | {int(100 * s)}% | {_ms([a[k]['balanced_accuracy'] for k in seeds])} | "
                f"{_ms([b[k]['balanced_accuracy'] for k in seeds])} | {_ms(d)} | "
                f"{sum(x > 0 for x in d)}/{len(d)} |"
            )
    return "\n".join(lines)


def auto_markdown(rows, auto_rows):
    lines = [
        "| partition | seed | auto: ticket sparsity | auto BA | best fixed sparsity | its BA | BA at 95% |",
        "|---|---|---|---|---|---|---|",
    ]
    gaps = {}
    for a in auto_rows:
        fixed = [
            r
            for r in rows
            if r["method"] == "RTL" and r["partition"] == a["partition"] and r["seed"] == a["seed"]
        ]
        if not fixed:
            continue
        best = max(fixed, key=lambda r: r["balanced_accuracy"])
        at95 = [r["balanced_accuracy"] for r in fixed if r["sparsity"] == 0.95]
        lines.append(
            f"| {a['partition']} | {a['seed']} | {100 * a['ticket_sparsity']:.1f}% | "
            f"{a['balanced_accuracy']:.3f} | {int(100 * best['sparsity'])}% | "
            f"{best['balanced_accuracy']:.3f} | {at95[0]:.3f} |"
            if at95
            else ""
        )
        gaps.setdefault(a["partition"], []).append(
            (a["balanced_accuracy"] - best["balanced_accuracy"], a["ticket_sparsity"])
        )
    lines += [
        "",
        "| partition | mean auto sparsity | auto BA - best fixed BA (mean ± std) | n |",
        "|---|---|---|---|",
    ]
    for p, g in gaps.items():
        lines.append(
            f"| {p} | {100 * np.mean([x[1] for x in g]):.1f}% | "
            f"{_ms([x[0] for x in g])} | {len(g)} |"
        )
    return "\n".join(lines)


def plot_table1(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = [p for p in ("label", "kmeans", "groups") if any(r["partition"] == p for r in rows)]
    panels = [(p, "balanced_accuracy", "test balanced accuracy (K-way)") for p in parts]
    if "label" in parts:
        panels.append(("label", "ovr_balanced_accuracy", "one-vs-rest BA (paper's metric)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.2), squeeze=False)
    for ax, (p, metric, ylabel) in zip(axes[0], panels, strict=False):
        for method, part, style in (
            ("RTL", p, "o-"),
            ("single", "single", "s--"),
            ("independent", p, "^:"),
        ):
            xs, ys, es = [], [], []
            for s in SPARSITIES:
                v = [
                    r[metric]
                    for r in rows
                    if r["method"] == method and r["partition"] == part and r["sparsity"] == s
                ]
                if v:
                    xs.append(100 * s), ys.append(np.mean(v)), es.append(np.std(v))
            ax.errorbar(xs, ys, yerr=es, fmt=style, label=method, capsize=2)
        ax.set_title(p, fontsize=9)
        ax.set_xlabel("sparsity per ticket (%)")
        ax.set_ylabel(ylabel, fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    out = []
    files = sorted(C.RESULTS.glob("table1_fashion*.jsonl"))
    if files:
        rows = {}
        for f in files:  # several partial runs (per-seed files) merge; duplicates dedupe
            for r in _load(f):
                if "quick" not in f.name:
                    rows[(r["method"], r["partition"], r["seed"], r["sparsity"])] = r
        rows = list(rows.values())
        out += [
            "### Table 1 (Fashion-MNIST)",
            table1_markdown(rows),
            "\n### Parameter ratio independent / RTL",
            ratio_markdown(rows),
            "\n### Equal parameter count",
            equal_params_markdown(rows),
        ]
        plot_table1(rows, C.FIGURES / "table1_fashion.png")
        autos = [
            r
            for f in sorted(C.RESULTS.glob("auto_fashion*.jsonl"))
            if "quick" not in f.name
            for r in _load(f)
        ]
        if autos:
            out += ["\n### sparsity='auto' vs fixed", auto_markdown(rows, autos)]
    rules = C.RESULTS / "collapse_rules.json"
    if rules.exists():
        out += [
            "\n### Label-free rules vs held-out accuracy drop",
            "| rule | before drop | at drop | after drop (of which 1 round late) | missed | false alarm (no drop) | quiet (no drop) |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, r in json.loads(rules.read_text()).items():
            out.append(
                f"| {name} | {r['before']} | {r['at']} | {r['after']} ({r['after_by_one_round']}) | {r['missed']} | "
                f"{r['false_alarm_no_drop']} | {r['quiet_no_drop']} |"
            )
    (C.RESULTS / "tables.md").write_text("\n".join(out) + "\n")
    doc = C.ROOT / "docs" / "paper-reproduction.md"
    marker = "<!-- generated tables: python experiments/report.py -->"
    if doc.exists() and marker in doc.read_text():
        head = doc.read_text().split(marker)[0]
        doc.write_text(head + marker + "\n\n" + "\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
