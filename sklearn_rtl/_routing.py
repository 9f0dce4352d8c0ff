"""Routers: which ticket every sample belongs to.

A router is fitted once on the training data and maps samples to ticket ids
``0 .. n_tickets - 1``. ``"kmeans"`` clusters standardized inputs; ``"label"`` makes one
ticket per class (decided at predict time by the detectors themselves); any estimator with
``fit``/``predict`` (a clusterer, or a classifier of the environment) can route.
"""

from __future__ import annotations

import inspect

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.cluster import KMeans
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

__all__ = ["EstimatorRouter", "KMeansRouter", "LabelRouter", "make_router"]


class EstimatorRouter:
    """Routes with a clone of any estimator that has ``fit`` and ``predict``.

    The router's outputs seen in ``fit`` (any hashable labels, e.g. cluster ids or
    environment names) are numbered ``0 .. n_tickets - 1`` in sorted order.

    Parameters
    ----------
    estimator : estimator
        Fitted on ``(X, y)``; clusterers ignore ``y``, classifiers learn it.
    """

    def __init__(self, estimator):
        self.estimator = estimator

    def fit(self, X, y=None):
        self.estimator_ = clone(self.estimator, safe=False)
        if "y" in inspect.signature(self.estimator_.fit).parameters:
            self.estimator_.fit(X, y)
        else:
            self.estimator_.fit(X)
        labels = self._raw_predict(X)
        self.ticket_labels_, tickets = np.unique(labels, return_inverse=True)
        self.n_tickets_ = len(self.ticket_labels_)
        return tickets.reshape(-1)

    def _raw_predict(self, X):
        labels = np.asarray(self.estimator_.predict(X))
        if labels.ndim != 1 or len(labels) != len(X):
            raise ValueError(
                f"The router's predict must return one ticket label per sample, got an "
                f"array of shape {labels.shape} for {len(X)} samples."
            )
        return labels

    def predict(self, X):
        labels = self._raw_predict(X)
        tickets = np.searchsorted(self.ticket_labels_, labels)
        tickets = np.clip(tickets, 0, self.n_tickets_ - 1)
        unknown = self.ticket_labels_[tickets] != labels
        if np.any(unknown):
            raise ValueError(
                f"The router returned ticket labels never seen during fit: "
                f"{np.unique(labels[unknown]).tolist()[:5]}."
            )
        return tickets


class KMeansRouter(EstimatorRouter):
    """KMeans on standardized inputs, seeded: one ticket per cluster."""

    def __init__(self, n_clusters: int, random_state=None):
        super().__init__(
            make_pipeline(
                StandardScaler(),
                KMeans(n_clusters=n_clusters, n_init=10, random_state=random_state),
            )
        )


class LabelRouter:
    """One ticket per class; ticket ``k`` is the one-vs-rest detector of class ``k``."""

    def fit(self, X, y):
        self.n_tickets_ = int(np.max(y)) + 1
        return np.asarray(y)


def make_router(routing, n_clusters, random_state):
    """Build the router for a ``routing`` parameter value (validated by the caller)."""
    if isinstance(routing, str):
        if routing == "kmeans":
            return KMeansRouter(n_clusters, random_state)
        if routing == "label":
            return LabelRouter()
    if isinstance(routing, BaseEstimator) or (
        hasattr(routing, "fit") and hasattr(routing, "predict")
    ):
        return EstimatorRouter(routing)
    raise ValueError(
        f"routing must be 'kmeans', 'label' or an estimator with fit and predict, "
        f"got {routing!r}."
    )
