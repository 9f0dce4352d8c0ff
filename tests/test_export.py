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
TOL = 1e-5


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return X.astype(np.float32), y, np.arange(len(X)) % 3


def _fit(kind, iris):
    X, y, groups = iris
    if kind == "kmeans":
        return RTLClassifier(**SMALL, n_clusters=3).fit(X, y), X, None
    if kind == "single":
        return RTLClassifier(**SMALL, n_clusters=1).fit(X, y), X, None
    if kind == "label":
        return RTLClassifier(**SMALL, routing="label").fit(X, y), X, None
    if kind == "groups":
        return RTLClassifier(**SMALL, routing="groups").fit(X, y, groups=groups), X, groups
    if kind == "kmeans_estimator":
        router = KMeans(n_clusters=2, n_init=1, random_state=0)
        return RTLClassifier(**SMALL, routing=router).fit(X, y), X, None
    if kind == "regressor":
        return RTLRegressor(**SMALL, n_clusters=2).fit(X[:, :3], X[:, 3]), X[:, :3], None
    if kind == "regressor_2d":
        return RTLRegressor(**SMALL, n_clusters=2).fit(X[:, :2], X[:, 2:]), X[:, :2], None
    images = load_digits().images[:120].astype(np.float32)
    est = RTLClassifier(
        n_clusters=2,
        n_prune_rounds=1,
        max_epochs=1,
        random_state=0,
        module_params=dict(channels=(4, 8)),
    )
    return est.fit(images, load_digits().target[:120]), images, None


KINDS = ["kmeans", "single", "label", "groups", "kmeans_estimator", "regressor", "cnn"]


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
