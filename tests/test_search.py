"""Pipelines and hyper-parameter searches, on one machine (loky) and on a Dask cluster.

``GridSearchCV(make_pipeline(StandardScaler(), RTLClassifier(...)), ..., n_jobs=2)`` over
``sparsity`` and ``n_clusters``, run three ways: in process, with joblib's default process
pool (loky) and under ``joblib.parallel_backend("dask")`` on a real
``dask.distributed.LocalCluster`` (2 worker processes x 1 thread, loopback only). A fixed
``random_state`` makes the three searches agree bit for bit.

Torch threads: every worker process must not run more torch threads than its share of the
cores, or two workers on two cores would oversubscribe them. RTL relies on the workers'
environment for this: loky sets ``OMP_NUM_THREADS=cpu_count // n_jobs`` in its workers and
Dask's nanny sets ``OMP_NUM_THREADS=1`` (``distributed.nanny.pre-spawn-environ``), and torch
sizes its intra-op pool from ``OMP_NUM_THREADS``. The tests record ``torch.get_num_threads()``
inside ``fit`` in the workers (through a skorch callback) to prove it.
"""

from __future__ import annotations

import logging
import os
import sys

import joblib
import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback

from sklearn_rtl import RTLClassifier

GRID = {"rtlclassifier__sparsity": [0.5, 0.8], "rtlclassifier__n_clusters": [1, 2]}


class RecordThreads(Callback):
    """Writes the torch intra-op thread count seen during training into the history."""

    def on_epoch_begin(self, net, **kwargs):
        net.history.record("torch_threads", torch.get_num_threads())


def _pickle_by_value():
    # Workers cannot import this test module (pytest imports it with importlib): ship
    # RecordThreads by value.
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def data():
    """Four blobs (four classes) in two far-apart pairs, 1,000 rows: KMeans with 2 clusters
    splits the pairs, and every cluster of a 2-fold training half (about 250 rows) clears
    the default min_cluster_size (200), so n_clusters=2 really fits two tickets."""
    centres = [[0, 0, 0, 0], [0, 6, 0, 0], [30, 0, 0, 0], [30, 6, 0, 0]]
    X, y = make_blobs(n_samples=1000, centers=centres, cluster_std=1.0, random_state=0)
    return X * 10.0 + 5.0, y  # unscaled on purpose: the pipeline's scaler matters


def _n_tickets(pipeline, X, y):
    """A "score": the ticket count of the fitted candidate."""
    return pipeline[-1].n_tickets_


SCORING = {"accuracy": "accuracy", "neg_log_loss": "neg_log_loss", "n_tickets": _n_tickets}


def _search(n_jobs, callbacks=None):
    if n_jobs != 1:
        _pickle_by_value()  # the _n_tickets scorer goes to the workers
    clf = RTLClassifier(
        hidden_layer_sizes=(8,),
        n_prune_rounds=1,
        max_epochs=2,
        batch_size=32,
        lr=0.05,
        random_state=0,
        callbacks=callbacks,
    )
    return GridSearchCV(
        make_pipeline(StandardScaler(), clf),
        GRID,
        scoring=SCORING,
        refit="accuracy",
        cv=2,
        n_jobs=n_jobs,
        error_score="raise",
    )


@pytest.fixture(scope="module")
def serial_search(data):
    return _search(n_jobs=1).fit(*data)


def _check_search(search, data):
    X, y = data
    results = search.cv_results_
    assert len(results["params"]) == 4
    assert np.all(np.isfinite(results["mean_test_accuracy"]))
    assert search.best_score_ > 0.9  # four well separated blobs
    # the searched parameter changes the fitted candidates: one ticket, or two
    n_clusters = [p["rtlclassifier__n_clusters"] for p in results["params"]]
    for split in range(2):
        np.testing.assert_array_equal(results[f"split{split}_test_n_tickets"], n_clusters)
    # ... and their predictions: at each sparsity, K=1 and K=2 score another log loss
    loss = {
        (p["rtlclassifier__sparsity"], p["rtlclassifier__n_clusters"]): v
        for p, v in zip(results["params"], results["mean_test_neg_log_loss"], strict=True)
    }
    for sparsity in GRID["rtlclassifier__sparsity"]:
        assert loss[(sparsity, 1)] != loss[(sparsity, 2)]
    best = search.best_estimator_
    assert best[-1].n_tickets_ == search.best_params_["rtlclassifier__n_clusters"]
    np.testing.assert_allclose(best.predict_proba(X).sum(1), 1.0)
    assert set(best.predict(X)) <= set(np.unique(y))


def test_pipeline_grid_search_in_process(serial_search, data):
    _check_search(serial_search, data)
    np.testing.assert_allclose(
        serial_search.best_estimator_[-1].ticket_sparsity_,
        serial_search.best_params_["rtlclassifier__sparsity"],
        atol=0.02,
    )


def test_pipeline_grid_search_loky_n_jobs_2(serial_search, data):
    search = _search(n_jobs=2).fit(*data)
    _check_search(search, data)
    # Same random_state, same folds: worker processes reproduce the in-process search.
    for metric in SCORING:
        np.testing.assert_array_equal(
            search.cv_results_[f"mean_test_{metric}"],
            serial_search.cv_results_[f"mean_test_{metric}"],
        )
    X = data[0]
    np.testing.assert_array_equal(
        search.best_estimator_.predict_proba(X), serial_search.best_estimator_.predict_proba(X)
    )


def test_loky_workers_do_not_oversubscribe_torch_threads(data):
    _pickle_by_value()
    X, y = data
    clf = RTLClassifier(
        hidden_layer_sizes=(8,),
        n_prune_rounds=1,
        max_epochs=1,
        n_clusters=2,
        random_state=0,
        callbacks=[RecordThreads()],
    )
    n_jobs = 2
    result = cross_validate(clf, X, y, cv=2, n_jobs=n_jobs, return_estimator=True)
    share = max(1, joblib.cpu_count() // n_jobs)
    for estimator in result["estimator"]:
        seen = set(estimator.net_.history[:, "torch_threads"])
        assert seen and max(seen) <= share, (seen, share)


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        worker_dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def test_pipeline_grid_search_on_dask_cluster(dask_client, serial_search, data):
    _pickle_by_value()
    workers = dask_client.scheduler_info()["workers"]
    assert len(workers) == 2
    assert all(address.startswith("tcp://127.0.0.1:") for address in workers)
    assert all(info["nthreads"] == 1 for info in workers.values())
    # The workers are other processes than this one.
    pids = set(dask_client.run(os.getpid).values())
    assert len(pids) == 2 and os.getpid() not in pids

    search = _search(n_jobs=2)
    with joblib.parallel_backend("dask", scatter=list(data)):  # the docs/scaling.md recipe
        search.fit(*data)
    _check_search(search, data)
    for metric in SCORING:
        np.testing.assert_array_equal(
            search.cv_results_[f"mean_test_{metric}"],
            serial_search.cv_results_[f"mean_test_{metric}"],
        )

    # Inside fit on a Dask worker, torch runs one intra-op thread (the worker's share).
    assert set(dask_client.run(torch.get_num_threads).values()) == {1}
    clf = RTLClassifier(
        hidden_layer_sizes=(8,),
        n_prune_rounds=1,
        max_epochs=1,
        n_clusters=2,
        random_state=0,
        callbacks=[RecordThreads()],
    )
    with joblib.parallel_backend("dask"):
        result = cross_validate(clf, *data, cv=2, n_jobs=2, return_estimator=True)
    for estimator in result["estimator"]:
        assert set(estimator.net_.history[:, "torch_threads"]) == {1}
