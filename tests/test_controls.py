"""compare_baselines' lottery-ticket controls (issue 23): OpenLTH's "reinitialize" (the
same masks from a new initialization) and "randomly prune" (random masks of the same
sparsity) rows, each retrained by Alg. 2 with the estimator's own settings."""

import pickle

import numpy as np
import pytest
from _fit_spy import FitSpy
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from conftest import small_rtl
from sklearn_rtl import RTLRegressor, compare_baselines
from sklearn_rtl._baselines import _control

NEW_INIT, RANDOM = "rtl, same masks, new init", "rtl, random masks"


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _clf(**params):
    return small_rtl(hidden_layer_sizes=(16,), n_clusters=3, sparsity=0.75, **params)


def _fit(estimator, X, y, monkeypatch):
    """The fitted estimator and what its retraining (Alg. 2) started from."""
    with monkeypatch.context() as patch:
        spy = FitSpy(patch)
        estimator.fit(X, y)
    starts = [weights for stage, weights, _ in spy.stage_starts if stage == "retrain"]
    return estimator, spy, {name: w[0] for name, w in starts[0].items()}


def test_the_control_rows_are_seeded(iris):
    X, y = iris
    table = compare_baselines(_clf(), X, y, cv=2)
    assert list(table["model"])[-2:] == [NEW_INIT, RANDOM]
    rows = table.set_index("model")
    # the same masks: the same union of weights; random masks: the same weights per ticket
    assert rows.loc[NEW_INIT, "n_params"] == rows.loc["rtl", "n_params"]
    assert rows.loc[RANDOM, "n_active_params"] == rows.loc["rtl", "n_active_params"]
    assert rows.loc[RANDOM, "n_params"] > rows.loc["rtl", "n_params"]  # random tickets overlap less
    again = compare_baselines(_clf(), X, y, cv=2)
    columns = ["score_mean", "score_std", "n_params", "n_active_params"]
    np.testing.assert_array_equal(table[columns], again[columns])


@pytest.mark.parametrize("routing", ["kmeans", "label"])
def test_same_masks_new_initialization(iris, monkeypatch, routing):
    X, y = iris
    rtl, spy, rtl_start = _fit(_clf(routing=routing), X, y, monkeypatch)
    assert rtl.n_tickets_ >= 2
    control, _, start = _fit(_control(_clf(routing=routing), NEW_INIT), X, y, monkeypatch)
    for ours, theirs in zip(control.masks_, rtl.masks_, strict=True):
        for name in ours:
            np.testing.assert_array_equal(ours[name], theirs[name])
    for name, weight in start.items():
        assert rtl_start[name].equal(spy.theta0[name])  # the estimator's Alg. 2: its theta0
        # the control's: another draw of every weight (the bias too)
        assert not np.isclose(weight.numpy(), spy.theta0[name].numpy()).any(), name
    assert control.n_tickets_ == rtl.n_tickets_
    if routing == "kmeans":  # the same router (label routing: detectors, retrained)
        np.testing.assert_array_equal(control.route(X), rtl.route(X))


@pytest.mark.parametrize("routing", ["kmeans", "label"])
def test_random_masks_of_the_same_sparsity(iris, monkeypatch, routing):
    X, y = iris
    rtl, spy, rtl_start = _fit(_clf(routing=routing), X, y, monkeypatch)
    assert rtl.n_tickets_ >= 2
    control, _, start = _fit(_control(_clf(routing=routing), RANDOM), X, y, monkeypatch)
    for name, weight in start.items():  # the same theta0
        assert weight.equal(rtl_start[name])
    for ours, theirs in zip(control.masks_, rtl.masks_, strict=True):
        for name in ours:
            assert ours[name].sum() == theirs[name].sum() < theirs[name].size
            assert not np.array_equal(ours[name], theirs[name])
    np.testing.assert_array_equal(control.ticket_sparsity_, rtl.ticket_sparsity_)
    # seeded: the same masks again
    again = _control(_clf(routing=routing), RANDOM).fit(X, y)
    for ours, theirs in zip(again.masks_, control.masks_, strict=True):
        for name in ours:
            np.testing.assert_array_equal(ours[name], theirs[name])


def test_a_control_is_an_estimator_of_the_same_parameters():
    for estimator in (_clf(), small_rtl(RTLRegressor, n_clusters=2)):
        for name in (NEW_INIT, RANDOM):
            control = _control(estimator, name)
            assert isinstance(control, type(estimator))
            assert control.get_params() == estimator.get_params()
            assert type(clone(control)) is type(control)
            assert type(pickle.loads(pickle.dumps(control))) is type(control)
    pipe = _control(make_pipeline(StandardScaler(), _clf()), RANDOM)
    assert type(pipe[-1]).__name__ == "_RandomMasksClassifier"


def test_regressor_in_a_pipeline_under_groups_routing_with_a_scorer(iris):
    X, y = iris
    groups = np.arange(len(X)) % 4
    reg = small_rtl(RTLRegressor, routing="groups", unknown_group="nearest", sparsity=0.5)
    pipe = make_pipeline(StandardScaler(), reg)
    table = compare_baselines(
        pipe, X[:, 1:], X[:, 0], groups=groups, cv=GroupKFold(2), scoring="neg_mean_absolute_error"
    )
    rows = table.set_index("model")
    assert list(rows.index[-2:]) == [NEW_INIT, RANDOM]
    assert rows["score_mean"].between(-5, 0).all()
    assert rows.loc[NEW_INIT, "n_params"] == rows.loc["rtl", "n_params"]
    assert rows.loc[RANDOM, "n_active_params"] == rows.loc["rtl", "n_active_params"]


def test_neuron_tickets_get_the_new_init_control_only(iris):
    X, y = iris
    table = compare_baselines(_clf(prune_granularity="neuron"), X, y, cv=2)
    assert NEW_INIT in set(table["model"]) and RANDOM not in set(table["model"])
