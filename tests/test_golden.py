"""Golden outputs: fits with explicit parameters and fixed seeds must give the stored
predictions bit for bit.

The stored arrays guard refactors that must not change behaviour. A change that is meant to
change the numbers regenerates them on purpose, in a commit of its own:

    python tests/test_golden.py --regenerate
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits, load_iris
from sklearn.preprocessing import StandardScaler

from sklearn_rtl import RTLClassifier, RTLRegressor

GOLDEN = pathlib.Path(__file__).parent / "golden" / "golden.npz"

# Every parameter that a default change could touch is written out.
_COMMON = dict(
    min_cluster_size=0,  # the cases predate the floor: every cluster keeps its ticket
    hidden_layer_sizes=(16, 12),
    n_prune_rounds=2,
    sparsity=0.6,
    max_epochs=2,
    lr=1e-3,
    batch_size=32,
    random_state=0,
)


def _data():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    groups = (X[:, 0] > 0).astype(int)
    return X, y, groups


def _cases():
    X, y, groups = _data()
    yield "kmeans", lambda: RTLClassifier(n_clusters=3, **_COMMON).fit(X, y), X, None
    yield "label", lambda: RTLClassifier(routing="label", **_COMMON).fit(X, y), X, None
    yield (
        "groups",
        lambda: RTLClassifier(routing="groups", **_COMMON).fit(X, y, groups=groups),
        X,
        groups,
    )
    yield (
        "estimator_router",
        lambda: RTLClassifier(routing=KMeans(2, n_init=2, random_state=1), **_COMMON).fit(X, y),
        X,
        None,
    )
    yield (
        "independent",
        lambda: RTLClassifier(n_clusters=3, share_weights=False, **_COMMON).fit(X, y),
        X,
        None,
    )
    yield (
        "auto",
        lambda: RTLClassifier(
            n_clusters=2, **{**_COMMON, "sparsity": "auto", "n_prune_rounds": 3}
        ).fit(X, y),
        X,
        None,
    )
    yield (
        "rewind_global",
        lambda: RTLClassifier(
            n_clusters=2, rewind_epoch=1, prune_scope="global", validation_fraction=0.2, **_COMMON
        ).fit(X, y),
        X,
        None,
    )
    target = X[:, 0] * 2.0 - X[:, 1] + 0.5 * X[:, 2] * X[:, 3]
    yield (
        "regressor",
        lambda: RTLRegressor(n_clusters=2, **_COMMON).fit(X[:, 1:], target),
        X[:, 1:],
        None,
    )
    digits = load_digits()
    images = (digits.images[:300] / 16.0).astype(np.float32)
    yield (
        "cnn",
        lambda: RTLClassifier(
            n_clusters=2,
            module_params={"channels": (4, 8)},
            **{**_COMMON, "hidden_layer_sizes": (8,)},
        ).fit(images, digits.target[:300]),
        images,
        None,
    )


def _outputs(name, make, X, groups):
    est = make()
    kwargs = {} if groups is None else {"groups": groups}
    out = {}
    if hasattr(est, "predict_proba"):
        out[f"{name}.proba"] = est.predict_proba(X, **kwargs)
    out[f"{name}.predict"] = np.asarray(est.predict(X, **kwargs))
    out[f"{name}.ticket_sparsity"] = np.asarray(est.ticket_sparsity_)
    out[f"{name}.similarity"] = np.asarray(est.similarity_)
    out[f"{name}.n_params"] = np.asarray(est.n_params_)
    return out


def _all_outputs():
    out = {}
    for case in _cases():
        out.update(_outputs(*case))
    return out


@pytest.mark.parametrize("case", list(_cases()), ids=lambda c: c[0])
def test_golden_outputs_unchanged(case):
    stored = np.load(GOLDEN)
    for key, value in _outputs(*case).items():
        np.testing.assert_array_equal(value, stored[key], err_msg=key)


if __name__ == "__main__":  # pragma: no cover
    if "--regenerate" not in sys.argv:
        sys.exit("usage: python tests/test_golden.py --regenerate")
    import torch

    torch.set_num_threads(1)  # as the test suite runs
    GOLDEN.parent.mkdir(exist_ok=True)
    np.savez_compressed(GOLDEN, **_all_outputs())
    print(f"wrote {GOLDEN}")
