"""Fit and predict time on CPU and on a GPU, side by side: Fashion-MNIST, MLP and the CNN.

For each network (the default MLP on flat pixels, the default SmallCNN on 28x28 images),
each per-ticket batch size (``--batch-sizes``: the default 128, and batches large enough to
fill a GPU) and each device (``cpu`` and ``--device``, default ``cuda``; with ``--bf16`` also
``--device`` under bf16 autocast), the same RTL fit (4 KMeans tickets, fixed epochs so that
every device does the same work) is timed, then ``predict`` on the test rows; balanced
accuracy shows that the devices learn the same thing. The speed-up is against the CPU at
the same batch size.

    python benchmarks/bench_gpu.py --bf16           # cpu vs cuda (cuda skipped if absent)
    python benchmarks/bench_gpu.py --device cpu --quick   # the CPU-only smoke run of the tests

Writes ``benchmarks/results/gpu.md`` (``gpu_quick.md`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_digits_data, load_fashion_mnist, machine  # noqa: E402

from sklearn_rtl import RTLClassifier  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def load(n_train, n_test, quick):
    """Fashion-MNIST (digits, upscaled to 28x28 is not needed: digits as 8x8, if absent)."""
    try:
        X, y = load_fashion_mnist("train", n_train)
        X_test, y_test = load_fashion_mnist("test", n_test)
        side = 28
    except FileNotFoundError:
        X, y = load_digits_data()
        X, X_test, y, y_test = (
            X[: len(X) // 2],
            X[len(X) // 2 :],
            y[: len(y) // 2],
            y[len(y) // 2 :],
        )
        side = 8
    if quick:
        X, y, X_test, y_test = X[:300], y[:300], X_test[:200], y_test[:200]
    return X, y, X_test, y_test, side


def run(model_name, device, data, epochs, batch_size=128, bf16=False):
    X, y, X_test, y_test, side = data
    params = dict(n_clusters=4, min_cluster_size=0, sparsity=0.8, n_prune_rounds=2, max_epochs=epochs,
                  batch_size=batch_size, random_state=0, device=device)  # fmt: skip
    if model_name == "CNN":
        X, X_test = X.reshape(-1, side, side), X_test.reshape(-1, side, side)
    est = RTLClassifier(**params)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    autocast = torch.autocast(torch.device(device).type, torch.bfloat16, enabled=bf16)
    start = time.perf_counter()
    with autocast:
        est.fit(X, y)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    y_pred = est.predict(X_test)
    predict_seconds = time.perf_counter() - start
    return fit_seconds, predict_seconds, balanced_accuracy_score(y_test, y_pred)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--n-train", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-sizes", default="128,1024", help="per-ticket, comma-separated")
    parser.add_argument("--bf16", action="store_true", help="also --device under bf16 autocast")
    parser.add_argument("--models", default="MLP,CNN")
    args = parser.parse_args(argv)
    data = load(args.n_train, 10000, args.quick)
    devices = [("cpu", False)]
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"{args.device} is not available here: timing the CPU only.")
    elif args.device != "cpu":
        devices += [(args.device, False)] + ([(args.device, True)] if args.bf16 else [])
        # the device's start-up (about 1 s on CUDA) is not the first fit's
        torch.ones(8, 8, device=args.device).matmul(
            torch.ones(8, 8, device=args.device)
        ).sum().item()
    epochs = 1 if args.quick else args.epochs
    lines = [f"Machine: {machine()}",
             f"GPU: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}",
             f"{len(data[0])} training rows, {len(data[2])} test rows, K=4, 2 pruning rounds, "
             f"{epochs} epochs per stage", "",
             "| network | batch per ticket | device | fit s | predict s | balanced accuracy "
             "| fit speed-up |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for model_name in args.models.split(","):
        for batch_size in map(int, args.batch_sizes.split(",")):
            base = None
            for device, bf16 in devices:
                fit_s, predict_s, score = run(model_name, device, data, epochs, batch_size, bf16)
                base = base or fit_s
                name = device + (" bf16" if bf16 else "")
                lines.append(f"| {model_name} | {batch_size} | {name} | {fit_s:.2f} | "
                             f"{predict_s:.3f} | {score:.4f} | {base / fit_s:.1f}x |")  # fmt: skip
                print(lines[-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / ("gpu_quick.md" if args.quick else "gpu.md")).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
