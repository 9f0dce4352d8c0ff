import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits, make_blobs
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split

from conftest import small_rtl
from sklearn_rtl import RTLClassifier

TINY = dict(hidden_layer_sizes=(16,), n_prune_rounds=2, batch_size=128)


@pytest.fixture(scope="module")
def digits_split():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=120, centers=3, n_features=4, random_state=0)
    return X, y


@pytest.fixture(scope="module")
def digits_models(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    models = {
        "kmeans": RTLClassifier(routing="kmeans", n_clusters=4, sparsity=0.8, random_state=0),
        "label": RTLClassifier(routing="label", sparsity=0.8, random_state=0),
        "independent": RTLClassifier(
            routing="kmeans", n_clusters=4, sparsity=0.8, share_weights=False, random_state=0
        ),
    }
    return {name: model.fit(X_train, y_train) for name, model in models.items()}


@pytest.mark.parametrize("name, threshold", [("kmeans", 0.90), ("label", 0.85)])
def test_digits_balanced_accuracy(digits_models, digits_split, name, threshold):
    _, X_test, _, y_test = digits_split
    score = balanced_accuracy_score(y_test, digits_models[name].predict(X_test))
    assert score >= threshold


def test_independent_tickets_need_more_parameters(digits_models):
    shared, independent = digits_models["kmeans"], digits_models["independent"]
    assert independent.n_params_ > shared.n_params_
    # same masks (extraction is identical), only the weight sharing differs
    assert independent.collapse_score_ == pytest.approx(shared.collapse_score_)


def test_fitted_attributes_are_consistent(digits_models):
    clf = digits_models["kmeans"]
    assert clf.n_tickets_ == 4 and len(clf.masks_) == 4
    np.testing.assert_allclose(clf.ticket_sparsity_, 0.8, atol=1e-3)
    names = list(clf.masks_[0])
    assert names == ["layers.0.weight", "layers.2.weight"]
    stacked = {n: np.stack([m[n] for m in clf.masks_]) for n in names}
    n_prunable = sum(v[0].size for v in stacked.values())
    union = sum(int(v.any(0).sum()) for v in stacked.values())
    n_dense_part = clf.n_params_dense_ - n_prunable
    assert clf.n_params_ == union + n_dense_part
    assert clf.sparsity_ == pytest.approx(1 - union / n_prunable)
    assert clf.similarity_.shape == (4, 4)
    np.testing.assert_allclose(np.diag(clf.similarity_), 1.0)
    assert 0.0 < clf.collapse_score_ < 1.0
    assert set(clf.layer_similarity_) == set(names)
    # the collapse curve: one record per round, sparsity growing to the target
    curve = clf.collapse_curve_
    assert [r["round"] for r in curve] == [1, 2, 3, 4]
    assert np.all(np.diff([r["sparsity"] for r in curve]) > 0)
    assert curve[-1]["similarity"] == pytest.approx(clf.collapse_score_)
    stages = [row["stage"] for row in clf.net_.history]
    assert stages[0] == "prune_round_1" and stages[-1] == "retrain"
    assert len(stages) == 5 * clf.max_epochs


def test_independent_counts_every_ticket(digits_models):
    clf = digits_models["independent"]
    n_prunable = sum(m.size for m in clf.masks_[0].values())
    kept = sum(int(m.sum()) for mask in clf.masks_ for m in mask.values())
    assert clf.n_params_ == kept + clf.n_tickets_ * (clf.n_params_dense_ - n_prunable)
    assert clf.net_.module_.n_copies == clf.n_tickets_
    assert digits_models["kmeans"].net_.module_.n_copies == 1


def test_single_ticket_is_plain_imp(blobs):
    X, y = blobs
    clf = small_rtl(n_clusters=1, sparsity=0.5, **TINY).fit(X, y)
    assert clf.n_tickets_ == 1
    assert clf.collapse_score_ == 1.0
    assert clf.sparsity_ == pytest.approx(clf.ticket_sparsity_[0])
    assert np.all(clf.route(X) == 0)


def test_string_labels_round_trip_and_proba_sums_to_one(blobs):
    X, y = blobs
    labels = np.array(["cat", "dog", "eel"])[y]
    for routing in ("kmeans", "label"):
        clf = small_rtl(routing=routing, n_clusters=2, **TINY).fit(X, labels)
        assert clf.classes_.tolist() == ["cat", "dog", "eel"]
        assert set(clf.predict(X)) <= {"cat", "dog", "eel"}
        proba = clf.predict_proba(X)
        assert proba.shape == (len(X), 3)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
        assert np.array_equal(clf.classes_[proba.argmax(1)], clf.predict(X))


def test_label_routing_makes_one_ticket_per_class(blobs):
    X, y = blobs
    clf = small_rtl(routing="label", **TINY).fit(X, y)
    assert clf.n_tickets_ == 3
    assert clf.decision_function(X).shape == (len(X), 3)
    np.testing.assert_array_equal(clf.route(X), np.searchsorted(clf.classes_, clf.predict(X)))


def test_kmeans_routing_matches_router(blobs):
    X, y = blobs
    clf = small_rtl(routing="kmeans", n_clusters=3, **TINY).fit(X, y)
    tickets = clf.route(X)
    assert set(tickets) == {0, 1, 2}
    np.testing.assert_array_equal(tickets, clf.router_.predict(X.astype(np.float32)))


def test_estimator_routers(blobs):
    X, y = blobs
    clusterer = KMeans(n_clusters=2, n_init=3, random_state=0)
    clf = small_rtl(routing=clusterer, **TINY).fit(X, y)
    assert clf.n_tickets_ == 2
    assert not hasattr(clusterer, "cluster_centers_")  # the user's router is cloned
    # a classifier of some context: here it learns the classes themselves
    clf = small_rtl(routing=LogisticRegression(), **TINY).fit(X, y)
    assert clf.n_tickets_ == 3
    assert clf.route(X).max() <= 2


def test_rewind_epoch_and_global_scope(blobs):
    X, y = blobs
    clf = small_rtl(rewind_epoch=1, prune_scope="global", **TINY).fit(X, y)
    stages = [row["stage"] for row in clf.net_.history]
    assert stages[0] == "rewind"
    assert clf.ticket_sparsity_ == pytest.approx(0.8, abs=0.01)  # 13 of 64 weights kept


def test_weights_outside_every_mask_stay_at_theta0(blobs):
    """Joint retraining never moves a weight no ticket keeps: it stays at the shared theta0."""
    X, y = blobs
    first = small_rtl(sparsity=0.7, **TINY).fit(X, y)
    X_other, y_other = make_blobs(n_samples=90, centers=3, n_features=4, random_state=1)
    second = small_rtl(sparsity=0.7, **TINY).fit(X_other, y_other)
    w1, w2 = first.net_.module_.get_weights(), second.net_.module_.get_weights()
    for name in first.masks_[0]:
        unused = ~np.stack([m[name] for m in first.masks_]).any(0)
        unused &= ~np.stack([m[name] for m in second.masks_]).any(0)
        assert unused.sum() > 0
        a, b = w1[name][0].numpy(), w2[name][0].numpy()
        np.testing.assert_array_equal(a[unused], b[unused])
        assert not np.array_equal(a[~unused], b[~unused])


def test_verbose_prints_progress(blobs, capsys):
    X, y = blobs
    small_rtl(verbose=0, **TINY).fit(X, y)
    assert capsys.readouterr().out == ""
    small_rtl(verbose=1, **TINY).fit(X, y)
    out = capsys.readouterr().out
    assert "prune_round_1" in out and "retrain" in out
