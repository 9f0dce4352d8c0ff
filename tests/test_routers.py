"""Routers own their whole life: fit, predict, their torch module and their stored form
(issue 21). Each test here failed before the routers were made self-contained."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from conftest import small_rtl
from sklearn_rtl import RTLClassifier, save
from sklearn_rtl._routing import GroupRouter, KMeansRouter, LabelRouter


def _blobs(sizes, n_features=6, seed=0):
    rng = np.random.default_rng(seed)
    centres = 30.0 * np.eye(len(sizes), n_features)  # far apart: KMeans finds the blobs
    X = np.vstack(
        [c + rng.normal(size=(n, n_features)) for c, n in zip(centres, sizes, strict=True)]
    )
    y = (X[:, 0] + X[:, 1] > np.median(X[:, 0] + X[:, 1])).astype(int)
    return X.astype(np.float32), y


def test_kmeans_module_sends_merged_clusters_to_the_nearest_kept_centroid():
    """The exported routing of a partial merge is the router's predict, row for row."""
    X, _ = _blobs([300, 260, 40, 30])
    router = KMeansRouter(4, random_state=0, min_size=200)
    router.fit(X)
    assert router.n_tickets_ == 2 and len(router.cluster_sizes_) == 4
    tickets, known = router.to_torch()(torch.as_tensor(X))
    assert known is None
    np.testing.assert_array_equal(tickets.numpy(), router.predict(X))
    assert set(router.predict(X).tolist()) == {0, 1}


def test_default_floor_export_matches_predict_proba():
    """At the default min_cluster_size a partial merge exports as it predicts (4 clusters:
    the default "auto" may keep one shared ticket, test_ticket_choice.py)."""
    X, y = _blobs([450, 400, 90, 60], n_features=10)
    clf = RTLClassifier(
        hidden_layer_sizes=(16,), max_epochs=3, n_prune_rounds=1, random_state=0, n_clusters=4
    )
    clf.fit(X, y)
    assert 2 <= clf.n_tickets_ < 4
    with torch.no_grad():
        exported = clf.to_torch()(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(exported, clf.predict_proba(X), atol=1e-5)


def test_fitted_kmeans_router_keeps_no_per_row_state():
    X, _ = _blobs([300, 260, 40, 30])
    router = KMeansRouter(4, random_state=0, min_size=200)
    router.fit(X)
    assert not hasattr(router.estimator_[-1], "labels_")
    assert router.merge_note().startswith("KMeans routing: 4 clusters of [30, 40, 260, 300]")


def test_label_router_routes_nothing_itself():
    router = LabelRouter()
    assert router.fit(np.zeros((4, 2)), np.array([0, 1, 2, 1])).tolist() == [0, 1, 2, 1]
    assert router.n_tickets_ == 3 and router.to_torch() is None
    with pytest.raises(ValueError, match="decided by the tickets' one-vs-rest detectors"):
        router.predict(np.zeros((2, 2)))


def test_label_routed_model_pickles_one_copy_of_the_network(tmp_path):
    """The label router held the routed model, so a pickle stored the network twice."""
    X, y = _blobs([200, 200], n_features=20)
    y = np.arange(len(y)) % 4
    clf = small_rtl(routing="label", hidden_layer_sizes=(64, 64), sparsity=0.9).fit(X, y)
    assert clf.n_tickets_ == 4 and not hasattr(clf.router_, "model_")
    save(clf, tmp_path / "m.rtl")
    saved = (tmp_path / "m.rtl").stat().st_size
    pickled = len(pickle.dumps(clf))
    assert pickled < 1.5 * saved, (pickled, saved)
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(clf)).predict_proba(X), clf.predict_proba(X)
    )


@pytest.mark.parametrize("fit_sparse", [False, True])
def test_unseen_group_on_sparse_rows_goes_to_the_nearest_centroid(fit_sparse):
    """Sparse rows of an unseen group under 'nearest': a LinAlgError (np.matrix squared)
    after a sparse fit, scikit-learn's 'pass with_mean=False' after a dense one."""
    X, _ = _blobs([60, 60, 60])
    groups = np.repeat([0, 1, 2], 60)
    router = GroupRouter("nearest")
    router.fit(sp.csr_matrix(X) if fit_sparse else X, groups=groups)
    dense = router.predict(X, groups=np.full(len(X), 9))
    sparse = router.predict(sp.csr_matrix(X), groups=np.full(len(X), 9))
    np.testing.assert_array_equal(dense, sparse)
    assert (dense == groups).mean() > 0.95  # the blobs are far apart


def test_group_module_of_a_sparse_fit_scales_without_centring():
    """After a sparse fit the scaler does not centre; the module subtracted its mean."""
    rng = np.random.default_rng(1)
    X = rng.normal(3.0, 1.0, (90, 5)).astype(np.float32)
    X[:, 0] += np.repeat([0.0, 2.0, 4.0], 30)
    groups = np.repeat([0, 1, 2], 30)
    router = GroupRouter("nearest")
    router.fit(sp.csr_matrix(X), groups=groups)
    unseen = np.full(len(X), 7)
    tickets, known = router.to_torch()(torch.as_tensor(X), torch.as_tensor(unseen))
    assert known is None
    np.testing.assert_array_equal(tickets.numpy(), router.predict(X, groups=unseen))


def test_integer_groups_in_an_object_array_are_integers():
    """``df.values[:, 0]`` of a mixed DataFrame: integers in an object array."""
    X, _ = _blobs([40, 40])
    groups = np.array([10] * 40 + [20] * 40, dtype=object)
    router = GroupRouter()
    router.fit(X, groups=groups)
    assert router.ticket_labels_.dtype == np.int64
    assert router.predict(X, groups=groups.astype(np.int64)).tolist() == [0] * 40 + [1] * 40
    tickets, known = router.to_torch()(torch.as_tensor(X), torch.as_tensor([10, 20, 30]))
    assert tickets[:2].tolist() == [0, 1] and known.tolist() == [True, True, False]


@pytest.mark.parametrize("with_mean", [False, True])
def test_exported_scaling_is_the_scalers_bit_for_bit(with_mean):
    """Routing modules scale as StandardScaler does on float32 rows (float32 arithmetic):
    float64 arithmetic differed in the last bit of a third of the entries, which can move
    a row across a near-tie between two centroids."""
    from sklearn.preprocessing import StandardScaler

    from sklearn_rtl._routing import _scaled

    rng = np.random.default_rng(0)
    X = (rng.random((2000, 30)) * rng.random(30) * 100).astype(np.float32)
    scaler = StandardScaler(with_mean=with_mean).fit(X)
    mean = torch.as_tensor(scaler.mean_).float() if with_mean else None
    z = _scaled(torch.as_tensor(X), mean, torch.as_tensor(scaler.scale_).float())
    np.testing.assert_array_equal(z.numpy(), scaler.transform(X))


def test_read_only_rows_route_without_a_warning():
    """Rows in read-only memory (a memory map): no torch 'not writable' warning."""
    import warnings

    X, _ = _blobs([300, 260, 40, 30])
    router = KMeansRouter(4, random_state=0, min_size=200)
    router.fit(X)
    rows = X.copy()
    rows.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(router.predict(rows), router.predict(X))
