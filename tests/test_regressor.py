import numpy as np
import pytest
from sklearn.metrics import r2_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from conftest import small_rtl
from sklearn_rtl import RTLRegressor

FAST = dict(
    estimator=RTLRegressor, hidden_layer_sizes=(32,), max_epochs=20, lr=1e-2, batch_size=128
)


@pytest.fixture(scope="module")
def regression_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = np.stack([X[:, 0] + 2 * X[:, 1], np.sin(X[:, 2]) * 10 + 100], axis=1)
    return X, y


def test_single_output_fits_and_scores_r2(regression_data):
    X, y = regression_data
    reg = small_rtl(n_clusters=2, sparsity=0.5, **FAST).fit(X, y[:, 0])
    assert reg.n_tickets_ == 2  # small_rtl lifts the floor: 300 rows keep both clusters
    y_pred = reg.predict(X)
    assert y_pred.shape == (300,)
    assert reg.score(X, y[:, 0]) == pytest.approx(r2_score(y[:, 0], y_pred))
    assert reg.score(X, y[:, 0]) > 0.9
    assert reg.n_outputs_ == 1
    np.testing.assert_allclose(reg.ticket_sparsity_, 0.5, atol=0.01)


def test_multi_output_with_different_scales(regression_data):
    X, y = regression_data
    reg = small_rtl(n_clusters=2, sparsity=0.5, **FAST).fit(X, y)
    assert reg.n_tickets_ == 2
    y_pred = reg.predict(X)
    assert y_pred.shape == (300, 2)
    np.testing.assert_allclose(reg.y_mean_, y.mean(0))
    # the target standardization is undone: the second output lives around 100
    assert abs(y_pred[:, 1].mean() - 100) < 1.0
    assert r2_score(y, y_pred) > 0.8


def test_constant_target_is_predicted(regression_data):
    X, _ = regression_data
    reg = small_rtl(n_clusters=1, **FAST).fit(X, np.full(len(X), 3.5))
    y_pred = reg.predict(X[:5])  # zero-variance target: no division by zero, mean restored
    assert np.all(np.isfinite(y_pred))
    np.testing.assert_allclose(y_pred, 3.5, atol=0.05)


def test_label_routing_is_rejected_for_regression(regression_data):
    X, y = regression_data
    with pytest.raises(
        ValueError,
        match="'routing' parameter of RTLRegressor must be a str among \\{('\\w+'(, )?){2}\\}",
    ):
        small_rtl(routing="label", **FAST).fit(X, y[:, 0])


def test_baselines_as_settings(regression_data):
    X, y = regression_data
    shared = small_rtl(n_clusters=3, sparsity=0.8, **FAST).fit(X, y[:, 0])
    independent = small_rtl(n_clusters=3, sparsity=0.8, share_weights=False, **FAST).fit(X, y[:, 0])
    assert shared.n_tickets_ == independent.n_tickets_ == 3
    assert independent.n_params_ > shared.n_params_
    assert len(shared.collapse_curve_) == 1


@parametrize_with_checks(
    [
        RTLRegressor(
            hidden_layer_sizes=(16,),
            n_clusters=2,
            min_cluster_size=0,
            n_prune_rounds=1,
            max_epochs=20,
            lr=1e-2,
            random_state=0,
        )
    ],
    # mini-batch SGD: see tests/test_sklearn_checks.py
    expected_failed_checks=lambda estimator: {
        "check_sample_weight_equivalence_on_dense_data": "mini-batch SGD",
        "check_sample_weight_equivalence_on_sparse_data": "mini-batch SGD",
    },
)
def test_sklearn_estimator_checks(estimator, check, monkeypatch):
    # check_array_api_input skips itself unless SCIPY_ARRAY_API is set (as in
    # test_sklearn_checks.py): set it so that every check runs.
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    check(estimator)
