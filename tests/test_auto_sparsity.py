"""sparsity="auto": prune to a ceiling, keep the last round before held-out collapse."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV

from conftest import small_rtl
from sklearn_rtl import collapse_from_scores


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X[:500] / 16).astype(np.float32), y[:500]


def _small(**kw):
    params = dict(hidden_layer_sizes=(16,), n_clusters=2, n_prune_rounds=3, max_epochs=1)
    return small_rtl(**{**params, "batch_size": 128, **kw})


def test_auto_chooses_a_pruned_round(digits):
    X, y = digits
    clf = _small(sparsity="auto", sparsity_ceiling=0.95).fit(X, y)
    scores = [clf.validation_score_dense_] + [
        r["val_score"] for r in clf.collapse_curve_ if "val_score" in r
    ]
    collapsed = collapse_from_scores(scores)
    expected = len(scores) - 1 if collapsed is None else collapsed - 1
    assert clf.auto_round_ == expected
    chosen = 0.0 if expected == 0 else clf.collapse_curve_[expected - 1]["sparsity"]
    np.testing.assert_allclose(clf.ticket_sparsity_, chosen, atol=0.01)
    assert clf.ticket_sparsity_.max() <= 0.95 + 0.01  # per-layer rounding
    clf.predict(X[:5])


def test_auto_reaches_ceiling_without_collapse(digits, monkeypatch):
    import sklearn_rtl._selection as base

    monkeypatch.setattr(base, "collapse_from_scores", lambda scores: None)
    monkeypatch.setattr(base, "drop_persists", lambda scores: False)
    X, y = digits
    clf = _small(sparsity="auto", sparsity_ceiling=0.9).fit(X, y)
    np.testing.assert_allclose(clf.ticket_sparsity_, 0.9, atol=0.01)
    assert clf.auto_round_ == 3


def test_auto_keeps_dense_if_first_round_collapses(digits, monkeypatch):
    import sklearn_rtl._selection as base

    monkeypatch.setattr(base, "collapse_from_scores", lambda scores: 1 if len(scores) > 1 else None)
    X, y = digits
    clf = _small(sparsity="auto").fit(X, y)
    assert clf.auto_round_ == 0
    np.testing.assert_allclose(clf.ticket_sparsity_, 0.0)


@pytest.mark.parametrize(
    "params, error",
    [
        ({"sparsity": "best"}, ValueError),
        ({"sparsity_ceiling": 1.0}, ValueError),
        ({"validation_fraction": 0.0}, ValueError),
        ({"validation_fraction": "x"}, TypeError),
    ],
)
def test_invalid_parameters(digits, params, error):
    X, y = digits
    with pytest.raises(error):
        _small(**params).fit(X, y)


def test_auto_in_grid_search(digits):
    X, y = digits
    search = GridSearchCV(_small(), {"sparsity": ["auto", 0.5]}, cv=2).fit(X, y)
    assert search.best_params_["sparsity"] in ("auto", 0.5)
    assert hasattr(search.best_estimator_, "ticket_sparsity_")
