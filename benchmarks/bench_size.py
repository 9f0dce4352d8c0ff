"""Stored size of a fitted model and dense vs CSR inference of one ticket.

1. Sizes for the 784-256-256-10 network at sparsity 0.5 / 0.8 / 0.9 / 0.95 for the single
   ticket (n_clusters=1), 4 KMeans tickets and label routing (10 tickets): ``pickle``
   before (the fitted state as it was: dense weights, optimizer, network pickled twice) and
   after the compact state (``compact_fitted_net`` + ``network_getstate``), the
   ``sklearn_rtl.save`` file and the ONNX file (``export_onnx``), each as a multiple of the
   dense float32 weights (``n_params_dense_ * 4`` bytes). Only sizes matter, so the fits
   are short (Fashion-MNIST rows if installed, else synthetic 784-feature data).
2. Median time of ``ticket_module(k)`` vs ``ticket_module(k, layout="csr")`` on a batch of
   256 rows, at sparsity 0.8 / 0.9 / 0.95 and hidden widths 256 / 1024 (one thread).

    python benchmarks/bench_size.py [--quick] [--rows 1000] [--out benchmarks/results/size.md]
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_fashion_mnist, machine, median  # noqa: E402
from _impl import set_threads  # noqa: E402

from sklearn_rtl import RTLClassifier, TicketNetwork  # noqa: E402
from sklearn_rtl._compact import (  # noqa: E402
    compact_fitted_net,
    compact_router,
    network_getstate,
    network_setstate,
)
from sklearn_rtl._export import export_onnx, ticket_module  # noqa: E402
from sklearn_rtl._io import save  # noqa: E402

CONFIGS = {
    "single ticket": dict(n_clusters=1),
    "4 KMeans tickets": dict(n_clusters=4),
    "label routing": dict(routing="label"),
}


def load_data(n_rows):
    try:
        X, y = load_fashion_mnist("train", n_samples=n_rows)
        return X, y, "Fashion-MNIST"
    except (FileNotFoundError, OSError):
        rng = np.random.default_rng(0)
        centers = rng.normal(size=(10, 784)).astype(np.float32)
        y = rng.integers(0, 10, n_rows)
        X = centers[y] + rng.normal(scale=2.0, size=(n_rows, 784)).astype(np.float32)
        return X, y, "synthetic (10 Gaussian classes, 784 features)"


def _fit(X, y, sparsity, config, epochs, hidden=(256, 256)):
    est = RTLClassifier(
        hidden_layer_sizes=hidden,
        sparsity=sparsity,
        n_prune_rounds=2,
        max_epochs=epochs,
        random_state=0,
        min_cluster_size=0,  # K tickets whatever the cluster sizes
        **config,
    )
    return est.fit(X, y)


def _compact_pickle_size(est):
    """Pickle size with the compact fitted state (whether or not it is wired in yet)."""
    old = TicketNetwork.__dict__.get("__getstate__"), TicketNetwork.__dict__.get("__setstate__")
    TicketNetwork.__getstate__, TicketNetwork.__setstate__ = network_getstate, network_setstate
    try:
        compact_fitted_net(est.net_)
        compact_router(est.router_)
        return len(pickle.dumps(est))
    finally:
        for name, method in zip(("__getstate__", "__setstate__"), old, strict=True):
            if method is None:
                delattr(TicketNetwork, name)
            else:
                setattr(TicketNetwork, name, method)


def size_rows(X, y, sparsities, epochs):
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for sparsity in sparsities:
            for label, config in CONFIGS.items():
                est = _fit(X, y, sparsity, config, epochs)
                dense = est.n_params_dense_ * 4
                before = len(pickle.dumps(est))
                after = _compact_pickle_size(est)
                save(est, Path(tmp) / "m.rtl")
                saved = (Path(tmp) / "m.rtl").stat().st_size
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    export_onnx(est, Path(tmp) / "m.onnx")
                onnx = (Path(tmp) / "m.onnx").stat().st_size
                union = 1.0 - est.sparsity_
                rows.append(
                    (sparsity, label, est.n_tickets_, union, dense, before, after, saved, onnx)
                )
                print(rows[-1], flush=True)
    return rows


def _time(module, x, repeats):
    with torch.inference_mode():
        module(x)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            module(x)
            times.append(time.perf_counter() - start)
    return median(times)


def timing_rows(X, y, sparsities, widths, repeats):
    rows = []
    x = torch.as_tensor(X[:256])
    for width in widths:
        for sparsity in sparsities:
            est = _fit(X[:512], y[:512], sparsity, dict(n_clusters=1), 1, hidden=(width, width))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dense, csr = ticket_module(est, 0), ticket_module(est, 0, layout="csr")
                t_dense = _time(dense, x, repeats)
                t_csr = _time(csr, x, repeats)
            rows.append((width, sparsity, t_dense * 1e3, t_csr * 1e3, t_csr / t_dense))
            print(rows[-1], flush=True)
    return rows


def to_markdown(sizes, timings, source, n_rows, epochs):
    lines = [
        "# Stored size and sparse inference",
        "",
        f"Machine: {machine()}",
        "",
        f"784-256-256-10 network, {source}, {n_rows} rows, n_prune_rounds=2, "
        f"max_epochs={epochs} (sizes only). Multiples of the dense float32 weights.",
        "",
        "| sparsity | model | K | union density | dense weights | pickle before "
        "| pickle after | save file | ONNX | pickle after / save |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for sparsity, label, k, union, dense, before, after, saved, onnx in sizes:
        lines.append(
            f"| {sparsity} | {label} | {k} | {union:.3f} | {dense / 1e3:.0f} KB "
            f"| {before / dense:.2f}x | {after / dense:.3f}x | {saved / dense:.3f}x "
            f"| {onnx / dense:.2f}x | {after / saved:.3f} |"
        )
    lines += [
        "",
        "ONNX holds every ticket's masked weights dense (the routed graph runs all tickets).",
        "",
        '## `ticket_module(k)`: dense vs `layout="csr"`, batch of 256 rows, 1 thread',
        "",
        "| width | sparsity | dense (ms) | CSR (ms) | CSR / dense |",
        "|---|---|---|---|---|",
    ]
    for width, sparsity, t_dense, t_csr, ratio in timings:
        lines.append(f"| {width} | {sparsity} | {t_dense:.3f} | {t_csr:.3f} | {ratio:.2f}x |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sparsity 0.9 only, width 256")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "size.md"))
    args = parser.parse_args()
    set_threads(args.threads)
    X, y, source = load_data(args.rows)
    sparsities = [0.9] if args.quick else [0.5, 0.8, 0.9, 0.95]
    sizes = size_rows(X, y, sparsities, args.epochs)
    timings = timing_rows(
        X,
        y,
        [0.9] if args.quick else [0.8, 0.9, 0.95],
        [256] if args.quick else [256, 1024],
        args.repeats,
    )
    report = to_markdown(sizes, timings, source, args.rows, args.epochs)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report)
    print(report)


if __name__ == "__main__":
    main()
