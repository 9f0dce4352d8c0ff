"""Bad input gives a clear ValueError/TypeError, never a torch error or a silent wrong answer.

Every case is tested on its own, with the exception type and the words of its message. The
property-based tests (hypothesis), which throw random shapes, dtypes and values at fit and
predict, are in ``test_hypothesis.py``.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.exceptions import NotFittedError

from conftest import small_rtl

SMALL = dict(max_epochs=1, n_clusters=2, batch_size=128)
ROUTINGS = ["kmeans", "label", KMeans(n_clusters=2, n_init=1, random_state=0)]
ROUTING_IDS = ["kmeans", "label", "estimator"]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = np.arange(40) % 2
    return X, y


@pytest.fixture(scope="module", params=ROUTINGS, ids=ROUTING_IDS)
def fitted(request, data):
    return small_rtl(**SMALL, routing=request.param).fit(*data)


def _clf(**params):
    return small_rtl(**{**SMALL, **params})


PREDICT_METHODS = ["predict", "predict_proba", "decision_function", "route", "score"]


def _call(estimator, method, X, y=None):
    if method == "score":
        return estimator.score(X, np.zeros(len(X), dtype=int) if y is None else y)
    return getattr(estimator, method)(X)


# ------------------------------------------------------------------------ X at fit
def test_nan_in_X_at_fit(data):
    X, y = data
    X = X.copy()
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        _clf().fit(X, y)


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_inf_in_X_at_fit(data, value):
    X, y = data
    X = X.copy()
    X[0, 0] = value
    with pytest.raises(ValueError, match="Input X contains infinity"):
        _clf().fit(X, y)


def test_value_too_large_for_float32_at_fit(data):
    X, y = data
    X = X.copy()
    X[0, 0] = 1e300  # finite in float64, inf once cast to the network's float32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ValueError, match="too large for dtype\\('float32'\\)"):
            _clf().fit(X, y)


def test_1d_X(data):
    X, y = data
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        _clf().fit(X[:, 0], y)


def test_X_of_too_many_dimensions_for_the_default_networks(data):
    # 2-D X goes to the MLP, 3-D/4-D X (images) to the default CNN; 5-D X fits neither.
    _, y = data
    X = np.zeros((40, 1, 1, 1, 3))
    with pytest.raises(ValueError, match="Without a module, X must be 2-D"):
        _clf().fit(X, y)


def test_predict_X_of_other_dimensionality_than_fit(data):
    X, y = data
    flat = _clf().fit(X, y)
    with pytest.raises(ValueError, match="Found array with dim 3"):
        flat.predict(X.reshape(40, 3, 1))
    images = _clf().fit(X.reshape(40, 3, 1), y)
    with pytest.raises(ValueError, match="samples of shape \\(3,\\).*fitted on samples of shape"):
        images.predict(X)


def test_scalar_and_none_X(data):
    _, y = data
    with pytest.raises(ValueError, match="Expected 2D array, got scalar array"):
        _clf().fit(None, y)


def test_zero_samples(data):
    X, y = data
    with pytest.raises(ValueError, match="0 sample\\(s\\)"):
        _clf().fit(X[:0], y[:0])


def test_zero_features(data):
    X, y = data
    with pytest.raises(ValueError, match="0 feature\\(s\\)"):
        _clf().fit(X[:, :0], y)


def test_complex_X(data):
    X, y = data
    with pytest.raises(ValueError, match="Complex data not supported"):
        _clf().fit(X + 1j, y)


def test_string_X(data):
    X, y = data
    with pytest.raises(ValueError, match="could not convert string to float"):
        _clf().fit(np.full(X.shape, "a"), y)


def test_object_X(data):
    X, y = data
    X = X.astype(object)
    X[0, 0] = {"not": "a number"}
    with pytest.raises(TypeError, match="must be a string or a (real )?number"):
        _clf().fit(X, y)


def test_non_numeric_dataframe(data):
    pd = pytest.importorskip("pandas")
    X, y = data
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    frame["c"] = "text"
    with pytest.raises(ValueError, match="could not convert string to float"):
        _clf().fit(frame, y)


# ------------------------------------------------------------------------------- y
def test_one_class(data):
    X, _ = data
    with pytest.raises(ValueError, match="at least 2 classes; got 1 class"):
        _clf().fit(X, np.zeros(len(X)))


def test_len_y_differs_from_len_X(data):
    X, y = data
    with pytest.raises(ValueError, match="inconsistent numbers of samples: \\[40, 39\\]"):
        _clf().fit(X, y[:-1])


def test_continuous_y(data):
    X, _ = data
    y = np.linspace(0.0, 1.0, len(X))
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        _clf().fit(X, y)


def test_nan_in_y(data):
    X, y = data
    with pytest.raises(ValueError, match="Input y contains NaN"):
        _clf().fit(X, np.where(y == 0, np.nan, 1.0))


def test_2d_y(data):
    X, y = data
    with pytest.raises(ValueError, match="y should be a 1d array"):
        _clf().fit(X, np.c_[y, y])


# ----------------------------------------------------------------- hyper-parameters
def _param_error(name, value):
    """The message scikit-learn's parameter validation gives: it names the parameter,
    what it accepts and the value."""
    return f"The '{name}' parameter of RTL\\w+ must be .* Got {re.escape(repr(value))} instead"


@pytest.mark.parametrize("sparsity", [-0.1, 1.0, 1.5, np.nan, np.inf])
def test_sparsity_outside_unit_interval(data, sparsity):
    with pytest.raises(ValueError, match=_param_error("sparsity", sparsity)):
        _clf(sparsity=sparsity).fit(*data)
    with pytest.raises(ValueError, match="a float in the range \\[0.0, 1.0\\) or a str among"):
        _clf(sparsity=sparsity).fit(*data)


@pytest.mark.parametrize("sparsity", ["0.5", None, True, [0.5]])
def test_sparsity_not_a_number(data, sparsity):
    # InvalidParameterError is both a ValueError and a TypeError.
    for error in (ValueError, TypeError):
        with pytest.raises(error, match=_param_error("sparsity", sparsity)):
            _clf(sparsity=sparsity).fit(*data)


@pytest.mark.parametrize("n_clusters", [0, -3])
def test_n_clusters_below_one(data, n_clusters):
    with pytest.raises(ValueError, match=_param_error("n_clusters", n_clusters)):
        _clf(n_clusters=n_clusters).fit(*data)


def test_n_clusters_more_than_samples(data):
    with pytest.raises(ValueError, match="n_clusters=41 must be <= n_samples=40"):
        _clf(n_clusters=41).fit(*data)


@pytest.mark.parametrize("n_clusters", [2.0, None, "2"])
def test_n_clusters_not_an_int(data, n_clusters):
    with pytest.raises(TypeError, match=_param_error("n_clusters", n_clusters)):
        _clf(n_clusters=n_clusters).fit(*data)


@pytest.mark.parametrize("routing", ["random", "KMeans", ""])
def test_unknown_routing(data, routing):
    with pytest.raises(
        ValueError,
        # (the options are a set: their order in the message varies between runs)
        match=f"'routing' parameter of RTLClassifier must be a str among "
        f"\\{{('\\w+'(, )?){{3}}\\}} or an object implementing 'fit' and 'predict'. "
        f"Got '{routing}' instead",
    ):
        _clf(routing=routing).fit(*data)


class _FitOnly:
    def fit(self, X, y=None):
        return self


class _PredictOnly:
    def predict(self, X):
        return np.zeros(len(X), dtype=int)


@pytest.mark.parametrize("routing", [None, 3, object(), _FitOnly(), _PredictOnly()])
def test_router_without_fit_or_predict(data, routing):
    with pytest.raises(
        TypeError,
        match="'routing' parameter of RTLClassifier must be .*"
        "an object implementing 'fit' and 'predict'",
    ):
        _clf(routing=routing).fit(*data)


class _TwoColumnRouter(BaseEstimator):
    def fit(self, X, y=None):
        return self

    def predict(self, X):
        return np.zeros((len(X), 2))


def test_router_predict_with_wrong_shape(data):
    with pytest.raises(ValueError, match="one ticket label per sample"):
        _clf(routing=_TwoColumnRouter()).fit(*data)


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"hidden_layer_sizes": (8, 0)}, ValueError, "hidden_layer_sizes must hold positive ints"),
        ({"hidden_layer_sizes": "wide"}, TypeError, _param_error("hidden_layer_sizes", "wide")),
        ({"n_prune_rounds": 0}, ValueError, _param_error("n_prune_rounds", 0)),
        ({"max_epochs": 1.5}, TypeError, _param_error("max_epochs", 1.5)),
        ({"lr": -1.0}, ValueError, _param_error("lr", -1.0)),
        ({"batch_size": 0}, ValueError, _param_error("batch_size", 0)),
        ({"prune_scope": "row"}, ValueError, _param_error("prune_scope", "row")),
        ({"optimizer": "adam"}, TypeError, _param_error("optimizer", "adam")),
        (
            {"optimizer": dict},
            TypeError,
            "'optimizer' parameter .* torch.optim.optimizer.Optimizer",
        ),
        ({"module": dict}, TypeError, "'module' parameter .* torch.nn.modules.module.Module"),
        ({"share_weights": "yes"}, TypeError, _param_error("share_weights", "yes")),
        ({"prune_output_layer": "yes"}, TypeError, _param_error("prune_output_layer", "yes")),
        ({"module_params": [1]}, TypeError, _param_error("module_params", [1])),
        ({"device": "no-such-device"}, ValueError, "device must be"),
    ],
)
def test_other_bad_hyperparameters(data, params, error, match):
    with pytest.raises(error, match=match):
        _clf(**params).fit(*data)


# -------------------------------------------------- X the network cannot take
class _ConvNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3)
        self.head = torch.nn.Linear(2, 2)

    def forward(self, X):
        return self.head(self.conv(X).mean((2, 3)))


class _FiveInputs(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(5, 4)
        self.head = torch.nn.Linear(4, 2)

    def forward(self, X):
        return self.head(self.hidden(X))


class _ThreeOutputs(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(3, 4)
        self.head = torch.nn.Linear(4, 3)

    def forward(self, X):
        return self.head(self.hidden(X))


def test_X_of_unexpected_dimensionality_for_the_network(data):
    # A Conv2d network needs 4-D input; X is (n_samples, n_features).
    with pytest.raises(ValueError, match="The network cannot take X of shape \\(40, 3\\)"):
        _clf(module=_ConvNet).fit(*data)


def test_X_with_features_the_network_does_not_expect(data):
    with pytest.raises(ValueError, match="The network cannot take X of shape \\(40, 3\\)"):
        _clf(module=_FiveInputs).fit(*data)


def test_network_with_wrong_number_of_outputs(data):
    with pytest.raises(ValueError, match="outputs of shape \\(n_samples, 2\\), got \\(2, 3\\)"):
        _clf(module=_ThreeOutputs).fit(*data)


def test_module_without_prunable_weights(data):
    class NoWeights(torch.nn.Module):
        def forward(self, X):
            return X[:, :2]

    with pytest.raises(ValueError, match="no Linear or Conv weights"):
        _clf(module=NoWeights).fit(*data)


# ------------------------------------------------------------------------- predict
@pytest.mark.parametrize("method", PREDICT_METHODS)
def test_predict_before_fit(data, method):
    X, _ = data
    with pytest.raises(NotFittedError, match="not fitted yet"):
        _call(_clf(), method, X)


@pytest.mark.parametrize("method", PREDICT_METHODS)
def test_not_fitted_comes_before_input_validation(method):
    # check_is_fitted runs first: garbage X still says "not fitted".
    with pytest.raises(NotFittedError):
        _call(_clf(), method, np.array([["junk"]]))


@pytest.mark.parametrize("method", PREDICT_METHODS)
def test_nan_and_inf_at_predict(fitted, data, method):
    X, _ = data
    X = X.copy()
    X[5, 2] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        _call(fitted, method, X)
    X[5, 2] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity"):
        _call(fitted, method, X)


@pytest.mark.parametrize("method", PREDICT_METHODS)
def test_wrong_number_of_features_at_predict(fitted, data, method):
    X, _ = data
    with pytest.raises(ValueError, match="X has 2 features, but RTLClassifier is expecting 3"):
        _call(fitted, method, X[:, :2])
    with pytest.raises(ValueError, match="X has 4 features, but RTLClassifier is expecting 3"):
        _call(fitted, method, np.c_[X, X[:, 0]])


@pytest.mark.parametrize("method", PREDICT_METHODS)
def test_1d_3d_empty_complex_at_predict(fitted, data, method):
    X, _ = data
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        _call(fitted, method, X[0])
    with pytest.raises(ValueError, match="Found array with dim 3"):
        _call(fitted, method, X[:, :, None])
    with pytest.raises(ValueError, match="0 sample\\(s\\)"):
        _call(fitted, method, X[:0])
    with pytest.raises(ValueError, match="Complex data not supported"):
        _call(fitted, method, X + 1j)
    with pytest.raises(ValueError, match="could not convert string to float"):
        _call(fitted, method, np.full(X.shape, "a"))


class _Overflowing(torch.nn.Module):
    """Finite on the training data, overflows float32 far outside it."""

    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(3, 4)
        self.head = torch.nn.Linear(4, 2)

    def forward(self, X):
        return self.head(self.hidden(X)) * torch.exp(X.abs().amax(1, keepdim=True))


@pytest.mark.parametrize("routing", ["kmeans", "label"])
def test_predict_on_values_far_beyond_training(data, routing):
    # Finite inputs that make the network overflow must not give NaN probabilities.
    X, y = data
    module = _Overflowing() if routing == "kmeans" else None
    params = {"module": module} if module is not None else {}
    clf = _clf(routing=routing, **params).fit(X, y)
    assert np.all(np.isfinite(clf.predict_proba(X)))
    X_big = np.sign(X) * (200.0 if module is not None else 3e38)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            proba = clf.predict_proba(X_big)
        except ValueError as error:
            assert re.search("not finite|too large for dtype", str(error)), error
        else:
            assert module is None, "the overflowing module must have raised"
            assert np.all(np.isfinite(proba))
            np.testing.assert_allclose(proba.sum(1), 1.0)


def test_overflowing_network_names_the_problem(data):
    X, y = data
    clf = _clf(module=_Overflowing()).fit(X, y)
    with pytest.raises(ValueError, match="network's outputs for X are not finite"):
        clf.predict_proba(X * 200.0)


def test_training_that_diverges_raises(data):
    # A learning rate that sends the weights to inf/NaN: a clear error, not NaN predictions.
    with pytest.raises(ValueError, match="Training produced non-finite weights"):
        _clf(lr=1e38, max_epochs=2).fit(*data)


@pytest.mark.parametrize("routing", ROUTINGS, ids=ROUTING_IDS)
def test_failed_fit_leaves_the_estimator_as_it_was(data, routing):
    X, y = data
    clf = _clf(routing=routing)
    with pytest.raises(ValueError):
        clf.fit(X, np.zeros(len(X)))  # fails after validate_data set n_features_in_
    assert not any(k.endswith("_") and not k.startswith("__") for k in vars(clf))
    with pytest.raises(NotFittedError):
        clf.predict(X)

    clf.fit(X, y)
    expected = clf.predict_proba(X)
    before = dict(vars(clf))
    with pytest.raises(ValueError):
        clf.fit(X[:, :2], np.zeros(len(X)))  # a failed refit keeps the previous model
    assert vars(clf).keys() == before.keys()
    assert all(vars(clf)[k] is before[k] for k in before)
    np.testing.assert_array_equal(clf.predict_proba(X), expected)


# ---------------------------------------------------------- feature names (pandas)
def test_feature_names_in_and_mismatch_warnings(data):
    pd = pytest.importorskip("pandas")
    X, y = data
    frame = pd.DataFrame(X, columns=["f0", "f1", "f2"])
    clf = _clf().fit(frame, y)
    np.testing.assert_array_equal(clf.feature_names_in_, ["f0", "f1", "f2"])
    assert clf.n_features_in_ == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        expected = clf.predict_proba(frame)
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        np.testing.assert_array_equal(clf.predict_proba(X), expected)
    with pytest.raises(ValueError, match="feature names should match"):
        clf.predict(frame.rename(columns={"f2": "other"}))
    with pytest.raises(ValueError, match="feature names should match"):
        clf.predict(frame[["f2", "f1", "f0"]])

    plain = _clf().fit(X, y)
    assert not hasattr(plain, "feature_names_in_")
    with pytest.warns(UserWarning, match="X has feature names, but RTLClassifier was fitted"):
        plain.predict(frame)


# --------------------------------------------------------------- small groups fit
def test_label_routing_with_a_single_sample_class(data):
    X, y = data
    y = y.copy()
    y[0] = 2  # class 2 has exactly one sample
    clf = _clf(routing="label").fit(X, y)
    assert clf.n_tickets_ == 3
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    proba = clf.predict_proba(X)
    assert proba.shape == (40, 3) and np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(1), 1.0)


def test_kmeans_cluster_with_a_single_sample(data):
    X, y = data
    X = X.copy()
    X[0] += 100.0  # an outlier: KMeans gives it a cluster of its own
    clf = _clf(routing="kmeans", n_clusters=2).fit(X, y)
    # the outlier's cluster (1 row, under 0.2 x the average of 20) gets no ticket of its
    # own: it joins the one remaining ticket
    clusters = np.argmin(clf.router_.estimator_.transform(X), axis=1)
    assert sorted(np.bincount(clusters).tolist()) == [1, 39]
    assert clf.n_tickets_ == 1
    assert clf.route(X).tolist() == [0] * len(X)
    assert np.all(np.isfinite(clf.predict_proba(X)))
    assert clf.ticket_sparsity_.shape == (1,)


def test_kmeans_router_merges_only_clusters_under_min_fraction():
    from sklearn_rtl._routing import KMeansRouter

    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    sizes = [60, 60, 12]  # average 44: 12 >= 0.2 * 44 keeps it, 0.3 * 44 = 13.2 does not
    X = np.vstack([c + rng.normal(0, 0.5, (n, 2)) for c, n in zip(centres, sizes, strict=True)])
    kept = KMeansRouter(3, random_state=0, min_fraction=0.2)
    assert sorted(np.bincount(kept.fit(X)).tolist()) == [12, 60, 60]
    merged = KMeansRouter(3, random_state=0, min_fraction=0.3)
    tickets = merged.fit(X)
    assert merged.n_tickets_ == 2 and sorted(np.bincount(tickets).tolist()) == [60, 72]
    # each merged row goes to its own nearest remaining centroid, in fit and predict
    assert np.array_equal(merged.predict(X), tickets)
    # predict takes float64 and float32 alike (KMeans alone rejects a dtype other than fit's)
    assert np.array_equal(merged.predict(X.astype(np.float32)), tickets)


def test_n_clusters_equal_to_n_samples(data):
    X, y = data
    clf = _clf(n_clusters=len(X)).fit(X, y)
    assert clf.n_tickets_ == len(X)  # one sample per ticket still trains
    assert np.all(np.isfinite(clf.predict_proba(X)))


def test_fewer_distinct_points_than_clusters(data):
    # KMeans finds fewer clusters than asked (it warns); the tickets follow what it found.
    _, y = data
    X = np.ones((40, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = _clf(n_clusters=3).fit(X, y)
    assert clf.n_tickets_ == 1
    assert clf.predict(X[:3]).shape == (3,)


# --------------------------------------------------------- inputs are not modified
@pytest.mark.parametrize("routing", ROUTINGS, ids=ROUTING_IDS)
def test_caller_X_and_y_never_modified(data, routing):
    X, y = data
    X = np.asfortranarray(X)  # a layout validate_data would copy anyway
    X32 = np.ascontiguousarray(X, dtype=np.float32)  # no copy needed: the riskiest case
    y_str = np.array(["a", "b"])[y]
    copies = [(a, a.copy()) for a in (X, X32, y, y_str)]
    clf = _clf(routing=routing).fit(X32, y_str)
    clf.predict_proba(X32)
    clf.route(X32)
    clf.score(X32, y_str)
    _clf(routing=routing).fit(X, y).predict(X)
    for array, original in copies:
        np.testing.assert_array_equal(array, original)
        assert array.dtype == original.dtype and array.flags.writeable


def test_module_and_router_instances_are_not_modified(data):
    X, y = data
    module = _FiveInputs()
    module.hidden = torch.nn.Linear(3, 4)
    state = {k: v.clone() for k, v in module.state_dict().items()}
    router = KMeans(n_clusters=2, n_init=1, random_state=0)
    clf = _clf(module=module, routing=router)
    params = clf.get_params(deep=False)
    clf.fit(X, y)
    assert clf.get_params(deep=False) == params and clf.module is module
    for key, value in module.state_dict().items():
        assert torch.equal(value, state[key]), key  # deep-copied, never trained in place
    assert not hasattr(router, "cluster_centers_")  # cloned, never fitted in place
    assert clf.router_.estimator_ is not router


def test_read_only_inputs(data):
    X, y = data
    X, y = X.copy(), y.copy()
    X.flags.writeable = False
    y.flags.writeable = False
    clf = _clf().fit(X, y)
    assert clf.predict(X).shape == (40,)
