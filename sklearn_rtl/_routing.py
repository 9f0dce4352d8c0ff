"""Routers: which ticket every sample belongs to, in numpy and in torch.

A router is fitted once on the training data and maps samples to ticket ids
``0 .. n_tickets - 1``. ``"kmeans"`` clusters scaled inputs; ``"label"`` makes one ticket
per class (decided at predict time by the one-vs-rest detectors, see
:class:`~sklearn_rtl._tasks.OneVsRestTask`); ``"groups"`` makes one ticket per value of a
known context array passed as ``groups``; any estimator with ``fit``/``predict`` (a
clusterer, or a classifier of the environment) can route.

Every router owns its whole life (:class:`Router`):

* ``fit(X, y=None, groups=None, sample_weight=None) -> tickets`` sets ``n_tickets_`` and
  keeps only what routing needs (no per-training-row state), so that the router is stored
  (pickle, ``save``) as it is;
* ``predict(X, groups=None) -> tickets``;
* ``to_torch()``: the same routing as a ``torch.nn.Module`` that maps ``(flat rows,
  groups)`` to ``(tickets, known)`` (``known`` is None, or False for rows the numpy
  ``predict`` refuses; their exported outputs are NaN), with no data-dependent control
  flow, so that :func:`~sklearn_rtl.to_torch` and ONNX export run it as ``predict`` does.

Adding a router is adding one class here; nothing else knows how a router routes.
"""

from __future__ import annotations

import inspect
import numbers
import weakref

import numpy as np
import scipy.sparse as sp
import torch
from sklearn import config_context
from sklearn.base import BaseEstimator, clone
from sklearn.cluster import KMeans
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_array
from sklearn.utils._missing import is_pandas_na, is_scalar_nan
from torch import nn

from ._batches import read_only_tensor

_SPARSE_CHUNK = 8192  # sparse rows densified this many at a time for routing
_MODULES = weakref.WeakKeyDictionary()  # fitted KMeans router -> its routing module

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


def _integer_labels(values):
    """Integer values held in an object array (e.g. a column of a mixed DataFrame) as
    int64, so that they are the same labels as the integers they are; anything else as
    it is."""
    values = np.asarray(values)
    if values.dtype != object or values.size == 0:
        return values
    integer = all(
        isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))
        for v in values.ravel()
    )
    return values.astype(np.int64) if integer else values


def _scaled(rows, mean, scale):
    """``(rows - mean) / scale`` as scikit-learn's ``StandardScaler`` computes it on
    float32 rows: in float32, with its statistics cast to float32 (bit for bit)."""
    if mean is not None:
        rows = rows - mean
    return rows / scale


class _OneTicket(nn.Module):
    """Every row to ticket 0."""

    def forward(self, flat, groups=None):
        return torch.zeros(flat.shape[0], dtype=torch.int64, device=flat.device), None


class _NearestCentroid(nn.Module):
    """The nearest of ``centers`` in the scaled space, mapped through ``ticket_of_center``
    (-1: a center with no ticket). A row whose nearest center has no ticket goes to the
    nearest center that has one (``merge``), or is flagged unknown.

    ``||(x - mean) / scale - c||^2`` is, up to a term equal for every center,
    ``||c||^2 + 2 c . mean / scale - 2 x . (c / scale)``: the scaling folds into the
    centers, so a prediction is one product of the raw rows with ``K`` vectors (float32,
    the fold computed in float64), not a scaled copy of ``X``."""

    def __init__(self, mean, scale, centers, ticket_of_center, merge):
        super().__init__()
        self.merge = bool(merge)
        centers, scale = np.asarray(centers, dtype=np.float64), np.asarray(scale, np.float64)
        offset = (centers**2).sum(1)
        if mean is not None:
            offset = offset + 2.0 * centers @ (np.asarray(mean, np.float64) / scale)
        ticket_of_center = torch.as_tensor(np.asarray(ticket_of_center), dtype=torch.int64)
        if self.merge:  # the nearest center with a ticket: the others never win
            offset = np.where(ticket_of_center.numpy() >= 0, offset, np.inf)
        # -2 c / scale, transposed (the fastest layout of the product): one product and
        # one sum a call; the factor -2 scales exactly
        self.register_buffer("directions", torch.as_tensor(-2.0 * centers / scale).float().T)
        self.register_buffer("offset", torch.as_tensor(offset).float())
        self.register_buffer("ticket_of_center", ticket_of_center)

    def forward(self, flat, groups=None):
        distances = self.offset + flat @ self.directions
        ticket = self.ticket_of_center[torch.argmin(distances, dim=1)]
        if self.merge:
            return ticket, None
        return ticket.clamp(min=0), ticket >= 0


class _GroupCodes(nn.Module):
    """Group values to ticket ids; an unseen group goes to the ticket of the nearest
    (scaled) group centroid, or is flagged unknown."""

    def __init__(self, values, nearest, mean, scale, centroids):
        super().__init__()
        self.nearest = bool(nearest)
        self.register_buffer("values", torch.as_tensor(values, dtype=torch.int64))
        self.register_buffer("mean", None if mean is None else torch.as_tensor(mean).float())
        self.register_buffer("scale", torch.as_tensor(scale).float())
        # float64, as GroupRouter.predict measures the distances
        self.register_buffer("centroids", torch.as_tensor(centroids, dtype=torch.float64))

    def forward(self, flat, groups):
        match = groups.reshape(-1, 1).to(torch.int64) == self.values.reshape(1, -1)
        known = match.any(dim=1)
        ticket = torch.argmax(match.to(torch.int64), dim=1)
        if not self.nearest:
            return ticket, known
        z = _scaled(flat, self.mean, self.scale).double()
        distances = ((z.unsqueeze(1) - self.centroids.unsqueeze(0)) ** 2).sum(-1)
        return torch.where(known, ticket, torch.argmin(distances, dim=1)), None


class Router:
    """The router contract: which ticket every sample belongs to.

    Subclasses implement ``fit(X, y=None, groups=None, sample_weight=None)``, which
    returns the ticket id (``0 .. n_tickets_ - 1``) of every training sample and sets
    ``n_tickets_``; ``predict(X, groups=None)``, which returns the ticket ids of new
    samples; and ``_routing_module()``, the same routing in torch (see :meth:`to_torch`).
    """

    #: whether ``predict`` and the exported model need ``groups``
    needs_groups = False

    def merge_note(self):
        """A line for a verbose fit when the fitted partition has fewer tickets than the
        router was asked for, else None."""
        return None

    def fit(self, X, y=None, groups=None, sample_weight=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def predict(self, X, groups=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def to_torch(self) -> nn.Module | None:
        """The routing as a module: ``module(flat, groups) -> (tickets, known)``.

        ``flat`` is a float tensor of shape ``(n, n_features)``; ``tickets`` an int64
        tensor of shape ``(n,)``; ``known`` None, or a bool tensor that is False where
        ``predict`` would refuse the row (the exported outputs of those rows are NaN).
        None where the tickets themselves decide (label routing).

        Raises
        ------
        ValueError
            If the routing cannot run inside a module (an arbitrary estimator).
        """
        if self.n_tickets_ == 1 and not self.needs_groups:
            return _OneTicket()
        return self._routing_module()

    def _routing_module(self):  # pragma: no cover - abstract
        raise NotImplementedError


def _kmeans_parts(estimator):
    """``(mean or None, scale, KMeans)`` of a KMeans, or of a ``Pipeline`` of one
    ``StandardScaler`` and a KMeans; None for anything else."""
    steps = [s for _, s in estimator.steps] if isinstance(estimator, Pipeline) else [estimator]
    *scalers, kmeans = steps
    if type(kmeans) is not KMeans or len(scalers) > 1:
        return None
    if scalers and type(scalers[0]) is not StandardScaler:
        return None
    n = kmeans.cluster_centers_.shape[1]
    mean, scale = None, np.ones(n)
    if scalers:
        scaler = scalers[0]
        mean = scaler.mean_ if scaler.with_mean else None
        scale = scaler.scale_ if scaler.with_std else scale
    return mean, scale, kmeans


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

    def _drop_training_labels(self):
        """Drop a KMeans's ``labels_`` (one entry per training row; routing needs only
        the centers), so that the stored router does not grow with the training set."""
        steps = [s for _, s in getattr(self.estimator_, "steps", [])] or [self.estimator_]
        for step in steps:
            if hasattr(step, "cluster_centers_") and hasattr(step, "labels_"):
                del step.labels_

    def fit(self, X, y=None, groups=None, sample_weight=None):
        self._fit_estimator(X, y, sample_weight)
        labels = self._raw_predict(X)
        self.ticket_labels_, tickets = distinct_values(
            labels, f"The output of the router (routing={self.estimator!r})"
        )
        self.n_tickets_ = len(self.ticket_labels_)
        self._drop_training_labels()
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

    def _routing_module(self):
        """A KMeans (alone, or after one ``StandardScaler``) runs inside the module: a
        cluster that gave no training row a ticket is flagged, as ``predict`` refuses it."""
        parts = _kmeans_parts(self.estimator_)
        if parts is None:
            raise ValueError(
                f"to_torch() cannot express the router {type(self.estimator_).__name__}: "
                f"only KMeans routing (routing='kmeans', a KMeans or Pipeline("
                f"StandardScaler(), KMeans())), routing='label' and routing='groups' run "
                f"inside the exported model. Route outside it with estimator.route(X) and "
                f"use ticket_module(k) for every ticket."
            )
        mean, scale, kmeans = parts
        return _NearestCentroid(
            mean, scale, kmeans.cluster_centers_, self._ticket_of_center(kmeans), merge=False
        )

    def _ticket_of_center(self, kmeans):
        """Every cluster's ticket, -1 for a cluster without one."""
        table = np.full(len(kmeans.cluster_centers_), -1, dtype=np.int64)
        table[np.asarray(self.ticket_labels_, dtype=np.int64)] = np.arange(self.n_tickets_)
        return table


class KMeansRouter(EstimatorRouter):
    """KMeans on inputs scaled to unit variance, seeded: one ticket per cluster.

    The scaler does not centre: KMeans does not change under a shift of all rows, and an
    uncentred scaler takes sparse ``X`` as it is, without densifying it.

    A cluster of fewer than ``min_fraction`` times the average cluster size
    (``n_samples / n_clusters``), or of fewer than ``min_size`` samples, gets no ticket of
    its own: each of its samples goes to the ticket of its nearest kept centroid, in fit,
    ``predict`` and the exported module alike, so ``n_tickets_`` can be smaller than
    ``n_clusters``. Where no cluster is that large, the largest one keeps the only ticket.
    Such a cluster (a few outliers, or a quarter of a small table) would otherwise train
    a subnetwork on a few dozen rows, cycled by Alg. 2's balanced batches.

    Parameters
    ----------
    n_clusters : int
    random_state : int, RandomState instance or None
    min_fraction : float, default=0.2
        Smallest cluster that keeps its ticket, as a fraction of the average cluster.
    min_size : int, default=0
        Smallest cluster that keeps its ticket, in training rows (sample weights do not
        count).

    Attributes
    ----------
    ticket_labels_ : ndarray
        The clusters that kept a ticket, in ticket order.
    cluster_sizes_ : ndarray
        Training rows of every cluster.
    shared_ : bool
        Set by :meth:`share_one_ticket`: every cluster routes to the one ticket.
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
        self.cluster_sizes_ = counts
        tickets = self._tickets(X, labels)
        self._drop_training_labels()
        return tickets

    def share_one_ticket(self):
        """Route every cluster to one shared ticket: ``n_clusters="auto"`` found on held-out
        rows that the clusters' own tickets do not pay (``_choice.py``). The router keeps its
        clusters (``cluster_sizes_``) and has one ticket, as if the largest cluster alone
        had cleared the floor; every training row's ticket is then 0."""
        largest = self.ticket_labels_[np.argmax(self.cluster_sizes_[self.ticket_labels_])]
        self.ticket_labels_ = np.array([largest])
        self.n_tickets_ = 1
        self.shared_ = True

    def _smallest(self, n_rows, n_clusters):
        """The fewest rows a cluster needs for a ticket of its own."""
        return max(self.min_fraction * n_rows / n_clusters, self.min_size)

    def merge_note(self):
        """A line saying which clusters got no ticket, or None if every cluster has one."""
        sizes = self.cluster_sizes_
        if getattr(self, "shared_", False):
            return (
                f"KMeans routing: {len(sizes)} clusters of {sorted(sizes.tolist())} training "
                "rows share one ticket (n_clusters='auto': see ticket_choice_)."
            )
        if self.n_tickets_ == len(sizes):
            return None
        smallest = int(np.ceil(self._smallest(sizes.sum(), len(sizes))))
        return (
            f"KMeans routing: {len(sizes)} clusters of {sorted(sizes.tolist())} training "
            f"rows, {self.n_tickets_} ticket(s): a cluster of fewer than {smallest} rows "
            f"(min_cluster_size={self.min_size}, or {self.min_fraction}x the average cluster) "
            "joined its nearest kept centroid's ticket."
        )

    def predict(self, X, groups=None):
        """The ticket of every sample's cluster, or where its cluster was too small for a
        ticket, of its nearest kept centroid: the router's own module
        (:meth:`to_torch`), so that ``predict`` and the exported model route alike."""
        if self.n_tickets_ == 1:  # every cluster's rows go to the one ticket
            return np.zeros(X.shape[0], dtype=np.int64)
        # the estimator validated the rows at its door: only the dtype here (scikit-learn's
        # check_array took 0.2 ms, most of a one-row prediction's routing)
        X = X.astype(np.float32, copy=False) if sp.issparse(X) else np.asarray(X, np.float32)
        return self._route_rows(X, self._module())

    def _module(self):
        """The routing module, built once per fitted router (kept beside it, not in it:
        the router stores as plain data)."""
        module = _MODULES.get(self)
        if module is None:
            module = _MODULES[self] = self._routing_module()
        return module

    @staticmethod
    def _route_rows(X, module):
        """``module``'s tickets of rows ``X`` (sparse rows densified a chunk at a time)."""
        if not sp.issparse(X):
            rows = read_only_tensor(np.ascontiguousarray(X))  # the module only reads them
            with torch.inference_mode():
                return module(rows)[0].numpy()
        tickets = np.empty(X.shape[0], dtype=np.int64)
        for start in range(0, X.shape[0], _SPARSE_CHUNK):
            rows = slice(start, start + _SPARSE_CHUNK)
            tickets[rows] = KMeansRouter._route_rows(X[rows].toarray(), module)
        return tickets

    def _tickets(self, X, labels):
        """Training rows: their cluster's ticket, or their nearest kept centroid's."""
        tickets = self._ticket_of_center(self.estimator_[-1])[labels]
        orphans = np.flatnonzero(tickets < 0)
        if len(orphans):
            rows = check_array(X[orphans], accept_sparse=("csr", "csc"), dtype=np.float32)
            tickets[orphans] = self._route_rows(rows, self._routing_module())
        return tickets

    def _routing_module(self):
        mean, scale, kmeans = _kmeans_parts(self.estimator_)
        return _NearestCentroid(
            mean, scale, kmeans.cluster_centers_, self._ticket_of_center(kmeans), merge=True
        )


class LabelRouter(Router):
    """One ticket per class; ticket ``k`` is the one-vs-rest detector of class ``k``.

    In ``fit`` a sample's ticket is its (encoded) class. A new sample's class is unknown:
    the one-vs-rest task runs every detector and routes it to the ticket whose detector
    scores highest (:meth:`~sklearn_rtl._tasks.OneVsRestTask.route`), so this router has
    nothing to predict with and nothing to export.
    """

    def fit(self, X, y, groups=None, sample_weight=None):
        self.n_tickets_ = int(np.max(y)) + 1
        return np.asarray(y)

    def predict(self, X, groups=None):
        raise ValueError(
            "Under routing='label' a sample's ticket is decided by the tickets' one-vs-rest "
            "detectors: use the estimator's route(X)."
        )

    def to_torch(self):
        return None

    def __setstate__(self, state):
        # 0.2 bound the routed model to the router; the task routes now
        state.pop("model_", None)
        vars(self).update(state)


class GroupRouter(Router):
    """One ticket per distinct value of a known context (``groups``), as the paper routes
    by environment or semantic region.

    Integer groups held in an object array (a column of a mixed DataFrame) are the
    integers they hold.

    Parameters
    ----------
    unknown_group : {"error", "nearest"}, default="error"
        What a group value never seen in ``fit`` gets at predict time: a ``ValueError``,
        or the ticket of the group whose (standardized) feature centroid is nearest to
        the sample.
    """

    needs_groups = True

    def __init__(self, unknown_group="error"):
        self.unknown_group = unknown_group

    @staticmethod
    def _check_groups(X, groups):
        if groups is None:
            raise ValueError(
                "routing='groups' needs the context of every sample: pass groups=... "
                "(inside a Pipeline or search, enable metadata routing and call "
                "set_fit_request(groups=True) / set_predict_request(groups=True) / "
                "set_predict_proba_request(groups=True) / set_score_request(groups=True))."
            )
        groups = _integer_labels(groups)
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
            tickets[~known] = self._nearest_group(X[~known])
        return tickets.astype(np.int64)

    def _nearest_group(self, rows):
        """The ticket of the group centroid nearest to every row (dense or sparse)."""
        rows = rows.toarray() if sp.issparse(rows) else np.asarray(rows)
        scaled = self.scaler_.transform(rows)
        # one centroid at a time: no (n_samples, n_tickets, n_features) temporary
        distances = np.stack([((scaled - c) ** 2).sum(-1) for c in self.centroids_], 1)
        return distances.argmin(axis=1)

    def _routing_module(self):
        labels = np.asarray(self.ticket_labels_)
        integer = np.issubdtype(labels.dtype, np.integer)
        return _GroupCodes(
            labels.astype(np.int64) if integer else np.arange(len(labels)),
            self.unknown_group == "nearest",
            self.scaler_.mean_ if self.scaler_.with_mean else None,
            self.scaler_.scale_,
            self.centroids_,
        )


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
