"""The KMeans floor: a cluster of fewer than ``min_cluster_size`` rows gets no ticket."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from conftest import small_rtl
from sklearn_rtl import RTLClassifier, RTLRegressor
from sklearn_rtl._routing import KMeansRouter


def _blobs(sizes, seed=0):
    centres = 12.0 * np.eye(len(sizes), 3)
    X, y = make_blobs(n_samples=sizes, centers=centres, cluster_std=0.5, random_state=seed)
    return X, y


def test_router_merges_clusters_under_the_floor_into_their_nearest_kept_centroid():
    X, blob = _blobs([300, 250, 120, 60])
    router = KMeansRouter(4, random_state=0, min_size=200)
    tickets = router.fit(X)
    assert router.n_tickets_ == 2
    # the two blobs of 200+ rows keep a ticket each
    assert len(set(tickets[blob == 0])) == len(set(tickets[blob == 1])) == 1
    assert tickets[blob == 0][0] != tickets[blob == 1][0]
    # each orphan row goes to the nearer of the two kept centroids, in fit and predict
    centres = router.estimator_[-1].cluster_centers_[router.ticket_labels_]
    scaled = router.estimator_[0].transform(X)
    nearest = np.argmin(((scaled[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    assert np.array_equal(tickets, nearest)
    assert np.array_equal(router.predict(X), tickets)
    # a floor at or below every cluster keeps all four
    assert KMeansRouter(4, random_state=0, min_size=60).fit(X).max() == 3


def test_router_keeps_the_largest_cluster_when_none_reaches_the_floor():
    X, _ = _blobs([90, 70, 50])
    router = KMeansRouter(3, random_state=0, min_size=200)
    assert router.fit(X).tolist() == [0] * len(X) and router.n_tickets_ == 1
    largest = np.argmax(router.cluster_sizes_)
    assert router.ticket_labels_.tolist() == [largest]


def test_default_floor_makes_a_small_table_one_ticket_and_keeps_a_large_tables_clusters():
    small, y_small = _blobs([100, 100, 100, 100])
    large, y_large = _blobs([250, 250, 250, 250])
    fast = dict(hidden_layer_sizes=(8,), n_prune_rounds=1, max_epochs=1, random_state=0)
    assert RTLClassifier(**fast).fit(small, y_small).n_tickets_ == 1
    assert RTLClassifier(min_cluster_size=0, **fast).fit(small, y_small).n_tickets_ == 4
    assert RTLClassifier(**fast).fit(large, y_large).n_tickets_ == 4
    assert RTLClassifier(min_cluster_size=251, **fast).fit(large, y_large).n_tickets_ == 1
    assert RTLRegressor(**fast).fit(small, small[:, 0]).n_tickets_ == 1


def test_the_floor_gives_exactly_the_single_ticket():
    X, y = _blobs([100, 100, 100, 100])
    fast = dict(hidden_layer_sizes=(8,), n_prune_rounds=1, max_epochs=2, random_state=0)
    floored = RTLClassifier(n_clusters=4, **fast).fit(X, y)
    single = RTLClassifier(n_clusters=1, **fast).fit(X, y)
    np.testing.assert_array_equal(floored.predict_proba(X), single.predict_proba(X))


def test_the_floor_only_touches_kmeans_routing():
    X, y = _blobs([40, 40, 40])
    label = small_rtl(routing="label", min_cluster_size=10_000).fit(X, y)
    groups = small_rtl(routing="groups", min_cluster_size=10_000).fit(X, y, groups=y)
    assert label.n_tickets_ == groups.n_tickets_ == 3


@pytest.mark.parametrize(
    ("value", "error"), [(-1, ValueError), (2.5, TypeError), ("big", TypeError), (None, TypeError)]
)
def test_bad_min_cluster_size_names_the_parameter(value, error):
    X, y = _blobs([20, 20])
    with pytest.raises(error, match="min_cluster_size"):
        small_rtl(min_cluster_size=value).fit(X, y)


def test_verbose_fit_says_when_clusters_got_no_ticket(capsys):
    X, y = _blobs([100, 100, 100, 100])
    fast = dict(hidden_layer_sizes=(8,), n_prune_rounds=1, max_epochs=1, random_state=0)
    RTLClassifier(**fast).fit(X, y)
    assert "KMeans routing" not in capsys.readouterr().out  # silent unless verbose
    RTLClassifier(verbose=1, **fast).fit(X, y)
    line = next(s for s in capsys.readouterr().out.splitlines() if "KMeans routing" in s)
    assert line.startswith("KMeans routing: 4 clusters of [100, 100, 100, 100] training rows")
    assert "1 ticket(s)" in line and "fewer than 200 rows (min_cluster_size=200" in line
    RTLClassifier(verbose=1, min_cluster_size=0, **fast).fit(X, y)
    assert "KMeans routing" not in capsys.readouterr().out  # every cluster kept: no line
