"""Every way out of a fitted model predicts what the model predicts.

One property, checked for every routing: ``predict_proba`` (classifier) / ``predict``
(regressor) equals, within 1e-5,

* ``to_torch()(x)`` (``to_torch()(x, groups)`` under ``routing="groups"``),
* the ONNX file of :func:`sklearn_rtl.export_onnx` run by onnxruntime,
* :func:`sklearn_rtl.load` of :func:`sklearn_rtl.save`'s file in a fresh Python process,
* a pickle round trip,

on new rows, dense or sparse CSR. Each case is fitted on enough rows for the default
``min_cluster_size`` to keep the tickets it means, and asserts that ticket count: a test of
K-ticket routing that quietly fits one ticket would check nothing.
"""

from __future__ import annotations

import functools
import os
import pickle
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

import sklearn_rtl
from conftest import ticket_data
from sklearn_rtl import RTLClassifier, RTLRegressor, export_onnx

torch.set_num_threads(1)

TOL = 1e-5
FAST = dict(  # n_clusters=4: "auto" (the default) has its own cases, _kmeans_auto
    hidden_layer_sizes=(16,), n_prune_rounds=1, max_epochs=2, batch_size=128, random_state=0,
    n_clusters=4,
)  # fmt: skip
N_FEATURES = 10
GROUP_VALUES = np.array([10, 20, 30, 40])  # not 0..3: values and codes must not coincide
UNSEEN_GROUP = 99


# --------------------------------------------------------------------------- data
def _blobs(sizes, seed):
    """Two large blobs and two small ones, each small one next to a different large one.

    With 4 clusters, the default floor (200 rows) keeps the two large clusters and sends
    each small one to the nearer large one's ticket: rows of the merged clusters go to
    *both* kept tickets, not only to ticket 0. A third of the entries are zero (sparse
    CSR is not a formality).
    """
    rng = np.random.default_rng(seed)
    centres = np.zeros((4, N_FEATURES))
    centres[[0, 2], 0] = centres[[1, 3], 1] = 14.0
    centres[2, 2] = centres[3, 3] = 6.0
    blob = np.repeat(np.arange(4), sizes)
    X = centres[blob] + rng.normal(size=(len(blob), N_FEATURES))
    X[np.abs(X) < 0.4] = 0.0
    return X, blob


@functools.cache
def _data():
    X, blob = _blobs([450, 400, 80, 70], seed=0)
    X_new, blob_new = _blobs([60, 60, 40, 40], seed=1)
    direction = np.random.default_rng(2).normal(size=N_FEATURES)
    direction[:4] = 0.0  # the class does not follow the blobs: every cluster sees every class
    score = X @ direction
    y = np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))
    targets = np.stack([X[:, 4] + 2 * X[:, 5], 10 * np.sin(X[:, 6]) + 100], axis=1)
    rng = np.random.default_rng(3)
    groups = GROUP_VALUES[rng.integers(0, 4, len(X))]  # unrelated to the features
    groups_new = GROUP_VALUES[rng.integers(0, 4, len(X_new))]
    groups_new[rng.random(len(X_new)) < 0.25] = UNSEEN_GROUP
    return dict(
        X=X, y=y, targets=targets, groups=groups, X_new=X_new, blob_new=blob_new,
        groups_new=groups_new,
    )  # fmt: skip


# -------------------------------------------------------------------------- cases
@dataclass
class Case:
    """A fitted estimator and the new rows every output path must agree on."""

    estimator: object
    X: object  # ndarray or CSR matrix, as predict takes it
    groups: np.ndarray | None = None  # as predict takes it
    group_tensor: np.ndarray | None = None  # int64, as to_torch / ONNX take it

    def expected(self):
        return _predict(self.estimator, self.X, self.groups)

    def dense_x(self):
        X = self.X.toarray() if sp.issparse(self.X) else np.asarray(self.X)
        return X.reshape(len(X), *self.estimator.input_shape_).astype(np.float32)


def _predict(estimator, X, groups):
    kwargs = {} if groups is None else {"groups": groups}
    if isinstance(estimator, RTLRegressor):
        return estimator.predict(X, **kwargs)
    return estimator.predict_proba(X, **kwargs)


def _sparse_or_dense(X, sparse):
    return sp.csr_matrix(X) if sparse else X


def _kmeans_default(sparse, **params):
    """``n_clusters=4`` and the default ``min_cluster_size=200``: 2 of 4 clusters kept."""
    d = _data()
    est = RTLClassifier(**FAST, **params).fit(_sparse_or_dense(d["X"], sparse), d["y"])
    assert 1 < est.n_tickets_ < est.n_clusters, est.n_tickets_
    X_new = _sparse_or_dense(d["X_new"], sparse)
    # the rows of the merged (small) blobs go to more than one kept ticket
    merged = est.route(X_new)[d["blob_new"] >= 2]
    assert len(set(merged.tolist())) == est.n_tickets_
    return Case(est, X_new)


def _kmeans_no_floor(sparse):
    d = _data()
    est = RTLClassifier(**FAST, min_cluster_size=0)
    est.fit(_sparse_or_dense(d["X"], sparse), d["y"])
    assert est.n_tickets_ == est.n_clusters == 4
    return Case(est, _sparse_or_dense(d["X_new"], sparse))


def _label(sparse):
    d = _data()
    est = RTLClassifier(**FAST, routing="label").fit(_sparse_or_dense(d["X"], sparse), d["y"])
    assert est.n_tickets_ == len(est.classes_) == 3
    return Case(est, _sparse_or_dense(d["X_new"], sparse))


def _label_neuron():
    d = _data()
    est = RTLClassifier(**FAST, routing="label", prune_granularity="neuron")
    est.fit(d["X"], d["y"])
    assert est.n_tickets_ == 3
    return Case(est, d["X_new"])


def _groups(sparse, kind, unknown_group="nearest"):
    """``kind``: "int" (int64 array), "str", or "object_int" (Python ints in an object
    array, as ``df.values[:, 0]`` of a mixed DataFrame holds them)."""
    d = _data()
    fit_groups, new_groups = d["groups"], d["groups_new"]
    if unknown_group == "error":
        new_groups = np.where(new_groups == UNSEEN_GROUP, GROUP_VALUES[0], new_groups)
    if kind == "str":
        fit_groups, new_groups = fit_groups.astype(str), new_groups.astype(str)
    elif kind == "object_int":
        fit_groups, new_groups = fit_groups.astype(object), new_groups.astype(object)
        assert type(fit_groups[0]) is int
    est = RTLClassifier(**FAST, routing="groups", unknown_group=unknown_group)
    est.fit(_sparse_or_dense(d["X"], sparse), d["y"], groups=fit_groups)
    assert est.n_tickets_ == len(GROUP_VALUES)
    if kind == "str":  # the codes: positions in router_.ticket_labels_, -1 if never seen
        labels = est.router_.ticket_labels_.tolist()
        tensor = np.array([labels.index(g) if g in labels else -1 for g in new_groups])
    else:  # integer groups seen in fit: the values themselves
        tensor = np.asarray(new_groups, dtype=np.int64)
    return Case(est, _sparse_or_dense(d["X_new"], sparse), new_groups, tensor)


def _estimator_router(sparse, router):
    d = _data()
    est = RTLClassifier(**FAST, routing=router).fit(_sparse_or_dense(d["X"], sparse), d["y"])
    assert est.n_tickets_ == 3
    return Case(est, _sparse_or_dense(d["X_new"], sparse))


def _regressor(sparse):
    """Multi-output regression at the default floor (2 of 4 clusters kept)."""
    d = _data()
    est = RTLRegressor(**FAST).fit(_sparse_or_dense(d["X"], sparse), d["targets"])
    assert 1 < est.n_tickets_ < est.n_clusters and est.n_outputs_ == 2
    return Case(est, _sparse_or_dense(d["X_new"], sparse))


def _cnn(**params):
    """The default CNN on 8x8 digits; 4 clusters of 1,200 images, the default floor
    keeps 3."""
    digits = load_digits()
    images, target = digits.images.astype(np.float32), digits.target
    est = RTLClassifier(**FAST, module_params={"channels": (4, 8)}, **params)
    est.fit(images[:1200], target[:1200])
    assert est.input_shape_ == (1, 8, 8)
    assert 1 < est.n_tickets_ < est.n_clusters, est.n_tickets_
    return Case(est, images[1200:1400])


def _kmeans_auto(sparse, pays, estimator=RTLClassifier):
    """The default ``n_clusters="auto"``, both ways: the clusters' own tickets kept, or one
    shared ticket for every cluster (its router keeps the clusters)."""
    X, y, target = ticket_data(pays)
    est = estimator(n_prune_rounds=1, max_epochs=10, random_state=0)
    est.fit(_sparse_or_dense(X, sparse), y if estimator is RTLClassifier else target)
    kept = est.ticket_choice_["kept"]
    assert (kept, est.n_tickets_) == (("clusters", 4) if pays else ("shared", 1))
    X_new = ticket_data(pays, n=50, seed=1)[0]
    return Case(est, _sparse_or_dense(X_new, sparse))


KMEANS_3 = KMeans(3, n_init=1, random_state=0)
CASES = {
    "kmeans_default_floor": lambda: _kmeans_default(False),
    "kmeans_default_floor_sparse": lambda: _kmeans_default(True),
    "kmeans_auto_kept": lambda: _kmeans_auto(False, pays=True),
    "kmeans_auto_kept_sparse": lambda: _kmeans_auto(True, pays=True),
    "kmeans_auto_shared": lambda: _kmeans_auto(False, pays=False),
    "kmeans_auto_shared_sparse": lambda: _kmeans_auto(True, pays=False),
    "regressor_auto_shared": lambda: _kmeans_auto(False, pays=False, estimator=RTLRegressor),
    "kmeans_no_floor": lambda: _kmeans_no_floor(False),
    "kmeans_no_floor_sparse": lambda: _kmeans_no_floor(True),
    "label": lambda: _label(False),
    "label_sparse": lambda: _label(True),
    "groups_int_nearest": lambda: _groups(False, "int"),
    "groups_int_nearest_sparse": lambda: _groups(True, "int"),
    "groups_str_nearest": lambda: _groups(False, "str"),
    "groups_str_nearest_sparse": lambda: _groups(True, "str"),
    "groups_object_int_nearest": lambda: _groups(False, "object_int"),
    "groups_int_error": lambda: _groups(False, "int", unknown_group="error"),
    "estimator_kmeans": lambda: _estimator_router(False, KMEANS_3),
    "estimator_kmeans_sparse": lambda: _estimator_router(True, KMEANS_3),
    "estimator_scaled_kmeans": lambda: _estimator_router(
        False, make_pipeline(StandardScaler(), KMEANS_3)
    ),
    "independent": lambda: _kmeans_default(False, share_weights=False),
    "independent_sparse": lambda: _kmeans_default(True, share_weights=False),
    "regressor_multi_output": lambda: _regressor(False),
    "regressor_multi_output_sparse": lambda: _regressor(True),
    "cnn": _cnn,
    "neuron_kmeans_default_floor": lambda: _kmeans_default(False, prune_granularity="neuron"),
    "neuron_kmeans_default_floor_sparse": lambda: _kmeans_default(
        True, prune_granularity="neuron", sparsity=0.9
    ),
    "neuron_label": lambda: _label_neuron(),
    "neuron_cnn": lambda: _cnn(prune_granularity="neuron", sparsity=0.6),
}


@functools.cache
def _case(name) -> Case:
    """Fitted once per session (a failing fit or ticket-count check is not cached)."""
    return CASES[name]()


def _assert_agrees(out, case):
    np.testing.assert_allclose(out, case.expected(), atol=TOL, rtol=0)


# -------------------------------------------------------------------------- tests
@pytest.mark.parametrize("name", CASES)
def test_to_torch_agrees(name):
    case = _case(name)
    args = [torch.as_tensor(case.dense_x())]
    if case.group_tensor is not None:
        args.append(torch.as_tensor(case.group_tensor))
    with torch.no_grad():
        out = case.estimator.to_torch()(*args).numpy()
    _assert_agrees(out, case)


# ONNX export takes seconds per model: one case per structure of the exported graph
# (routing module, output, network), plus the object-array groups. The sparse-fitted
# twins, string groups, estimator-KMeans and independent cases build one of these graphs
# with other buffer values or group codes, which to_torch checks.
ONNX_CASES = [
    "kmeans_default_floor", "kmeans_auto_shared", "label", "groups_int_nearest",
    "groups_object_int_nearest", "groups_int_error", "regressor_multi_output", "cnn",
    "neuron_kmeans_default_floor", "neuron_cnn",
]  # fmt: skip


@pytest.mark.parametrize("name", ONNX_CASES)
def test_onnx_agrees(name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    case = _case(name)
    path = tmp_path / "model.onnx"
    export_onnx(case.estimator, path)
    feeds = {"x": case.dense_x()}
    if case.group_tensor is not None:
        feeds["groups"] = case.group_tensor
    (out,) = ort.InferenceSession(str(path)).run(None, feeds)
    _assert_agrees(out, case)


@pytest.mark.parametrize("name", CASES)
def test_pickle_agrees(name):
    case = _case(name)
    loaded = pickle.loads(pickle.dumps(case.estimator))
    _assert_agrees(_predict(loaded, case.X, case.groups), case)


_LOAD_AND_PREDICT = """
import pickle, sys, traceback
import numpy as np
import sklearn_rtl
from sklearn_rtl import RTLRegressor
folder = sys.argv[1]
with open(folder + "/inputs.pkl", "rb") as f:
    inputs = pickle.load(f)
results = {}
for name, (X, groups) in inputs.items():
    try:
        est = sklearn_rtl.load(folder + "/" + name + ".rtl")
        kwargs = {} if groups is None else {"groups": groups}
        predict = est.predict if isinstance(est, RTLRegressor) else est.predict_proba
        results[name] = predict(X, **kwargs)
    except Exception:
        results[name] = traceback.format_exc()
with open(folder + "/outputs.pkl", "wb") as f:
    pickle.dump(results, f)
"""


@pytest.fixture(scope="module")
def fresh_process_predictions(tmp_path_factory):
    """Every case saved, then loaded and predicted in one new Python process: the
    predictions, or the text of what went wrong (saving here or loading there)."""
    folder = tmp_path_factory.mktemp("saved")
    inputs, results = {}, {}
    for name in CASES:
        try:
            case = _case(name)
            sklearn_rtl.save(case.estimator, folder / f"{name}.rtl")
            inputs[name] = (case.X, case.groups)
        except Exception as error:  # reported by the case's own test
            results[name] = f"fit or save failed: {error!r}"
    with open(folder / "inputs.pkl", "wb") as f:
        pickle.dump(inputs, f)
    root = Path(sklearn_rtl.__file__).resolve().parents[1]  # this checkout's package
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_AND_PREDICT, str(folder)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    with open(folder / "outputs.pkl", "rb") as f:
        results.update(pickle.load(f))
    return results


@pytest.mark.parametrize("name", CASES)
def test_save_load_in_a_fresh_process_agrees(name, fresh_process_predictions):
    out = fresh_process_predictions[name]
    assert not isinstance(out, str), out
    _assert_agrees(out, _case(name))


def test_to_torch_refuses_a_router_it_cannot_express(tmp_path):
    d = _data()
    router = DecisionTreeClassifier(max_depth=2, random_state=0)
    est = RTLClassifier(**FAST, routing=router).fit(d["X"], d["y"])
    assert est.n_tickets_ >= 2
    with pytest.raises(ValueError, match=r"cannot express the router .*DecisionTreeClassifier"):
        est.to_torch()
    with pytest.raises(ValueError, match="cannot express the router"):
        export_onnx(est, tmp_path / "never-written.onnx")
    # every ticket still exports on its own
    x = torch.as_tensor(d["X_new"][:5], dtype=torch.float32)
    for k in range(est.n_tickets_):
        assert est.ticket_module(k)(x).shape == (5, 3)
