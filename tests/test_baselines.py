"""compare_baselines: the paper's baselines in one call, on the same splits."""

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from conftest import small_rtl
from sklearn_rtl import RTLRegressor, compare_baselines

MODELS = [
    "rtl",
    "single (same per-ticket sparsity)",
    "single (same total weights)",
    "independent",
    "dense",
    "rtl, same masks, new init",
    "rtl, random masks",
]
COLUMNS = ["model", "score_mean", "score_std", "n_params", "n_active_params", "fit_time"]


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def table(iris):
    X, y = iris
    clf = small_rtl(hidden_layer_sizes=(32, 16), n_clusters=3, sparsity=0.8, max_epochs=3)
    return compare_baselines(clf, X, y, cv=3)


def test_rows_and_columns(table):
    assert list(table.columns) == COLUMNS
    assert list(table["model"]) == MODELS
    assert np.all((table["score_mean"] >= 0) & (table["score_mean"] <= 1))
    assert np.all(table["fit_time"] > 0)


def test_weight_columns_follow_the_settings(table):
    rows = table.set_index("model")
    dense = rows.loc["dense", "n_params"]
    assert dense == 4 * 32 + 32 + 32 * 16 + 16 + 16 * 3 + 3  # the (32, 16) MLP, unpruned
    # one ticket at sparsity 0.8 keeps 20 % of both hidden layers' weights plus dense parts
    single = rows.loc["single (same per-ticket sparsity)", "n_params"]
    assert single == round(0.2 * 4 * 32) + round(0.2 * 32 * 16) + 32 + 16 + 16 * 3 + 3
    # RTL stores the union of 3 tickets: more than one ticket, less than three
    assert single < rows.loc["rtl", "n_params"] < rows.loc["independent", "n_params"]
    # each prediction runs one ticket: RTL's work per prediction is one ticket's
    assert rows.loc["rtl", "n_active_params"] == pytest.approx(single)


def test_same_total_weights_row_matches_within_one_percent(table):
    rows = table.set_index("model")
    rtl, equal = rows.loc["rtl", "n_params"], rows.loc["single (same total weights)", "n_params"]
    assert abs(equal - rtl) <= 0.01 * rtl


def test_in_a_pipeline_with_groups_and_group_kfold(iris):
    X, y = iris
    groups = np.arange(len(X)) % 4  # every fold keeps all three classes
    pipe = make_pipeline(
        StandardScaler(), small_rtl(routing="groups", unknown_group="nearest", sparsity=0.5)
    )
    table = compare_baselines(pipe, X, y, groups=groups, cv=GroupKFold(2))
    assert list(table["model"]) == MODELS
    rows = table.set_index("model")
    # the single networks take the group as 4 one-hot features: a wider first layer
    assert rows.loc["dense", "n_params"] == (4 + 4) * 8 + 8 + 8 * 3 + 3
    assert rows.loc["independent", "n_params"] > rows.loc["rtl", "n_params"]


def test_regressor_and_errors(iris):
    X, y = iris
    reg = small_rtl(RTLRegressor, n_clusters=2)
    table = compare_baselines(reg, X[:, 1:], X[:, 0], cv=2)
    assert list(table["model"]) == MODELS
    with pytest.raises(ValueError, match="needs groups"):
        compare_baselines(small_rtl(routing="groups"), X, y, cv=2)
    with pytest.raises(TypeError, match="needs an RTLClassifier or RTLRegressor"):
        compare_baselines(StandardScaler(), X, y)
