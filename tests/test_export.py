"""Plain torch / ONNX export: ticket_module, to_torch, export_onnx match the estimator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits, load_iris
from sklearn.tree import DecisionTreeClassifier

from sklearn_rtl import RTLClassifier, RTLRegressor
from sklearn_rtl._export import CSRLinear, export_onnx, ticket_module, to_torch

torch.set_num_threads(1)

SMALL = dict(hidden_layer_sizes=(8,), n_prune_rounds=1, max_epochs=2, batch_size=16, random_state=0)
# Iris has 150 rows: under the default min_cluster_size (200) KMeans routing keeps one
# ticket and the exported KMeans routing would never be built. The machinery cases lift
# the floor; "kmeans_default_floor" fits enough rows for the default floor to keep 2 of 4
# clusters (its merged rows must reach both kept tickets).
NO_FLOOR = dict(min_cluster_size=0)
TOL = 1e-5


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return X.astype(np.float32), y, np.arange(len(X)) % 3


def _merged_blobs():
    """Two large blobs and two small ones next to different large ones (1,000 rows)."""
    rng = np.random.default_rng(0)
    centres = np.zeros((4, 6))
    centres[[0, 2], 0] = centres[[1, 3], 1] = 14.0
    centres[2, 2] = centres[3, 3] = 6.0
    blob = np.repeat(np.arange(4), [450, 400, 80, 70])
    X = (centres[blob] + rng.normal(size=(len(blob), 6))).astype(np.float32)
    return X, (X[:, 4] > 0).astype(int) + (X[:, 5] > 0), blob


def _kmeans_default_floor():
    X, y, blob = _merged_blobs()
    est = RTLClassifier(**SMALL, n_clusters=4).fit(X, y)  # the default min_cluster_size=200
    assert 1 < est.n_tickets_ < est.n_clusters
    assert len(set(est.route(X[blob >= 2]))) == est.n_tickets_  # merged rows: both tickets
    return est, X, None


def _fit(kind, iris):
    X, y, groups = iris
    if kind == "kmeans_default_floor":
        return _kmeans_default_floor()
    est, X_fit, groups_fit, n_tickets = _fit_iris(kind, X, y, groups)
    assert est.n_tickets_ == n_tickets, (kind, est.n_tickets_)
    return est, X_fit, groups_fit


def _fit_iris(kind, X, y, groups):
    """``(fitted, X, groups, the number of tickets the case means)``."""
    if kind == "kmeans":
        return RTLClassifier(**SMALL, **NO_FLOOR, n_clusters=3).fit(X, y), X, None, 3
    if kind == "single":
        return RTLClassifier(**SMALL, n_clusters=1).fit(X, y), X, None, 1
    if kind == "label":
        return RTLClassifier(**SMALL, routing="label").fit(X, y), X, None, 3
    if kind == "groups":
        est = RTLClassifier(**SMALL, routing="groups").fit(X, y, groups=groups)
        return est, X, groups, 3
    if kind == "kmeans_estimator":
        router = KMeans(n_clusters=2, n_init=1, random_state=0)
        return RTLClassifier(**SMALL, routing=router).fit(X, y), X, None, 2
    if kind == "regressor":
        est = RTLRegressor(**SMALL, **NO_FLOOR, n_clusters=2).fit(X[:, :3], X[:, 3])
        return est, X[:, :3], None, 2
    if kind == "regressor_2d":
        est = RTLRegressor(**SMALL, **NO_FLOOR, n_clusters=2).fit(X[:, :2], X[:, 2:])
        return est, X[:, :2], None, 2
    images = load_digits().images[:120].astype(np.float32)
    est = RTLClassifier(
        n_clusters=2,
        n_prune_rounds=1,
        max_epochs=1,
        random_state=0,
        module_params=dict(channels=(4, 8)),
        **NO_FLOOR,
    )
    return est.fit(images, load_digits().target[:120]), images, None, 2


KINDS = [
    "kmeans", "kmeans_default_floor", "single", "label", "groups", "kmeans_estimator",
    "regressor", "cnn",
]  # fmt: skip


def _expected(est, X, groups):
    kwargs = {} if groups is None else {"groups": groups}
    if hasattr(est, "classes_"):
        return est.predict_proba(X, **kwargs)
    return est.predict(X, **kwargs)


def _args(X, groups):
    args = (torch.as_tensor(X),)
    return args if groups is None else (*args, torch.as_tensor(groups, dtype=torch.int64))


@pytest.fixture(scope="module", params=KINDS)
def fitted(request, iris):
    return _fit(request.param, iris)


def test_ticket_module_matches_every_ticket(fitted):
    est, X, _ = fitted
    network = est.net_.module_
    inputs = torch.as_tensor(X.reshape(len(X), *est.input_shape_))
    for k in range(est.n_tickets_):
        module = ticket_module(est, k)
        assert not module.training
        assert "sklearn_rtl" not in type(module).__module__ or est.module is not None
        with torch.no_grad():
            expected = network.forward_ticket(inputs, k)
            np.testing.assert_allclose(module(inputs), expected, atol=TOL, rtol=0)
            csr = ticket_module(est, k, layout="csr")
            np.testing.assert_allclose(csr(inputs), expected, atol=TOL, rtol=0)


def test_ticket_module_bakes_the_mask_in(iris):
    est, _, _ = _fit("kmeans", iris)
    for k in range(est.n_tickets_):
        first = ticket_module(est, k)[0]
        assert isinstance(first, torch.nn.Linear)
        mask = est.masks_[k]["layers.0.weight"]
        assert np.all(first.weight.detach().numpy()[~mask] == 0)
        assert isinstance(ticket_module(est, k)[-1], torch.nn.Linear)


def test_csr_layout_stores_sparse_linear_weights():
    X, y = load_digits(return_X_y=True)
    est = RTLClassifier(**{**SMALL, "hidden_layer_sizes": (32,)}, sparsity=0.9, n_clusters=1)
    est.fit(X[:200], y[:200])
    csr = ticket_module(est, 0, layout="csr")
    assert isinstance(csr[0], CSRLinear) and csr[0].weight.layout == torch.sparse_csr
    assert isinstance(csr[-1], torch.nn.Linear)  # the dense output layer stays dense


def test_to_torch_matches_predictions(fitted):
    est, X, groups = fitted
    model = to_torch(est)
    with torch.no_grad():
        out = model(*_args(X, groups)).numpy()
    np.testing.assert_allclose(out, _expected(est, X, groups), atol=TOL, rtol=0)


def test_to_torch_regressor_multi_output(iris):
    est, X, _ = _fit("regressor_2d", iris)
    with torch.no_grad():
        out = to_torch(est)(torch.as_tensor(X)).numpy()
    assert out.shape == (len(X), 2)
    np.testing.assert_allclose(out, est.predict(X), atol=TOL, rtol=0)


def test_torch_export_with_dynamic_batch(fitted):
    est, X, groups = fitted
    args = _args(X[:5], groups[:5] if groups is not None else None)
    batch = torch.export.Dim("batch")
    program = torch.export.export(
        to_torch(est), args, dynamic_shapes=tuple({0: batch} for _ in args)
    )
    with torch.no_grad():
        out = program.module()(*_args(X, groups)).numpy()  # another batch size
    np.testing.assert_allclose(out, _expected(est, X, groups), atol=TOL, rtol=0)


def test_onnx_runtime_matches(fitted, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    est, X, groups = fitted
    path = tmp_path / "model.onnx"
    export_onnx(est, path)
    session = ort.InferenceSession(str(path))
    feeds = {"x": X.reshape(len(X), *est.input_shape_).astype(np.float32)}
    if groups is not None:
        feeds["groups"] = np.asarray(groups, dtype=np.int64)
    (out,) = session.run(None, feeds)
    np.testing.assert_allclose(out, _expected(est, X, groups), atol=TOL, rtol=0)
    (few,) = session.run(None, {k: v[:3] for k, v in feeds.items()})
    np.testing.assert_allclose(few, out[:3], atol=TOL, rtol=0)


def test_group_codes_for_string_groups_and_unknown_groups(iris):
    X, y, groups = iris
    names = np.array(["a", "b", "c"])[groups]
    est = RTLClassifier(**SMALL, routing="groups").fit(X, y, groups=names)
    codes = torch.as_tensor(np.searchsorted(est.router_.ticket_labels_, names))
    with torch.no_grad():
        out = to_torch(est)(torch.as_tensor(X), codes).numpy()
        np.testing.assert_allclose(out, est.predict_proba(X, groups=names), atol=TOL, rtol=0)
        unknown = to_torch(est)(torch.as_tensor(X[:2]), torch.tensor([7, 0])).numpy()
    assert np.isnan(unknown[0]).all() and np.isfinite(unknown[1]).all()
    nearest = RTLClassifier(**SMALL, routing="groups", unknown_group="nearest")
    nearest.fit(X, y, groups=groups)
    unseen = np.full(len(X), 9)
    with torch.no_grad():
        out = to_torch(nearest)(torch.as_tensor(X), torch.as_tensor(unseen)).numpy()
    np.testing.assert_allclose(out, nearest.predict_proba(X, groups=unseen), atol=TOL, rtol=0)


def test_unexpressible_router_raises(iris):
    X, y, _ = iris
    router = DecisionTreeClassifier(max_depth=1, random_state=0)  # any estimator
    est = RTLClassifier(**SMALL, routing=router).fit(X, y)
    assert est.n_tickets_ == 2
    with pytest.raises(ValueError, match="cannot express the router"):
        to_torch(est)
    ticket_module(est, 0)  # single tickets still export


def test_ticket_module_validates_arguments(iris):
    est, _, _ = _fit("kmeans", iris)
    with pytest.raises(ValueError, match="k must be in"):
        ticket_module(est, est.n_tickets_)
    with pytest.raises(TypeError, match="k must be an int"):
        ticket_module(est, 0.5)
    with pytest.raises(ValueError, match="layout must be"):
        ticket_module(est, 0, layout="coo")
