"""compare_baselines (issue 21): scorers under groups routing, sparse and DataFrame X,
groups checked up front, several metrics, failed folds, and a routing that keeps tickets
at the default ``min_cluster_size``."""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris, make_blobs
from sklearn.metrics import accuracy_score, make_scorer
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from conftest import small_rtl
from sklearn_rtl import RTLClassifier, compare_baselines
from sklearn_rtl._baselines import _GroupFeatures

SCORES = ["score_mean", "score_std"]
WEIGHTS = ["n_params", "n_active_params"]


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y, np.arange(len(X)) % 3


@pytest.fixture(scope="module")
def grouped(iris):
    """The reference table under groups routing: ``scoring=None`` (the estimator's own
    ``score``, which has always received ``groups``)."""
    X, y, groups = iris
    return compare_baselines(_grouped_rtl(), X, y, groups=groups, cv=2)


def _grouped_rtl():
    return small_rtl(routing="groups", sparsity=0.5)


def _quietly(function, *args, **kwargs):
    """``function``'s result; any warning (e.g. "Scoring failed ... set to nan") fails."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return function(*args, **kwargs)


def _accuracy_of_predict(estimator, X, y):
    return accuracy_score(y, estimator.predict(X))


@pytest.mark.parametrize(
    "scoring",
    ["accuracy", make_scorer(accuracy_score), _accuracy_of_predict],
    ids=["string", "make_scorer", "callable"],
)
def test_every_scorer_predicts_with_groups(iris, grouped, scoring):
    # defect 7: a scorer's predict got no groups, every grouped row NaN with a warning
    X, y, groups = iris
    table = _quietly(compare_baselines, _grouped_rtl(), X, y, groups=groups, cv=2, scoring=scoring)
    assert np.isfinite(table[SCORES].to_numpy()).all()
    # accuracy is the classifier's own score: the same numbers as scoring=None
    np.testing.assert_allclose(table[SCORES], grouped[SCORES])
    np.testing.assert_array_equal(table[WEIGHTS], grouped[WEIGHTS])


def test_several_metrics_under_groups_routing(iris, grouped):
    # defects 7 and 10: a dict of metrics, every one with groups, one column pair each
    X, y, groups = iris
    scoring = {"acc": "accuracy", "bacc": "balanced_accuracy", "nll": "neg_log_loss"}
    table = _quietly(compare_baselines, _grouped_rtl(), X, y, groups=groups, cv=2, scoring=scoring)
    assert list(table.columns) == [
        "model", "acc_mean", "acc_std", "bacc_mean", "bacc_std", "nll_mean", "nll_std",
        "n_params", "n_active_params", "fit_time",
    ]  # fmt: skip
    np.testing.assert_allclose(table["acc_mean"], grouped["score_mean"])
    assert np.isfinite(table.drop(columns="model").to_numpy(dtype=float)).all()
    assert (table["nll_mean"] < 0).all()


def test_a_list_of_metrics(iris):
    # defect 10: scoring=[...] raised KeyError: 'test_score'
    X, y, _ = iris
    clf = small_rtl(n_clusters=2)
    reference = compare_baselines(clf, X, y, cv=2)
    table = compare_baselines(clf, X, y, cv=2, scoring=["accuracy", "balanced_accuracy"])
    assert list(table.columns[1:5]) == [
        "accuracy_mean", "accuracy_std", "balanced_accuracy_mean", "balanced_accuracy_std",
    ]  # fmt: skip
    np.testing.assert_allclose(table["accuracy_mean"], reference["score_mean"])
    np.testing.assert_allclose(table["accuracy_std"], reference["score_std"])
    # stratified folds of a balanced table: balanced accuracy is plain accuracy here
    np.testing.assert_allclose(table["balanced_accuracy_mean"], table["accuracy_mean"])
    with pytest.raises(ValueError, match="not a valid scoring value"):
        compare_baselines(clf, X, y, cv=2, scoring=["accuracy", "no_such_metric"])


def test_a_failed_fold_raises_its_own_error(iris):
    # defect 10: one failed fold gave AttributeError: n_params_ (the real error a warning)
    X, y, _ = iris
    single_class_fold = (np.arange(50), np.arange(50, 150))  # iris is sorted by class
    cv = [single_class_fold, (np.arange(0, 150, 2), np.arange(1, 150, 2))]
    with pytest.raises(ValueError, match="needs samples of at least 2 classes"):
        compare_baselines(small_rtl(n_clusters=2), X, y, cv=cv)


def test_sparse_x_stays_sparse_and_scores_as_dense(iris, grouped):
    # defect 9: sparse X under groups routing raised numpy's "setting an array element
    # with a sequence" (hstack of a sparse matrix and a one-hot array)
    X, y, groups = iris
    for sparse_X in (sp.csr_matrix(X), sp.csc_matrix(X)):
        table = compare_baselines(_grouped_rtl(), sparse_X, y, groups=groups, cv=2)
        np.testing.assert_allclose(table[SCORES], grouped[SCORES], atol=1e-12)
        np.testing.assert_array_equal(table[WEIGHTS], grouped[WEIGHTS])


def test_group_features_keep_sparse_input_sparse():
    features = _GroupFeatures(categories=np.array(["a", "b", "c"]))
    X = sp.csr_matrix(np.array([[1.0, 0.0], [0.0, 2.0]]))
    out = features.fit_transform(X, groups=np.array(["c", "a"]))
    assert sp.issparse(out) and out.format == "csr"
    np.testing.assert_array_equal(out.toarray(), [[1, 0, 0, 0, 1], [0, 2, 1, 0, 0]])
    with pytest.raises(ValueError, match="one of the 3 known values per sample"):
        features.transform(X, groups=np.array(["a", "z"]))


def test_dataframe_into_a_column_transformer(iris):
    # defect 9: the single rows got a numpy X (the DataFrame plus one-hot columns), so a
    # ColumnTransformer selecting columns by name failed in every fold
    X, y, groups = iris
    frame = pd.DataFrame(X, columns=["sl", "sw", "pl", "pw"])
    before = frame.copy()
    select = ColumnTransformer([("scale", StandardScaler(), ["sl", "pl", "pw"])])
    table = compare_baselines(make_pipeline(select, _grouped_rtl()), frame, y, groups=groups, cv=2)
    rows = table.set_index("model")
    assert np.isfinite(table[SCORES].to_numpy()).all()
    # the dense single network takes the 3 selected columns plus the 3 one-hot groups
    assert rows.loc["dense", "n_params"] == (3 + 3) * 8 + 8 + 8 * 3 + 3
    pd.testing.assert_frame_equal(frame, before)  # nothing the user passed is modified


def test_groups_of_the_wrong_length_are_named(iris):
    # defect 9: numpy's "all the input array dimensions ..." from the one-hot hstack
    X, y, groups = iris
    with pytest.raises(ValueError, match=r"groups must be a 1-D .* shape \(149,\) for 150"):
        compare_baselines(_grouped_rtl(), X, y, groups=groups[:-1], cv=2)
    with pytest.raises(ValueError, match=r"groups must be a 1-D .* shape \(150, 1\)"):
        compare_baselines(small_rtl(), X, y, groups=groups[:, None], cv=2)


def test_default_min_cluster_size_keeps_two_tickets():
    # two blobs of 500 rows: each training fold's clusters hold about 200+ rows, so the
    # default floor keeps both tickets and the comparison is one of K=2 against one
    X, blob = make_blobs(n_samples=1000, centers=[[-6, 0, 0, 0], [6, 0, 0, 0]], random_state=0)
    y = np.where(blob == 0, X[:, 1] > 0, X[:, 2] > 0)  # each blob its own feature
    default = RTLClassifier().min_cluster_size
    clf = small_rtl(  # lr and epochs enough for the two tickets' masks to differ
        hidden_layer_sizes=(16,), n_clusters=2, batch_size=128, max_epochs=3, lr=0.1,
        min_cluster_size=default,
    )  # fmt: skip
    cv = StratifiedKFold(2)
    train, _ = next(cv.split(X, y))
    assert clone(clf).fit(X[train], y[train]).n_tickets_ == 2
    table = compare_baselines(clf, X, y, cv=cv).set_index("model")
    single = table.loc["single (same per-ticket sparsity)"]
    # two tickets store more than one, and each prediction runs one ticket's weights
    assert table.loc["rtl", "n_params"] > single["n_params"]
    assert table.loc["rtl", "n_active_params"] == pytest.approx(single["n_params"])
    assert table["score_mean"].between(0, 1).all()
