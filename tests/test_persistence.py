"""Persistence and determinism: pickle/joblib round trips, random_state, clone."""

from __future__ import annotations

import io
import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.exceptions import NotFittedError

from conftest import small_rtl
from sklearn_rtl import RTLClassifier

# small_rtl lifts the KMeans floor (min_cluster_size=0): 90 rows would be one ticket under
# the default; test_default_floor_round_trips_and_reproduces runs the default.
SMALL = dict(n_clusters=2)
ROUTINGS = ["kmeans", "label", KMeans(n_clusters=2, n_init=1, random_state=0)]
ROUTING_IDS = ["kmeans", "label", "estimator"]
N_TICKETS = [2, 3, 2]  # what each routing means on the three blobs
CASES = list(zip(ROUTINGS, N_TICKETS, strict=True))


@pytest.fixture(scope="module")
def data():
    X, y = make_blobs(n_samples=90, centers=3, n_features=5, random_state=0)
    return X, y


@pytest.fixture(scope="module", params=CASES, ids=ROUTING_IDS)
def fitted(request, data):
    routing, n_tickets = request.param
    clf = small_rtl(**SMALL, routing=routing, random_state=0).fit(*data)
    assert clf.n_tickets_ == n_tickets
    return clf


def _outputs(clf, X):
    return {
        "predict_proba": clf.predict_proba(X),
        "decision_function": clf.decision_function(X),
        "predict": clf.predict(X),
        "route": clf.route(X),
    }


def _assert_bit_identical(a, b):
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        assert a[name].tobytes() == b[name].tobytes(), name  # bitwise, not allclose


# --------------------------------------------------------------------- round trips
def test_pickle_round_trip_is_bit_identical(fitted, data):
    X, _ = data
    loaded = pickle.loads(pickle.dumps(fitted))
    assert loaded is not fitted and loaded.net_ is not fitted.net_
    _assert_bit_identical(_outputs(fitted, X), _outputs(loaded, X))
    assert loaded.get_params().keys() == fitted.get_params().keys()
    np.testing.assert_array_equal(loaded.classes_, fitted.classes_)
    np.testing.assert_array_equal(loaded.ticket_sparsity_, fitted.ticket_sparsity_)
    for mine, theirs in zip(fitted.masks_, loaded.masks_, strict=True):
        for name in mine:
            np.testing.assert_array_equal(mine[name], theirs[name])


def test_joblib_round_trip_is_bit_identical(fitted, data, tmp_path):
    X, _ = data
    path = tmp_path / "rtl.joblib"
    joblib.dump(fitted, path)
    loaded = joblib.load(path)
    _assert_bit_identical(_outputs(fitted, X), _outputs(loaded, X))
    # compressed, and through a file object
    buffer = io.BytesIO()
    joblib.dump(fitted, buffer, compress=3)
    buffer.seek(0)
    _assert_bit_identical(_outputs(fitted, X), _outputs(joblib.load(buffer), X))


def test_loaded_model_can_be_refitted_and_saved_again(fitted, data):
    X, y = data
    loaded = pickle.loads(pickle.dumps(fitted))
    refitted = loaded.fit(X, y)
    _assert_bit_identical(_outputs(fitted, X), _outputs(refitted, X))  # same random_state
    again = pickle.loads(pickle.dumps(refitted))
    _assert_bit_identical(_outputs(fitted, X), _outputs(again, X))


def test_unfitted_estimator_round_trip(data):
    clf = small_rtl(**SMALL, random_state=0)
    loaded = pickle.loads(pickle.dumps(clf))
    assert loaded.get_params() == clf.get_params()
    with pytest.raises(NotFittedError):
        loaded.predict(data[0])


def test_pickle_does_not_hold_the_training_data(fitted, data):
    # The skorch net must not keep X (the saved model would grow with the data set).
    X, _ = data
    blob = pickle.dumps(fitted)
    assert np.ascontiguousarray(X, dtype=np.float32).tobytes()[:64] not in blob


# --------------------------------------------------------------------- determinism
@pytest.mark.parametrize(("routing", "n_tickets"), CASES, ids=ROUTING_IDS)
def test_same_random_state_is_bit_identical(data, routing, n_tickets):
    X, y = data
    a = small_rtl(**SMALL, routing=routing, random_state=7).fit(X, y)
    assert a.n_tickets_ == n_tickets
    b = small_rtl(**SMALL, routing=routing, random_state=7).fit(X, y)
    _assert_bit_identical(_outputs(a, X), _outputs(b, X))
    for mine, theirs in zip(a.masks_, b.masks_, strict=True):
        for name in mine:
            np.testing.assert_array_equal(mine[name], theirs[name])
    c = small_rtl(**SMALL, routing=routing, random_state=8).fit(X, y)
    assert a.predict_proba(X).tobytes() != c.predict_proba(X).tobytes()


def test_default_floor_round_trips_and_reproduces():
    # enough rows for the default min_cluster_size=200 to keep 2 of 4 KMeans clusters
    rng = np.random.default_rng(0)
    sizes = [450, 400, 80, 70]
    centres = np.array([[14.0, 0, 0, 0], [0, 14, 0, 0], [14, 0, 6, 0], [0, 14, 0, 6]])
    blob = np.repeat(np.arange(4), sizes)
    X = centres[blob] + rng.normal(size=(len(blob), 4))
    y = (X[:, 2] + rng.normal(size=len(X)) > 1).astype(int)
    fast = dict(hidden_layer_sizes=(8,), n_prune_rounds=1, max_epochs=2, batch_size=64)
    fast["n_clusters"] = 4  # "auto" may keep one ticket (test_ticket_choice.py)
    a = RTLClassifier(**fast, random_state=7).fit(X, y)
    assert 1 < a.n_tickets_ < a.n_clusters
    assert len(set(a.route(X[blob >= 2]))) == a.n_tickets_  # merged rows reach both tickets
    b = RTLClassifier(**fast, random_state=7).fit(X, y)
    _assert_bit_identical(_outputs(a, X), _outputs(b, X))
    _assert_bit_identical(_outputs(a, X), _outputs(pickle.loads(pickle.dumps(a)), X))
    buffer = io.BytesIO()
    joblib.dump(a, buffer)
    buffer.seek(0)
    _assert_bit_identical(_outputs(a, X), _outputs(joblib.load(buffer), X))


def test_random_state_instance_is_reproducible(data):
    X, y = data
    a = small_rtl(**SMALL, random_state=np.random.RandomState(3)).fit(X, y)
    b = small_rtl(**SMALL, random_state=np.random.RandomState(3)).fit(X, y)
    _assert_bit_identical(_outputs(a, X), _outputs(b, X))


def test_fit_does_not_touch_global_seeds(data):
    X, y = data
    torch.manual_seed(123)
    np.random.seed(123)
    small_rtl(**SMALL, random_state=0).fit(X, y)
    after = torch.rand(3), np.random.rand(3)
    torch.manual_seed(123)
    np.random.seed(123)
    expected = torch.rand(3), np.random.rand(3)
    assert torch.equal(after[0], expected[0])
    np.testing.assert_array_equal(after[1], expected[1])


@pytest.mark.parametrize("routing", ["kmeans", "label"])
def test_random_state_none_varies(data, routing):
    X, y = data
    torch.manual_seed(0)  # even with a fixed global torch seed
    a = small_rtl(**SMALL, routing=routing, random_state=None).fit(X, y).predict_proba(X)
    torch.manual_seed(0)
    b = small_rtl(**SMALL, routing=routing, random_state=None).fit(X, y).predict_proba(X)
    assert a.tobytes() != b.tobytes()


# --------------------------------------------------------------------------- clone
def test_clone_is_unfitted_with_identical_parameters(fitted, data):
    clf = small_rtl(
        **SMALL,
        routing=fitted.routing,
        optimizer_params={"weight_decay": 1e-4},
    )
    for source in (clf, fitted):
        copy = clone(source)
        assert copy is not source
        params, original = copy.get_params(deep=False), source.get_params(deep=False)
        assert params.keys() == original.keys()
        for name, value in original.items():
            if hasattr(value, "get_params"):  # estimator routers are cloned too
                assert type(params[name]) is type(value)
                assert params[name].get_params() == value.get_params()
            else:
                assert params[name] == value, name
        assert not [k for k in vars(copy) if k.endswith("_") and not k.startswith("__")]
        with pytest.raises(NotFittedError):
            copy.predict(data[0])
    # a clone of a fitted model refits to the very same model
    refit = clone(fitted).fit(*data)
    _assert_bit_identical(_outputs(fitted, data[0]), _outputs(refit, data[0]))
