"""What ``fit`` works on (issue 21): the fit inputs as values built by keyword, and the
inputs that used to go wrong silently or with someone else's error: negative class
weights, sample weights too small (or large) for float32, a positional weight vector,
numpy-float and too-large validation fractions, and models pickled by 0.1.0."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone

from conftest import small_rtl
from sklearn_rtl import RTLClassifier, RTLRegressor

FIXTURES = Path(__file__).parent / "fixtures"


def _data(n_per_class=20, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), n_per_class)
    X = rng.normal(size=(len(y), 4)).astype(np.float32) + y[:, None]
    return X, y


# ------------------------------------------------------------ the fit inputs
def test_fit_inputs_are_frozen_values_built_by_keyword():
    from sklearn_rtl._fitdata import FitInputs, FitPlan, Rows

    X, y = _data()
    est = small_rtl(validation_fraction=0.25)
    d = est._prepare(X, y, None, None)
    assert isinstance(d, FitInputs)
    assert isinstance(d.train, Rows) and isinstance(d.held_out, Rows)
    assert isinstance(d.plan, FitPlan)
    assert len(d.train.y) + len(d.held_out.y) == len(y) == 60
    assert len(d.held_out.y) == 15  # ceil(0.25 * 60)
    for rows in (d.train, d.held_out):
        assert rows.X.shape == (len(rows.y), 4) and len(rows.y_train) == len(rows.y)
        assert rows.groups is None and rows.weight is None
    assert d.plan.sample_shape == d.plan.input_shape == (4,)
    assert d.plan.hidden == (8,)
    assert list(d.plan.targets["classes_"]) == [0, 1, 2]
    seeds = (d.plan.torch_seed, d.plan.router_seed, d.plan.loader_seed)
    assert all(isinstance(s, int) for s in seeds)
    # the same seeds, in the same order, as random_state's first three draws
    assert list(seeds) == np.random.RandomState(0).randint(0, 2**31 - 1, size=3).tolist()
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.plan.torch_seed = 1
    with pytest.raises(TypeError):
        Rows(d.train.X, d.train.y, d.train.y_train, None, None)  # keyword only


def test_trainer_data_carries_tickets_and_weights():
    from sklearn_rtl._fitdata import Rows

    rows = Rows(X=np.zeros((3, 2)), y=np.arange(3), y_train=np.arange(3), groups=None,
                weight=np.array([1.0, 0.5, 1.0], np.float32))  # fmt: skip
    data = rows.trainer_data(np.array([0, 1, 0], np.int32))
    assert data["ticket"].dtype == np.int64 and data["ticket"].tolist() == [0, 1, 0]
    assert data["weight"] is rows.weight
    assert "weight" not in dataclasses.replace(rows, weight=None).trainer_data([0, 0, 0])


# ------------------------------------------------ defect 3: negative class_weight
@pytest.mark.parametrize("bad", [-1.0, -1, np.nan, np.inf, "heavy"])
def test_a_negative_or_non_finite_class_weight_names_the_class(bad):
    X, y = _data()
    est = small_rtl(class_weight={0: 1.0, 1: 1.0, 2: bad})
    with pytest.raises(ValueError, match=r"class_weight .*for class 2"):
        est.fit(X, y)
    assert not hasattr(est, "classes_")


def test_a_zero_class_weight_is_still_accepted():
    X, y = _data()
    est = small_rtl(class_weight={0: 1.0, 1: 2.0, 2: 0.5}).fit(X, y)
    assert est.classes_.tolist() == [0, 1, 2]


# ------------------------------------------- defect 5: weights tiny for float32
def test_tiny_relative_weights_keep_every_row():
    """Weights are relative: scaled by 2**-1000 (every one underflowing float32) they give
    bit for bit the fit of the weights themselves; before, every row was dropped."""
    X, y = _data()
    w = np.where(y == 2, 2.0, 1.0)
    expected = small_rtl(n_clusters=2).fit(X, y, sample_weight=w).predict_proba(X)
    est = small_rtl(n_clusters=2).fit(X, y, sample_weight=w * 2.0**-1000)
    assert est.classes_.tolist() == [0, 1, 2] and est.n_tickets_ >= 2
    np.testing.assert_array_equal(est.predict_proba(X), expected)
    # and so do weights that overflow float32
    huge = small_rtl(n_clusters=2).fit(X, y, sample_weight=w * 2.0**1000)
    np.testing.assert_array_equal(huge.predict_proba(X), expected)


@pytest.mark.parametrize("weight", [1e-300, 1e-45])
def test_equal_tiny_weights_fit_like_no_weights(weight):
    """1e-300 on every row raised a raw IndexError, 1e-45 an error blaming X."""
    X, y = _data()
    expected = small_rtl().fit(X, y).predict_proba(X)
    est = small_rtl().fit(X, y, sample_weight=np.full(len(y), weight))
    assert est.classes_.tolist() == [0, 1, 2]
    np.testing.assert_allclose(est.predict_proba(X), expected, atol=1e-5)


def test_a_class_weighted_far_below_the_others_is_not_dropped():
    """A class at 1e-300 next to rows at 1e-290 (both zero in float32) keeps its rows."""
    X, y = _data()
    w = np.where(y == 2, 1e-300, 1e-290)
    est = small_rtl().fit(X, y, sample_weight=w)
    assert est.classes_.tolist() == [0, 1, 2]


def test_weights_beyond_float32s_range_are_refused_by_name():
    """A class at 1e-46 times the other weights vanished from classes_ silently."""
    X, y = _data()
    w = np.where(y == 2, 1e-46, 1.0)
    est = small_rtl()
    with pytest.raises(ValueError, match=r"sample_weight spans too wide a range.*1e-46"):
        est.fit(X, y, sample_weight=w)
    assert not hasattr(est, "classes_")


def test_weights_equal_to_two_fit_as_no_weights():
    X, y = _data()
    expected = small_rtl().fit(X, y).predict_proba(X)
    est = small_rtl().fit(X, y, sample_weight=np.full(len(y), 2.0))
    np.testing.assert_array_equal(est.predict_proba(X), expected)


def test_sample_weight_is_not_modified():
    X, y = _data()
    w = np.linspace(1e-300, 3e-300, len(y))
    before = w.copy()
    small_rtl().fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(w, before)


# ------------------------------- defect 6: a positional weight taken for groups
@pytest.mark.parametrize("estimator", [RTLClassifier, RTLRegressor])
def test_groups_and_sample_weight_are_keyword_only_in_fit(estimator):
    parameters = inspect.signature(estimator.fit).parameters
    assert parameters["groups"].kind is inspect.Parameter.KEYWORD_ONLY
    assert parameters["sample_weight"].kind is inspect.Parameter.KEYWORD_ONLY
    score = inspect.signature(estimator.score).parameters
    assert score["sample_weight"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert score["groups"].kind is inspect.Parameter.KEYWORD_ONLY


def test_a_positional_weight_vector_is_refused():
    """fit(X, y, w) bound w to groups, which kmeans ignores: the weights were dropped."""
    X, y = _data()
    w = np.where(y == 2, 0.0, 1.0)
    est = small_rtl()
    with pytest.raises(TypeError, match="positional"):
        est.fit(X, y, w)
    est.fit(X, y, sample_weight=w)
    assert est.classes_.tolist() == [0, 1]  # weight zero drops class 2's rows


def test_score_takes_sample_weight_third_and_groups_by_keyword():
    X, y = _data()
    groups = (y > 0).astype(int)
    est = small_rtl(routing="groups").fit(X, y, groups=groups)
    w = np.where(y == 0, 3.0, 1.0)
    assert est.score(X, y, w, groups=groups) == est.score(X, y, sample_weight=w, groups=groups)
    with pytest.raises(TypeError, match="positional"):
        est.score(X, y, w, groups)


# ---------------------------------------------- defect 12: validation_fraction
def test_a_numpy_float_validation_fraction_works_and_is_kept():
    X, y = _data()
    fraction = np.float32(0.3)
    est = small_rtl(validation_fraction=fraction).fit(X, y)
    assert est.validation_fraction is fraction
    d = small_rtl(validation_fraction=fraction)._prepare(X, y, None, None)
    assert len(d.held_out.y) == 19  # ceil(0.30000001 * 60): float32's 0.3 is a bit more
    plain = small_rtl(validation_fraction=float(fraction)).fit(X, y)
    np.testing.assert_array_equal(est.predict_proba(X), plain.predict_proba(X))


@pytest.mark.parametrize("estimator", [RTLClassifier, RTLRegressor])
def test_a_fraction_that_leaves_no_training_row_names_validation_fraction(estimator):
    X, y = _data()
    est = small_rtl(estimator, validation_fraction=0.999)
    with pytest.raises(ValueError, match=r"validation_fraction=0.999 holds out 60 of the 60"):
        est.fit(X, y)
    assert est.validation_fraction == 0.999


# ------------------------------------------------- defect 15: a 0.1.0 pickle
def test_a_0_1_0_pickle_gets_the_new_parameters_defaults():
    X = np.load(FIXTURES / "rtl_0.1.0_X.npy")
    expected = np.load(FIXTURES / "rtl_0.1.0_proba.npy")
    with open(FIXTURES / "rtl_0.1.0.pkl", "rb") as file:
        est = pickle.load(file)
    np.testing.assert_allclose(est.predict_proba(X), expected, rtol=0, atol=1e-12)
    params = est.get_params()
    defaults = RTLClassifier().get_params()
    assert set(params) == set(defaults)
    for name in ("class_weight", "min_cluster_size", "tol", "early_stopping", "shared_layers"):
        assert params[name] == defaults[name]
    assert params["n_clusters"] == 2  # what 0.1.0 stored is kept
    assert "RTLClassifier(" in repr(est)
    y = np.arange(len(X)) % 3
    fresh = clone(est).set_params(min_cluster_size=0).fit(X, y)
    assert fresh.classes_.tolist() == est.classes_.tolist()
    np.testing.assert_allclose(est.predict_proba(X), expected, rtol=0, atol=1e-12)
    est.set_params(min_cluster_size=0).fit(X, y)  # a refit of the old model itself
    assert est.n_tickets_ >= 1 and est.predict_proba(X).shape == (40, 3)
