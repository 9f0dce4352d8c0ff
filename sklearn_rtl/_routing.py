"""Routers: which ticket every sample belongs to.

A router is fitted once on the training data and maps samples to ticket ids
``0 .. n_tickets - 1``. ``"kmeans"`` clusters standardized inputs; ``"label"`` makes one
ticket per class (decided at predict time by the detectors themselves); ``"groups"`` makes
one ticket per value of a known context array passed as ``groups``; any estimator with
``fit``/``predict`` (a clusterer, or a classifier of the environment) can route.

Every router honours one contract (:class:`Router`): ``fit(X, y=None, groups=None) ->
tickets``, ``predict(X, groups=None) -> tickets`` and ``n_tickets_``; ``bind(model)`` hands
it the routed model once the network exists (only the label router, whose tickets are
decided by the detectors themselves, uses it).
"""

from __future__ import annotations

import inspect

import numpy as np
import scipy.sparse as sp
from sklearn import config_context
from sklearn.base import BaseEstimator, clone
from sklearn.cluster import KMeans
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_array
from sklearn.utils._missing import is_pandas_na, is_scalar_nan

__all__ = [
    "EstimatorRouter",
    "GroupRouter",
    "KMeansRouter",
    "LabelRouter",
    "Router",
    "distinct_values",
    "make_router",
]


def _is_missing(value):
    return value is None or is_scalar_nan(value) or is_pandas_na(value)


def distinct_values(values, name):
    """Sorted distinct values of a 1-D label array and every entry's index among them.

    Parameters
    ----------
    values : array-like of shape (n_samples,)
        Class labels, groups or a router's outputs.
    name : str
        How error messages name ``values`` (the parameter, e.g. ``"groups"``).

    Returns
    -------
    distinct : ndarray
    inverse : ndarray of shape (n_samples,), dtype int

    Raises
    ------
    ValueError
        If ``values`` holds a missing value (None or NaN): a missing value is not a
        ticket or class of its own.
    TypeError
        If ``values`` mixes types that cannot be ordered (e.g. str and int).
    """
    values = np.asarray(values)
    if values.dtype.kind in "fc":
        missing = np.isnan(values)
    elif values.dtype == object:
        missing = np.fromiter((_is_missing(v) for v in values.ravel()), bool, values.size)
    else:
        missing = np.zeros(values.shape, dtype=bool)
    if missing.any():
        raise ValueError(
            f"{name} holds missing values (None or NaN) at {missing.sum()} of {values.size} "
            f"entries (first at index {int(np.flatnonzero(missing.ravel())[0])}); every "
            f"value must be a label. Drop those samples or give them a label of their own."
        )
    try:
        distinct, inverse = np.unique(values, return_inverse=True)
    except TypeError:
        kinds = sorted({type(v).__name__ for v in values.ravel()})
        raise TypeError(
            f"{name} mixes value types that cannot be compared ({', '.join(kinds)}): use "
            f"one type for all of its values, e.g. all str."
        ) from None
    return distinct, inverse.reshape(-1).astype(np.int64)


def _tickets_of(labels, ticket_labels):
    """Ticket id of every label (its index in the sorted ``ticket_labels``) and whether
    the label was seen in fit; unseen labels get ticket 0 and ``known=False``."""
    labels = np.asarray(labels)
    known = np.isin(labels, ticket_labels)
    tickets = np.zeros(len(labels), dtype=np.int64)
    tickets[known] = np.searchsorted(ticket_labels, labels[known])
    return tickets, known


class Router:
    """The router contract: which ticket every sample belongs to.

    Subclasses implement ``fit(X, y=None, groups=None)``, which returns the ticket id
    (``0 .. n_tickets_ - 1``) of every training sample and sets ``n_tickets_``, and
    ``predict(X, groups=None)``, which returns the ticket ids of new samples.
    """

    def bind(self, model):
        """Receive the routed model being fitted (unused by routers that route by input)."""
        return self

    def merge_note(self):
        """A line for a verbose fit when the fitted partition has fewer tickets than the
        router was asked for, else None."""
        return None

    def fit(self, X, y=None, groups=None, sample_weight=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def predict(self, X, groups=None):  # pragma: no cover - abstract
        raise NotImplementedError


class EstimatorRouter(Router):
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

    def _fit_estimator(self, X, y, sample_weight):
        """Fit a clone of the estimator as ``estimator_``."""
        self.estimator_ = clone(self.estimator, safe=False)
        parameters = inspect.signature(self.estimator_.fit).parameters
        args = (X, y) if "y" in parameters else (X,)
        kwargs = self._weight_kwargs(sample_weight, parameters)
        # the weights go straight to the router's own fit, whatever the global routing
        with config_context(enable_metadata_routing=False):
            self.estimator_.fit(*args, **kwargs)

    def fit(self, X, y=None, groups=None, sample_weight=None):
        self._fit_estimator(X, y, sample_weight)
        labels = self._raw_predict(X)
        self.ticket_labels_, tickets = distinct_values(
            labels, f"The output of the router (routing={self.estimator!r})"
        )
        self.n_tickets_ = len(self.ticket_labels_)
        return tickets

    @staticmethod
    def _weight_kwargs(sample_weight, parameters):
        """``sample_weight`` for an estimator whose ``fit`` takes it (else ignored)."""
        if sample_weight is None or "sample_weight" not in parameters:
            return {}
        return {"sample_weight": sample_weight}

    def _raw_predict(self, X):
        labels = np.asarray(self.estimator_.predict(X))
        if labels.ndim != 1 or len(labels) != X.shape[0]:
            raise ValueError(
                f"The router's predict must return one ticket label per sample, got an "
                f"array of shape {labels.shape} for {X.shape[0]} samples."
            )
        return labels

    def predict(self, X, groups=None):
        labels = self._raw_predict(X)
        tickets, known = _tickets_of(labels, self.ticket_labels_)
        if not np.all(known):
            raise ValueError(
                f"The router returned ticket labels never seen during fit: "
                f"{np.unique(labels[~known]).tolist()[:5]}."
            )
        return tickets


class KMeansRouter(EstimatorRouter):
    """KMeans on inputs scaled to unit variance, seeded: one ticket per cluster.

    The scaler does not centre: KMeans does not change under a shift of all rows, and an
    uncentred scaler takes sparse ``X`` as it is, without densifying it.

    A cluster of fewer than ``min_fraction`` times the average cluster size
    (``n_samples / n_clusters``), or of fewer than ``min_size`` samples, gets no ticket of
    its own: each of its samples goes to the ticket of its nearest remaining centroid, in
    fit and predict alike, so ``n_tickets_`` can be smaller than ``n_clusters``. Where no
    cluster is that large, the largest one keeps the only ticket. Such a cluster (a few
    outliers, or a quarter of a small table) would otherwise train a subnetwork on a few
    dozen rows, cycled by Alg. 2's balanced batches.

    Parameters
    ----------
    n_clusters : int
    random_state : int, RandomState instance or None
    min_fraction : float, default=0.2
        Smallest cluster that keeps its ticket, as a fraction of the average cluster.
    min_size : int, default=0
        Smallest cluster that keeps its ticket, in training rows (sample weights do not
        count).
    """

    def __init__(
        self, n_clusters: int, random_state=None, min_fraction: float = 0.2, min_size: int = 0
    ):
        super().__init__(
            make_pipeline(
                StandardScaler(with_mean=False),
                KMeans(n_clusters=n_clusters, n_init="auto", random_state=random_state),
            )
        )
        self.min_fraction = min_fraction
        self.min_size = min_size

    @staticmethod
    def _weight_kwargs(sample_weight, parameters):
        return {} if sample_weight is None else {"kmeans__sample_weight": sample_weight}

    def fit(self, X, y=None, groups=None, sample_weight=None):
        self._fit_estimator(X, None, sample_weight)
        labels = self.estimator_[-1].labels_
        n_clusters = len(self.estimator_[-1].cluster_centers_)
        counts = np.bincount(labels, minlength=n_clusters)
        kept = counts >= self._smallest(len(labels), n_clusters)
        kept[np.argmax(counts)] = True  # no cluster large enough: the largest takes all
        self.ticket_labels_ = np.flatnonzero(kept)
        self.n_tickets_ = len(self.ticket_labels_)
        return self._tickets(X, labels)

    def _smallest(self, n_rows, n_clusters):
        """The fewest rows a cluster needs for a ticket of its own."""
        return max(self.min_fraction * n_rows / n_clusters, self.min_size)

    def merge_note(self):
        """A line saying which clusters got no ticket, or None if every cluster has one."""
        n_clusters = len(self.estimator_[-1].cluster_centers_)
        if self.n_tickets_ == n_clusters:
            return None
        sizes = np.bincount(self.estimator_[-1].labels_, minlength=n_clusters)
        smallest = int(np.ceil(self._smallest(sizes.sum(), n_clusters)))
        return (
            f"KMeans routing: {n_clusters} clusters of {sorted(sizes.tolist())} training rows, "
            f"{self.n_tickets_} ticket(s): a cluster of fewer than {smallest} rows "
            f"(min_cluster_size={self.min_size}, or {self.min_fraction}x the average cluster) "
            "joined its nearest kept centroid's ticket."
        )

    def predict(self, X, groups=None):
        """The ticket of every sample's cluster, or where its cluster was too small for a
        ticket, of its nearest kept centroid."""
        centres = self.estimator_[-1].cluster_centers_
        # KMeans's own predict rejects rows of another float type than its centres
        X = check_array(X, accept_sparse=("csr", "csc"), dtype=centres.dtype)
        return self._tickets(X, self.estimator_.predict(X))

    def _tickets(self, X, labels):
        # routers pickled before min_fraction existed have ticket_labels_ of the same
        # meaning (the clusters seen in fit)
        n_clusters = len(self.estimator_[-1].cluster_centers_)
        ticket_of = np.full(n_clusters, -1, dtype=np.int64)
        ticket_of[self.ticket_labels_] = np.arange(self.n_tickets_)
        tickets = ticket_of[labels]
        orphans = np.flatnonzero(tickets < 0)
        if len(orphans):
            distances = self.estimator_.transform(X[orphans])[:, self.ticket_labels_]
            tickets[orphans] = np.argmin(distances, axis=1)
        return tickets


class LabelRouter(Router):
    """One ticket per class; ticket ``k`` is the one-vs-rest detector of class ``k``.

    In ``fit`` a sample's ticket is its (encoded) class. A new sample's class is unknown,
    so ``predict`` runs every detector of the bound model and routes the sample to the
    ticket whose detector scores highest.
    """

    def bind(self, model):
        self.model_ = model
        return self

    def fit(self, X, y, groups=None, sample_weight=None):
        self.n_tickets_ = int(np.max(y)) + 1
        return np.asarray(y)

    def predict(self, X, groups=None):
        if not hasattr(self, "model_"):
            raise ValueError("LabelRouter.predict needs the detectors: call bind(model) first.")
        return np.argmax(self.model_.outputs(X)[..., 0], axis=1).astype(np.int64)


class GroupRouter(Router):
    """One ticket per distinct value of a known context (``groups``), as the paper routes
    by environment or semantic region.

    Parameters
    ----------
    unknown_group : {"error", "nearest"}, default="error"
        What a group value never seen in ``fit`` gets at predict time: a ``ValueError``,
        or the ticket of the group whose (standardized) feature centroid is nearest to
        the sample.
    """

    def __init__(self, unknown_group="error"):
        self.unknown_group = unknown_group

    @staticmethod
    def _check_groups(X, groups):
        if groups is None:
            raise ValueError(
                "routing='groups' needs the context of every sample: pass groups=... "
                "(inside a Pipeline or search, enable metadata routing and call "
                "set_fit_request(groups=True) / set_predict_request(groups=True) / "
                "set_score_request(groups=True))."
            )
        groups = np.asarray(groups)
        if groups.ndim != 1 or len(groups) != X.shape[0]:
            raise ValueError(
                f"groups must be a 1-D array with one value per sample: got shape "
                f"{groups.shape} for {X.shape[0]} samples."
            )
        return groups

    def fit(self, X, y=None, groups=None, sample_weight=None):
        groups = self._check_groups(X, groups)
        self.ticket_labels_, tickets = distinct_values(groups, "groups")
        self.n_tickets_ = len(self.ticket_labels_)
        self.scaler_ = StandardScaler(with_mean=not sp.issparse(X)).fit(X)
        scaled = self.scaler_.transform(X)
        self.centroids_ = np.stack(
            [np.asarray(scaled[tickets == k].mean(axis=0)).ravel() for k in range(self.n_tickets_)]
        )
        return tickets

    def predict(self, X, groups=None):
        groups = self._check_groups(X, groups)
        tickets, known = _tickets_of(groups, self.ticket_labels_)
        if not np.all(known):
            if self.unknown_group == "error":
                raise ValueError(
                    f"groups holds values never seen during fit: "
                    f"{np.unique(groups[~known]).tolist()[:5]}. Known groups: "
                    f"{self.ticket_labels_.tolist()[:10]}. Set unknown_group='nearest' to "
                    f"route them to the ticket of the nearest group centroid."
                )
            scaled = self.scaler_.transform(X[~known])
            # one centroid at a time: no (n_samples, n_tickets, n_features) temporary
            distances = np.stack([((scaled - c) ** 2).sum(-1) for c in self.centroids_], 1)
            tickets[~known] = distances.argmin(axis=1)
        return tickets.astype(np.int64)


def make_router(routing, n_clusters, random_state, unknown_group="error", min_cluster_size=0):
    """Build the router for a ``routing`` parameter value (validated by the caller)."""
    if isinstance(routing, str):
        if routing == "kmeans":
            return KMeansRouter(n_clusters, random_state, min_size=min_cluster_size)
        if routing == "label":
            return LabelRouter()
        if routing == "groups":
            return GroupRouter(unknown_group)
    if isinstance(routing, type):
        raise TypeError(
            f"routing must be an estimator instance, got the class {routing.__name__}: pass "
            f"an instance, e.g. routing={routing.__name__}() with its parameters set."
        )
    if isinstance(routing, BaseEstimator) or (
        hasattr(routing, "fit") and hasattr(routing, "predict")
    ):
        return EstimatorRouter(routing)
    raise ValueError(
        f"routing must be 'kmeans', 'label', 'groups' or an estimator with fit and "
        f"predict, got {routing!r}."
    )
