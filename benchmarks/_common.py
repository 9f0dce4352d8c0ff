"""Shared helpers of the benchmark scripts: real data, timers, machine description.

Nothing is downloaded: Fashion-MNIST comes from Debian's ``dataset-fashion-mnist`` package
(``apt-get install dataset-fashion-mnist``, IDX files under
``/usr/share/datasets/fashion-mnist/``), digits from scikit-learn's bundled ``load_digits``.
"""

from __future__ import annotations

import gzip
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

FASHION_DIR = Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    n_dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * n_dims).reshape(shape)


def _find(stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        path = FASHION_DIR / name
        if path.exists():
            return path
    raise FileNotFoundError(
        f"{stem}[.gz] not found under {FASHION_DIR}; install Debian's dataset-fashion-mnist "
        "(apt-get install dataset-fashion-mnist) or set FASHION_MNIST_DIR."
    )


def load_fashion_mnist(split: str = "train", n_samples: int | None = None, seed: int = 0):
    """Fashion-MNIST as float32 pixels in [0, 1] of shape (n, 784) and int64 labels.

    ``n_samples`` draws a stratified-by-chance random subset (fixed ``seed``).
    """
    prefix = "train" if split == "train" else "t10k"
    X = _read_idx(_find(f"{prefix}-images-idx3-ubyte")).reshape(-1, 784)
    y = _read_idx(_find(f"{prefix}-labels-idx1-ubyte")).astype(np.int64)
    if n_samples is not None and n_samples < len(X):
        index = np.random.default_rng(seed).choice(len(X), n_samples, replace=False)
        X, y = X[index], y[index]
    return X.astype(np.float32) / np.float32(255.0), y


def load_digits_data():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y.astype(np.int64)


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def median(values):
    return statistics.median(values)


def machine() -> str:
    import sklearn
    import skorch
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{time.strftime('%Y-%m-%d')}, {cpu}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), skorch {skorch.__version__}, "
        f"scikit-learn {sklearn.__version__}, numpy {np.__version__}, Python {platform.python_version()}"
    )


def rss_mb() -> float:
    """Resident memory of this process in MiB (Linux ``/proc``), NaN elsewhere."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def peak_rss_growth(fn, *args, **kwargs):
    """``(result, peak RSS growth in MiB, seconds)`` of ``fn(*args, **kwargs)``, the RSS
    sampled every 2 ms by a thread (tracemalloc misses torch's allocations)."""
    import gc
    import threading

    gc.collect()
    base = rss_mb()
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        result = fn(*args, **kwargs)
    finally:
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
    return result, max(peak[0], rss_mb()) - base, seconds
