import numpy as np
import pytest
import torch
from _fit_spy import FitSpy
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits, make_blobs
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score, balanced_accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state

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
    common = dict(sparsity=0.8, n_prune_rounds=4, max_epochs=30, random_state=0)
    models = {
        "kmeans": RTLClassifier(routing="kmeans", n_clusters=4, **common),
        "label": RTLClassifier(routing="label", **common),
        "independent": RTLClassifier(routing="kmeans", n_clusters=4, share_weights=False, **common),
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
    # every stage ran until it stopped improving, within its cap, and the history says so
    assert list(clf.n_iter_) == [f"prune_round_{r}" for r in range(1, 5)] + ["retrain"]
    assert stages == [name for name, n in clf.n_iter_.items() for _ in range(n)]
    assert all(
        1 <= n <= clf.max_prune_epochs for name, n in clf.n_iter_.items() if name != "retrain"
    )
    assert 1 <= clf.n_iter_["retrain"] <= clf.max_epochs
    assert len(clf.loss_curve_) == clf.n_iter_["retrain"]


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


def test_kmeans_routing_matches_router():
    """Routing is KMeans on standardized X: an independent KMeans on StandardScaler output
    finds the same partition, while KMeans on the raw X (a noise feature of scale 100)
    would not."""
    rng = np.random.default_rng(0)
    blobs, y = make_blobs(n_samples=150, centers=3, n_features=2, cluster_std=0.3,
                          random_state=0)  # fmt: skip
    X = np.column_stack([blobs, rng.uniform(-100, 100, size=len(blobs))]).astype(np.float32)
    clf = small_rtl(routing="kmeans", n_clusters=3, **TINY).fit(X, y)
    tickets = clf.route(X)
    assert set(tickets) == {0, 1, 2}
    standardized = StandardScaler().fit_transform(X)
    independent = KMeans(n_clusters=3, n_init=10, random_state=1).fit_predict(standardized)
    assert adjusted_rand_score(tickets, independent) == 1.0
    raw = KMeans(n_clusters=3, n_init=10, random_state=1).fit_predict(X)
    assert adjusted_rand_score(tickets, raw) < 0.5


def test_kmeans_router_is_seeded_from_random_state():
    """The KMeans router's seed is drawn from ``random_state`` (the second of the fit's
    three seeds), never from the global numpy state: two fits under different global seeds
    give the same clusters, bitwise, on data without cluster structure."""
    X = np.random.default_rng(0).uniform(size=(200, 5)).astype(np.float32)
    y = np.arange(200) % 2
    fits = []
    for global_seed in (1, 2):
        np.random.seed(global_seed)
        fits.append(small_rtl(routing="kmeans", n_clusters=4, random_state=3, **TINY).fit(X, y))
    seed = int(check_random_state(3).randint(0, 2**31 - 1, size=3)[1])
    kmeans = [clf.router_.estimator_[-1] for clf in fits]
    assert [k.random_state for k in kmeans] == [seed, seed]
    assert kmeans[0].cluster_centers_.tobytes() == kmeans[1].cluster_centers_.tobytes()
    np.testing.assert_array_equal(fits[0].route(X), fits[1].route(X))


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


def _first_pruning(monkeypatch, X, y, scope):
    """Fit with two prunable layers; return the trained weights the first pruning ranked
    and the masks it made."""
    import sklearn_rtl._tickets as tickets

    calls = []
    prune = tickets.TicketSet.prune

    def spy(self, weights, *args, **kwargs):
        out = prune(self, weights, *args, **kwargs)
        calls.append(({n: w.clone() for n, w in weights.items()}, out.numpy()))
        return out

    monkeypatch.setattr(tickets.TicketSet, "prune", spy)
    params = {**TINY, "hidden_layer_sizes": (16, 8), "n_prune_rounds": 1}
    clf = small_rtl(rewind_epoch=1, prune_scope=scope, n_clusters=2, **params).fit(X, y)
    assert [row["stage"] for row in clf.net_.history][0] == "rewind"
    assert len(clf.net_.module_.prunable) == 2
    return clf, calls[0]


def _ranked_globally(weights, masks):
    """Per ticket: is every kept |w| (any layer) >= every pruned |w| (any layer)?"""
    out = []
    for k in range(len(next(iter(masks.values())))):
        w = np.concatenate([weights[n][k].abs().numpy().ravel() for n in masks])
        m = np.concatenate([masks[n][k].ravel() for n in masks])
        out.append(w[m].min() >= w[~m].max())
    return out


def test_rewind_epoch_and_global_scope(blobs, monkeypatch):
    X, y = blobs
    clf, (weights, masks) = _first_pruning(monkeypatch, X, y, "global")
    assert all(_ranked_globally(weights, masks))
    assert clf.ticket_sparsity_ == pytest.approx(0.8, abs=0.01)
    layer = {n: s.mean() for n, s in clf.layer_sparsity_.items()}
    assert max(layer.values()) - min(layer.values()) > 0.05  # one threshold, unequal layers
    clf, (weights, masks) = _first_pruning(monkeypatch, X, y, "layer")
    assert not all(_ranked_globally(weights, masks))  # per-layer ranking differs here
    for sparsity in clf.layer_sparsity_.values():
        np.testing.assert_allclose(sparsity, 0.8, atol=0.02)


def test_weights_outside_every_mask_stay_at_theta0(blobs, monkeypatch):
    """Joint retraining never moves a weight no ticket keeps: it stays at the shared theta0
    (the real initialization, read when the fit asks for its rewind point), bitwise; the
    fitted model then stores those weights as zeros."""
    spy = FitSpy(monkeypatch)
    X, y = blobs
    clf = small_rtl(sparsity=0.7, **TINY).fit(X, y)
    for name in clf.masks_[0]:
        unused = ~spy.masks[name].any(0)
        assert unused.sum() > 0
        trained, theta0 = spy.trained[name][0], spy.theta0[name]
        assert trained[unused].numpy().tobytes() == theta0[unused].numpy().tobytes()
        assert not torch.equal(trained[~unused], theta0[~unused])  # the kept ones trained
        fitted = clf.net_.module_.get_weights()[name][0]
        assert not fitted[unused].any()


def test_verbose_prints_progress(blobs, capsys):
    X, y = blobs
    small_rtl(verbose=0, **TINY).fit(X, y)
    assert capsys.readouterr().out == ""
    small_rtl(verbose=1, **TINY).fit(X, y)
    out = capsys.readouterr().out
    assert "prune_round_1" in out and "retrain" in out
