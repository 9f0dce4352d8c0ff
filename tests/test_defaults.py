"""Every public feature at full default parameters.

The other test files build on ``conftest.small_rtl`` (a tiny network, one pruning round,
``min_cluster_size=0`` and ``n_clusters=4``): here ``RTLClassifier()`` and ``RTLRegressor()``
are fitted once each exactly as a user constructs them, on 1,200 rows in four clear
clusters (each clears the default KMeans floor), and every public feature runs on them.

The default ``n_clusters="auto"`` takes both of its paths here: the classes follow a
different rule in every cluster, so the classifier keeps the 4 clusters' tickets; the
regression target follows one noisy rule everywhere, so the regressor routes every cluster
to one shared ticket (``test_ticket_choice.py`` tests the choice itself).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import ShuffleSplit

import sklearn_rtl
from conftest import ticket_data
from sklearn_rtl import RTLClassifier, RTLRegressor

torch.set_num_threads(1)

TOL = 1e-5


@pytest.fixture(scope="module")
def data():
    """Four blobs of 300 rows (each clears the default min_cluster_size=200): the class
    follows another direction in every blob (the clusters' tickets pay), the target one
    noisy rule in all of them (one shared ticket does as well)."""
    X, y, _ = ticket_data(pays=True)
    _, _, target = ticket_data(pays=False)
    return X, y, target


@pytest.fixture(scope="module")
def classifier(data):
    X, y, _ = data
    return RTLClassifier(random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def regressor(data):
    X, _, target = data
    return RTLRegressor(random_state=0).fit(X, target)


@pytest.fixture(params=["classifier", "regressor"])
def fitted(request, data):
    return request.getfixturevalue(request.param)


def _predictions(est, X):
    if isinstance(est, RTLClassifier):
        return est.predict_proba(X)
    return est.predict(X)


def test_defaults_are_defaults(classifier, regressor):
    """Every parameter at its default but the seed (the choice of ``n_clusters="auto"`` is
    asserted below, so the fit must not depend on the run)."""
    assert classifier.get_params() == RTLClassifier(random_state=0).get_params()
    assert regressor.get_params() == RTLRegressor(random_state=0).get_params()


def test_default_floor_keeps_every_cluster(fitted, data):
    assert fitted.n_clusters == "auto"
    np.testing.assert_array_equal(np.sort(fitted.router_.cluster_sizes_) >= 200, True)
    assert fitted.ticket_choice_["candidates"] == {"clusters": 4, "shared": 1}


def test_classifier_keeps_the_clusters_tickets(classifier, data):
    X = data[0]
    assert classifier.ticket_choice_["kept"] == "clusters"
    assert classifier.ticket_choice_["gain"] > 2 * classifier.ticket_choice_["gain_se"]
    # the default round (10 epochs) is scored halfway too, and the lead held
    choice = classifier.ticket_choice_
    assert choice["gain"] - choice["halfway_gain"] >= -2 * choice["change_se"]
    assert classifier.n_tickets_ == 4
    tickets = classifier.route(X)
    assert tickets.dtype.kind == "i"
    np.testing.assert_array_equal(np.unique(tickets), np.arange(4))


def test_regressor_shares_one_ticket(regressor, data):
    X = data[0]
    assert regressor.ticket_choice_["kept"] == "shared"
    assert regressor.n_tickets_ == 1 and regressor.router_.shared_
    np.testing.assert_array_equal(regressor.route(X), 0)


def test_classifier_predicts_and_scores(classifier, data):
    X, y, _ = data
    proba = classifier.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    prediction = classifier.predict(X)
    np.testing.assert_array_equal(prediction, classifier.classes_[proba.argmax(1)])
    assert classifier.score(X, y) == pytest.approx(accuracy_score(y, prediction))
    assert classifier.score(X, y) > 0.85
    assert classifier.decision_function(X).shape == (len(X), 3)


def test_regressor_predicts_and_scores(regressor, data):
    X, _, target = data
    prediction = regressor.predict(X)
    assert prediction.shape == (len(X),)
    assert regressor.score(X, target) == pytest.approx(r2_score(target, prediction))
    assert regressor.score(X, target) > 0.5  # noise as large as the signal: R^2 <= 0.56


def test_ticket_modules_give_the_routed_outputs(fitted, data):
    X = data[0]
    tickets = fitted.route(X)
    expected = _predictions(fitted, X)
    for k in range(fitted.n_tickets_):
        rows = tickets == k
        module = fitted.ticket_module(k)
        assert not module.training
        with torch.no_grad():
            out = module(torch.as_tensor(X[rows], dtype=torch.float32)).double().numpy()
        if isinstance(fitted, RTLClassifier):
            out = torch.softmax(torch.as_tensor(out), dim=1).numpy()
        else:  # standardized targets
            out = out[:, 0] * fitted.y_scale_ + fitted.y_mean_
        np.testing.assert_allclose(out, expected[rows], atol=TOL, rtol=0)


def test_to_torch_agrees(fitted, data):
    X = data[0]
    with torch.no_grad():
        out = fitted.to_torch()(torch.as_tensor(X, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(out, _predictions(fitted, X), atol=TOL, rtol=0)


def test_save_load_and_pickle_are_bit_identical(fitted, data, tmp_path):
    X = data[0]
    expected = _predictions(fitted, X)
    sklearn_rtl.save(fitted, tmp_path / "model.rtl")
    for loaded in (sklearn_rtl.load(tmp_path / "model.rtl"), pickle.loads(pickle.dumps(fitted))):
        assert type(loaded) is type(fitted) and loaded.n_tickets_ == fitted.n_tickets_
        assert _predictions(loaded, X).tobytes() == expected.tobytes()


def test_diagnostics(fitted):
    K = fitted.n_tickets_
    np.testing.assert_allclose(fitted.ticket_sparsity_, 0.8, atol=0.01)  # sparsity=0.8
    assert fitted.ticket_sparsity_.shape == (K,)
    assert 0.0 <= fitted.sparsity_ <= fitted.ticket_sparsity_.min() + 1e-9
    assert fitted.n_params_ < fitted.n_params_dense_
    assert fitted.similarity_.shape == (K, K)
    np.testing.assert_allclose(np.diag(fitted.similarity_), 1.0)
    assert set(fitted.layer_sparsity_) == set(fitted.layer_similarity_) != set()
    assert len(fitted.collapse_curve_) == 2  # n_prune_rounds=2
    assert isinstance(fitted.collapse_detected_, bool)
    assert np.isfinite(fitted.collapse_score_)
    assert set(fitted.n_iter_) == {"prune_round_1", "prune_round_2", "retrain"}
    assert len(fitted.loss_curve_) == fitted.n_iter_["retrain"] <= 200  # max_epochs
    assert fitted.validation_scores_ is None  # nothing held out by default
    assert len(fitted.masks_) == K
    assert all(mask.dtype == bool for masks in fitted.masks_ for mask in masks.values())


def test_onnx_export_agrees(fitted, data, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    X = data[0].astype(np.float32)
    sklearn_rtl.export_onnx(fitted, tmp_path / "model.onnx")
    (out,) = ort.InferenceSession(str(tmp_path / "model.onnx")).run(None, {"x": X})
    np.testing.assert_allclose(out, _predictions(fitted, X), atol=TOL, rtol=0)


def test_plots_of_the_default_classifier(classifier):
    assert classifier.n_tickets_ == 4
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from sklearn_rtl import plotting

    K = classifier.n_tickets_
    ax = plotting.plot_similarity(classifier)
    assert len(ax.get_xticklabels()) == K  # one row and column per ticket
    ax = plotting.plot_collapse_curve(classifier)
    assert len(ax.lines) >= 1
    ax = plotting.plot_ticket_sparsity(classifier)
    assert len(ax.patches) >= K
    plotting.plot_layer_similarity(classifier)
    matplotlib.pyplot.close("all")


def test_compare_baselines_at_the_defaults(data):
    """``compare_baselines`` of the default estimator: every row of the paper scored on
    the same splits (two of 900 training rows, so that the floor keeps the 4 tickets)."""
    X, y, _ = data
    splits = ShuffleSplit(n_splits=2, test_size=0.25, random_state=0)
    table = sklearn_rtl.compare_baselines(RTLClassifier(), X, y, cv=splits)
    models = list(table["model"])
    assert models[0] == "rtl" and {"independent", "dense"} <= set(models)
    scores = dict(zip(models, np.asarray(table["score_mean"], dtype=float), strict=True))
    assert min(scores.values()) > 0.8
    params = dict(zip(models, np.asarray(table["n_params"], dtype=float), strict=True))
    assert params["rtl"] < params["independent"]  # 4 tickets share one weight tensor
