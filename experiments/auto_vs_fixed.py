"""sparsity="auto" against the best fixed sparsity of experiments/table1.py.

Same data, network and training budget per round as table1.py; "auto" prunes on a
6-round geometric schedule up to 99% sparsity, holding out 10% of the training rows, and
keeps the last round before the held-out balanced accuracy fell 0.02 below its best.

    python experiments/auto_vs_fixed.py           # after table1.py (~5 min)
    python experiments/auto_vs_fixed.py --quick
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
import table1  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None)
    parser.add_argument("--seeds", type=int, nargs="*", default=None)
    args = parser.parse_args(argv)
    cfg = table1.QUICK if args.quick else table1.FULL
    if args.seeds:
        cfg = dict(cfg, seeds=args.seeds)
    out = Path(args.out) if args.out else C.RESULTS
    out.mkdir(parents=True, exist_ok=True)
    tag = "_quick" if args.quick else ("_s" + "".join(map(str, args.seeds)) if args.seeds else "")
    path = out / f"auto_{cfg['dataset']}{tag}.jsonl"
    if path.exists():
        path.unlink()
    torch.set_num_threads(1)
    rows = []
    for seed in cfg["seeds"]:
        data = C.load(cfg["dataset"], seed, n_train=cfg["n_train"], n_test=cfg["n_test"])
        for partition in cfg["partitions"]:
            row = table1._fit_eval(
                cfg,
                data,
                seed,
                "auto",
                partition,
                True,
                "RTL-auto",
                n_prune_rounds=2 if args.quick else 6,
                sparsity_ceiling=0.99,
            )
            rows.append(row)
            with path.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(
                partition,
                seed,
                round(row["ticket_sparsity"], 3),
                round(row["balanced_accuracy"], 4),
                flush=True,
            )
    return rows


if __name__ == "__main__":
    main()
