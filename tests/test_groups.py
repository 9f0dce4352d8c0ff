"""routing="groups": one ticket per known context, through metadata routing."""

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from conftest import small_rtl
from sklearn_rtl import RTLRegressor

FAST = dict(hidden_layer_sizes=(16,), max_epochs=5, lr=1e-2, batch_size=128)


@pytest.fixture(scope="module")
def context_data():
    """Two environments where the same feature means opposite things."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 3))
    groups = np.repeat(["indoor", "outdoor", "street", "train"], 60)
    flip = np.isin(groups, ["outdoor", "train"])
    y = np.where(flip, X[:, 0] < 0, X[:, 0] > 0).astype(int)
    return X, y, groups


@pytest.fixture
def metadata_routing():
    with sklearn.config_context(enable_metadata_routing=True):
        yield


def test_one_ticket_per_group_and_context_matters(context_data):
    X, y, groups = context_data
    params = {**FAST, "max_epochs": 20, "batch_size": 16}
    clf = small_rtl(routing="groups", sparsity=0.5, **params).fit(X, y, groups=groups)
    assert clf.n_tickets_ == 4
    labels = ["indoor", "outdoor", "street", "train"]
    np.testing.assert_array_equal(clf.router_.ticket_labels_, labels)
    np.testing.assert_array_equal(clf.route(X, groups=groups), np.repeat([0, 1, 2, 3], 60))
    assert clf.score(X, y, groups=groups) > 0.9
    # the same samples under the wrong context are mostly wrong
    wrong = np.where(groups == "indoor", "outdoor", "indoor")
    assert clf.score(X, y, groups=wrong) < 0.5
    proba = clf.predict_proba(X, groups=groups)
    np.testing.assert_allclose(proba.sum(1), 1.0)


def test_missing_and_malformed_groups_are_clear_errors(context_data):
    X, y, groups = context_data
    with pytest.raises(ValueError, match="needs the context of every sample: pass groups"):
        small_rtl(routing="groups", **FAST).fit(X, y)
    with pytest.raises(ValueError, match="one value per sample"):
        small_rtl(routing="groups", **FAST).fit(X, y, groups=groups[:10])
    clf = small_rtl(routing="groups", **FAST).fit(X, y, groups=groups)
    with pytest.raises(ValueError, match="needs the context"):
        clf.predict(X)
    with pytest.raises(ValueError, match="needs the context"):
        clf.predict_proba(X)


def test_unseen_group_errors_by_default_and_nearest_routes(context_data):
    X, y, groups = context_data
    clf = small_rtl(routing="groups", **FAST).fit(X, y, groups=groups)
    with pytest.raises(ValueError, match=r"never seen during fit: \['plane'\]"):
        clf.predict(X[:3], groups=["plane", "indoor", "indoor"])
    nearest = small_rtl(routing="groups", unknown_group="nearest", **FAST)
    nearest.fit(X, y, groups=groups)
    tickets = nearest.route(X[:3], groups=["plane", "indoor", "plane"])
    assert tickets[1] == 0 and set(tickets) <= {0, 1, 2, 3}
    centroids = nearest.router_.centroids_
    scaled = nearest.router_.scaler_.transform(X[:1].astype(np.float32))
    assert tickets[0] == np.argmin(((centroids - scaled) ** 2).sum(1))


def test_unseen_group_nearest_on_sparse_X(context_data):
    # A sparse X is scaled without centring (router_.scaler_): the unseen group's rows go to
    # the nearest centroid in that space, and predict takes them like any other rows.
    X, y, groups = context_data
    X = sp.csr_matrix(np.where(np.abs(X) < 0.5, 0.0, X))
    clf = small_rtl(routing="groups", unknown_group="nearest", **FAST).fit(X, y, groups=groups)
    unseen = np.array(["plane"] * 5 + ["indoor"] * 5)
    tickets = clf.route(X[:10], groups=unseen)
    scaled = clf.router_.scaler_.transform(X[:5].astype(np.float32)).toarray()
    centroids = clf.router_.centroids_
    nearest = np.argmin(((scaled[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(tickets, np.r_[nearest, [0] * 5])
    proba = clf.predict_proba(X[:10], groups=unseen)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)


def test_groups_ignored_by_other_routings(context_data):
    X, y, groups = context_data
    clf = small_rtl(routing="kmeans", n_clusters=2, **FAST).fit(X, y, groups=groups)
    assert clf.n_tickets_ == 2  # small_rtl lifts the KMeans floor
    np.testing.assert_array_equal(clf.predict(X), clf.predict(X, groups=groups))


def test_groups_reach_fit_predict_and_score_in_a_pipeline(context_data, metadata_routing):
    X, y, groups = context_data
    clf = (
        small_rtl(routing="groups", **FAST)
        .set_fit_request(groups=True)
        .set_predict_request(groups=True)
        .set_score_request(groups=True)
    )
    pipe = make_pipeline(StandardScaler(), clf).fit(X, y, groups=groups)
    assert pipe[-1].n_tickets_ == 4
    assert pipe.score(X, y, groups=groups) == pytest.approx(
        np.mean(pipe.predict(X, groups=groups) == y)
    )
    with pytest.raises(ValueError, match="needs the context"):
        pipe.predict(X)


def test_grouped_cross_validation_routes_unseen_groups_to_nearest(context_data, metadata_routing):
    X, y, groups = context_data
    clf = (
        small_rtl(RTLRegressor, routing="groups", unknown_group="nearest", **FAST)
        .set_fit_request(groups=True)
        .set_predict_request(groups=True)
        .set_score_request(groups=True)
    )
    search = GridSearchCV(
        make_pipeline(StandardScaler(), clf),
        {"rtlregressor__sparsity": [0.3, 0.6]},
        cv=GroupKFold(n_splits=2),
    )
    search.fit(X, y.astype(float), groups=groups)
    assert set(search.cv_results_["param_rtlregressor__sparsity"]) == {0.3, 0.6}
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    # with the default unknown_group="error", every GroupKFold test fold is unseen: a clear error
    strict = (
        small_rtl(routing="groups", **FAST)
        .set_fit_request(groups=True)
        .set_score_request(groups=True)
    )
    with pytest.raises(ValueError, match="never seen during fit"):
        cross_val_score(
            strict,
            X,
            y,
            cv=GroupKFold(n_splits=2),
            params={"groups": groups},
            error_score="raise",
        )
