"""Property-based tests (hypothesis): random inputs give a correct fit or a clear error.

* ``test_random_inputs_give_a_correct_fit_or_a_clear_error``: random shapes, dtypes and
  values of ``X`` and ``y`` at fit and predict (moved here from ``test_validation.py``).
* ``test_valid_inputs_always_fit``: a strategy that draws only valid inputs (data,
  labels of every kind, groups and parameter values); every one of them must fit, and its
  predictions must have the right shape, classes and finite values.
* ``test_random_groups_labels_and_parameters``: issue 16's extension. It draws ``groups``
  (missing values, mixed types, wrong lengths included), labels of mixed types and
  parameter values both valid and invalid; it accepts only a correct fit or a clear
  ``ValueError`` / ``TypeError``. Sample weights are not drawn: ``fit`` takes none.

Set ``RTL_HYPOTHESIS_EXAMPLES`` to run more (fresh random) cases than the fixed default.
"""

from __future__ import annotations

import os
import traceback
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.cluster import KMeans
from sklearn.exceptions import NotFittedError

from conftest import small_rtl
from sklearn_rtl import RTLClassifier, RTLRegressor

SMALL = dict(max_epochs=1, n_clusters=2, batch_size=128)


def _clf(**params):
    return small_rtl(**{**SMALL, **params})


# ------------------------------------------------------------ property-based test
_TORCH_FILES = ("/torch/", "/skorch/")


def _assert_clear_error(error):
    """A clear error: ValueError/TypeError with a message, not raised from inside torch."""
    assert isinstance(error, (ValueError, TypeError)), repr(error)
    assert not isinstance(error, (IndexError, RuntimeError, KeyError, AssertionError))
    assert len(str(error)) > 10, repr(error)
    origin = traceback.extract_tb(error.__traceback__)[-1].filename
    assert not any(part in origin for part in _TORCH_FILES), (origin, error)


_dtypes = st.sampled_from(
    [
        np.float64,
        np.float32,
        np.float16,
        np.int64,
        np.int8,
        np.uint8,
        np.bool_,
        np.complex128,
        "U2",
        object,
    ]
)
_elements = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(-10, 10),
    st.integers(-1000, 1000),
)


@st.composite
def _arrays(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(0, 12), min_size=ndim, max_size=ndim)))
    dtype = draw(_dtypes)
    values = draw(hnp.arrays(np.float64, shape, elements=_elements))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if dtype == "U2":
            return values.astype(int).astype(str)
        if dtype is object:
            return values.astype(object)
        if np.issubdtype(np.dtype(dtype), np.integer):
            return np.nan_to_num(values).astype(dtype)
        return values.astype(dtype)


@st.composite
def _targets(draw, n):
    kind = draw(st.sampled_from(["int", "str", "float", "continuous", "short", "2d"]))
    n_classes = draw(st.integers(1, 3))
    base = np.array(draw(st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n)))
    if kind == "str":
        return np.array(["x", "y", "z"])[base] if n else base.astype(str)
    if kind == "float":
        return base.astype(float)
    if kind == "continuous":
        return np.linspace(0.0, 1.0, n) + 0.123
    if kind == "short":
        return base[:-1]
    if kind == "2d":
        return np.c_[base, base]
    return base


# derandomize: the same 50 cases on every run (CI stays reproducible); set
# RTL_HYPOTHESIS_EXAMPLES=500 to explore further with fresh random cases.
_N_EXAMPLES = int(os.environ.get("RTL_HYPOTHESIS_EXAMPLES", "50"))


@settings(
    max_examples=_N_EXAMPLES,
    derandomize=_N_EXAMPLES == 50,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_random_inputs_give_a_correct_fit_or_a_clear_error(data):
    X = data.draw(_arrays(), label="X")
    n = X.shape[0] if X.ndim else 0
    y = data.draw(_targets(n), label="y")
    routing = data.draw(st.sampled_from(["kmeans", "label", "estimator"]), label="routing")
    n_clusters = data.draw(st.integers(1, 3), label="n_clusters")
    if routing == "estimator":
        routing = KMeans(n_clusters=n_clusters, n_init=1, random_state=0)
    clf = _clf(routing=routing, n_clusters=n_clusters, batch_size=4)
    X_before, y_before = X.copy(), y.copy()

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            clf.fit(X, y)
        except Exception as error:  # noqa: BLE001 - the assertion is what it is
            _assert_clear_error(error)
            fitted = False
        else:
            fitted = True
        X_new = data.draw(_arrays(), label="X_new")
        predict_X = X if fitted and data.draw(st.booleans(), label="same X") else X_new
        if fitted:
            for method in ("predict_proba", "predict", "decision_function"):
                try:
                    out = getattr(clf, method)(predict_X)
                except Exception as error:  # noqa: BLE001
                    _assert_clear_error(error)
                    continue
                assert len(out) == len(predict_X)
                if method == "predict_proba":
                    assert out.shape == (len(predict_X), len(clf.classes_))
                    assert np.all(np.isfinite(out)) and np.all(out >= 0)
                    np.testing.assert_allclose(out.sum(1), 1.0, rtol=1e-9)
                elif method == "predict":
                    assert set(out.tolist()) <= set(clf.classes_.tolist())
                else:
                    assert np.all(np.isfinite(out))
        else:
            with pytest.raises(NotFittedError):
                clf.predict(predict_X)

    _assert_unchanged(X, X_before)
    _assert_unchanged(y, y_before)


def _assert_unchanged(array, original):
    """Bitwise equality (NaN included); for object arrays, the very same elements."""
    assert array.dtype == original.dtype and array.shape == original.shape
    if array.dtype == object:
        assert all(a is b for a, b in zip(array.ravel(), original.ravel(), strict=True))
    else:
        assert array.tobytes() == original.tobytes()


# ----------------------------------------------------------- valid inputs only
def _examples(default):
    """``default`` fixed cases, or ``RTL_HYPOTHESIS_EXAMPLES`` fresh ones."""
    n = int(os.environ.get("RTL_HYPOTHESIS_EXAMPLES", "0"))
    return settings(
        max_examples=n or default,
        derandomize=not n,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


_LABEL_SETS = {
    "int": np.array([3, -1, 7, 100]),
    "str": np.array(["cat", "dog", "eel", "fox"]),
    "float": np.array([0.0, -2.0, 3.0, 9.0]),  # integral: sklearn reads others as continuous
    "object-str": np.array(["cat", "dog", "eel", "fox"], dtype=object),
}


@st.composite
def _valid_case(draw):
    """An estimator, its data and its groups: every combination must fit."""
    classifier = draw(st.booleans(), label="classifier")
    n = draw(st.integers(24, 60), label="n_samples")
    rng = np.random.default_rng(draw(st.integers(0, 2**16), label="seed"))
    X = rng.normal(size=(n, draw(st.integers(1, 4), label="n_features")))
    X *= draw(st.sampled_from([1e-3, 1.0, 1e3]), label="X scale")
    if classifier:
        n_classes = draw(st.integers(2, 4), label="n_classes")
        kind = draw(st.sampled_from(sorted(_LABEL_SETS)), label="label kind")
        y = _LABEL_SETS[kind][rng.permutation(np.resize(np.arange(n_classes), n))]
    else:
        y = rng.normal(size=(n, draw(st.integers(1, 2))) if draw(st.booleans()) else n)
        y = y * draw(st.sampled_from([1e-3, 1.0, 1e6, 1e200]), label="y scale")
    n_groups = draw(st.integers(1, 3), label="n_groups")
    groups = rng.permutation(np.resize(np.arange(n_groups), n))
    if draw(st.booleans(), label="str groups"):
        groups = np.array(["north", "south", "west"])[groups]
    routings = ["kmeans", "groups", "estimator"] + (["label"] if classifier else [])
    routing = draw(st.sampled_from(routings), label="routing")
    if routing == "estimator":
        routing = KMeans(n_clusters=2, n_init=1, random_state=0)
    params = dict(
        routing=routing,
        n_clusters=draw(st.integers(1, 3), label="n_clusters"),
        sparsity=draw(st.one_of(st.floats(0.0, 0.95), st.just("auto")), label="sparsity"),
        n_prune_rounds=draw(st.integers(1, 2), label="n_prune_rounds"),
        validation_fraction=draw(st.sampled_from([None, 0.2, 0.4]), label="val"),
        share_weights=draw(st.booleans(), label="share_weights"),
        prune_scope=draw(st.sampled_from(["layer", "global"]), label="prune_scope"),
        prune_output_layer=draw(st.booleans(), label="prune_output_layer"),
        rewind_epoch=draw(st.integers(0, 1), label="rewind_epoch"),
        hidden_layer_sizes=draw(st.sampled_from([(4,), (5, 3)]), label="hidden"),
        batch_size=draw(st.integers(4, 32), label="batch_size"),
    )
    estimator = RTLClassifier if classifier else RTLRegressor
    return small_rtl(estimator, **params), X, y, groups


@_examples(12)
@given(case=_valid_case())
def test_valid_inputs_always_fit(case):
    est, X, y, groups = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y, groups=groups)
        y_pred = est.predict(X, groups=groups)
    assert y_pred.shape == np.shape(y)
    if isinstance(est, RTLClassifier):
        np.testing.assert_array_equal(est.classes_, np.unique(y))
        proba = est.predict_proba(X, groups=groups)
        assert proba.shape == (len(X), len(est.classes_))
        assert np.isfinite(proba).all()
        assert set(y_pred.tolist()) <= set(est.classes_.tolist())
    else:
        assert np.isfinite(y_pred).all()


# ------------------------------------- groups, mixed labels and parameter values
_GOOD_LABELS = [["a", "b"], [0, 1], [True, False], [1.0, 2.0], ["a", "b", "c"]]
_BAD_LABELS = [["a", 1], [1, None], ["a", None], [1.0, float("nan")], [1, 2.5], [b"x", "x"]]

_GOOD_PARAMETERS = {
    "hidden_layer_sizes": [(4,), (3, 3), 5],
    "n_clusters": [1, 2, 3],
    "sparsity": [0.0, 0.5, "auto"],
    "validation_fraction": [None, 0.3],
    "prune_output_layer": [False, True],
    "optimizer_params": [None, {"weight_decay": 1e-3}, {"betas": (0.8, 0.9)}],
    "routing": ["kmeans", "label", "groups", "estimator"],
    "unknown_group": ["error", "nearest"],
    "rewind_epoch": [0, 1],
}
_BAD_PARAMETERS = {
    "hidden_layer_sizes": [(), (0,), (4, -1), "4"],
    "n_clusters": [0, 500, 2.5],
    "sparsity": [1.0, -0.1, "high"],
    "validation_fraction": [0.0, 1.5],
    "prune_output_layer": ["yes", 1],
    "device": ["mps", "meta", "cuda:7", "no-such"],
    "optimizer_params": [{"betas": 5}, {"eps": -1}, {"x": 1}, [1]],
    "module_params": [{"activation": 5}, {"x": 1}],
    "routing": [KMeans, "cluster", 5],
    "callbacks": [[5], "cb"],
    "rewind_epoch": [-1],
}


@st.composite
def _groups(draw, n, valid):
    """Valid groups (ints or str), or groups with None / NaN, mixed types, another length
    or two dimensions."""
    values = np.array(draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)), dtype=object)
    kinds = ["int", "str"] if valid else ["mixed", "none", "nan", "short", "2d", "absent"]
    kind = draw(st.sampled_from(kinds), label="groups kind")
    if kind == "str":
        return values.astype(str)
    if kind == "mixed":
        return np.where(np.arange(n) % 2 == 0, values.astype(str), values).astype(object)
    if kind == "none":
        return np.where(np.arange(n) == 0, None, values)
    if kind == "nan":
        return np.where(np.arange(n) == 0, np.nan, values.astype(float))
    if kind == "short":
        return values[:-1].astype(int)
    if kind == "2d":
        return np.c_[values, values].astype(int)
    return None if kind == "absent" else values.astype(int)


def _labels(pair, n):
    """``n`` labels cycling through ``pair``: a plain dtype for labels of one type, else
    an object array."""
    if len({type(v) for v in pair}) == 1 and pair[0] is not None:
        return np.array(pair)[np.arange(n) % len(pair)]
    return np.array(pair, dtype=object)[np.arange(n) % len(pair)]


def _check_fit(est, X, groups):
    """A correct fit: predictions of the right shape, classes and values, or a clear error
    at predict (e.g. groups of another length)."""
    try:
        y_pred = est.predict(X, groups=groups)
        proba = est.predict_proba(X, groups=groups)
    except Exception as error:  # noqa: BLE001 - the assertion is what it is
        _assert_clear_error(error)
        return
    assert y_pred.shape == (len(X),)
    assert set(y_pred.tolist()) <= set(est.classes_.tolist())
    assert proba.shape == (len(X), len(est.classes_)) and np.isfinite(proba).all()
    assert est.n_tickets_ >= 1 and len(est.masks_) == est.n_tickets_


@st.composite
def _adversarial_case(draw):
    """Data, labels, groups and parameters, at most one of them corrupted."""
    corrupt = draw(st.sampled_from(["nothing", "labels", "groups", "parameter"]))
    n = draw(st.integers(6, 30), label="n_samples")
    X = np.random.default_rng(n).normal(size=(n, 3))
    pairs = _BAD_LABELS if corrupt == "labels" else _GOOD_LABELS
    y = _labels(draw(st.sampled_from(pairs), label="labels"), n)
    groups = draw(_groups(n, valid=corrupt != "groups"), label="groups")
    names = draw(st.sets(st.sampled_from(sorted(_GOOD_PARAMETERS)), max_size=4))
    params = {name: draw(st.sampled_from(_GOOD_PARAMETERS[name]), label=name) for name in names}
    if corrupt == "parameter":
        name = draw(st.sampled_from(sorted(_BAD_PARAMETERS)), label="bad parameter")
        params[name] = draw(st.sampled_from(_BAD_PARAMETERS[name]), label=name)
    if params.get("routing") == "estimator":
        params["routing"] = KMeans(n_clusters=2, n_init=1, random_state=0)
    return _clf(batch_size=8, **params), X, y, groups


@_examples(40)
@given(case=_adversarial_case())
def test_random_groups_labels_and_parameters(case):
    est, X, y, groups = case
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            est.fit(X, y, groups=groups)
        except Exception as error:  # noqa: BLE001
            _assert_clear_error(error)
            assert not hasattr(est, "net_")
            event(f"clear {type(error).__name__}")  # --hypothesis-show-statistics
            return
        event("fitted")
        _check_fit(est, X, groups)
