"""Table 1 with every model trained to convergence: the report of
``python experiments/table1.py --converged`` (``results/table1_converged.jsonl``).

Writes ``experiments/results/table1_converged.md``: K-way balanced accuracy and prunable
weights per method, partition and sparsity (mean over the seeds that finished), and the
seed-level comparison of RTL with the single ticket of the same parameter count.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def _oracle_lines(cells, sparsities):
    """Class groups routed by the true group (the paper's oracle routing) next to the
    predicted group of the main table: the routing error's share of the gap."""
    lines = ["", "Class groups, K-way BA with test rows routed by the predicted group / by the "
             "true group (the paper's oracle routing):", "",
             "| method | " + " | ".join(f"s={s}" for s in sparsities) + " |",
             "|---|" + "---|" * len(sparsities)]  # fmt: skip
    for method in ("RTL", "independent"):
        out = []
        for s in sparsities:
            group = [r for r in cells.get((method, "groups", s), [])
                     if "balanced_accuracy_oracle_routing" in r]  # fmt: skip
            if not group:
                out.append("-")
                continue
            routed = np.mean([r["balanced_accuracy"] for r in group])
            oracle = np.mean([r["balanced_accuracy_oracle_routing"] for r in group])
            out.append(f"{routed:.4f} / {oracle:.4f}")
        lines.append(f"| {method} | " + " | ".join(out) + " |")
    return lines


def main():
    rows = [json.loads(line) for line in (RESULTS / "table1_converged.jsonl").open()]
    cells = defaultdict(list)
    for r in rows:
        cells[r["method"], r["partition"], r["sparsity"]].append(r)
    sparsities = sorted({r["sparsity"] for r in rows})
    lines = ["| method | partition | " + " | ".join(f"s={s}" for s in sparsities) + " |",
             "|---|---|" + "---|" * len(sparsities)]  # fmt: skip
    for method, partition in sorted({(m, p) for m, p, _ in cells}):
        out = []
        for s in sparsities:
            group = cells.get((method, partition, s), [])
            if not group:
                out.append("-")
                continue
            ba = np.mean([r["balanced_accuracy"] for r in group])
            weights = np.mean([r["params"] for r in group]) / 1e3
            out.append(f"{ba:.4f} ({weights:.0f}K, n={len(group)})")
        lines.append(f"| {method} | {partition} | " + " | ".join(out) + " |")
    lines += ["", "Seed-level RTL minus single ticket of the same parameter count (K-way BA):", ""]
    for partition in ("kmeans", "label", "groups"):
        diffs = []
        for (method, part, s), group in cells.items():
            if method != "RTL" or part != partition:
                continue
            equal = {r["seed"]: r for r in cells.get((f"single@RTL-{partition}", "single", s), [])}
            diffs += [r["balanced_accuracy"] - equal[r["seed"]]["balanced_accuracy"]
                      for r in group if r["seed"] in equal]  # fmt: skip
        if diffs:
            diffs = np.array(diffs)
            lines.append(
                f"- {partition}: {len(diffs)} comparisons, RTL ahead in {(diffs > 0).sum()}, "
                f"mean {diffs.mean():+.4f}, range {diffs.min():+.4f} .. {diffs.max():+.4f}"
            )
    lines += _oracle_lines(cells, sparsities)
    (RESULTS / "table1_converged.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
