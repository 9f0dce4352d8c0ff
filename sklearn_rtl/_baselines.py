"""``compare_baselines``: does routing help on my data? One call, the paper's baselines.

Every row is cut from the given estimator's settings (a :class:`~sklearn_rtl.RTLClassifier`
or :class:`~sklearn_rtl.RTLRegressor`, alone or as the last step of a Pipeline) and scored
with scikit-learn's :func:`~sklearn.model_selection.cross_validate` on the same splits:

* the estimator itself;
* one ticket at the same per-ticket sparsity (the same work per prediction);
* one ticket with the same total weights as the estimator (its sparsity solved from the
  estimator's fitted ``n_params_``);
* independent tickets (``share_weights=False``);
* the dense network (one ticket, ``sparsity=0``);
* OpenLTH's two lottery-ticket controls: the estimator's own fit with Alg. 2 retraining
  its masks from a new initialization, or random masks of the same sparsity from its own
  initialization (``_NewInitControl`` / ``_RandomMasksControl``: RTL estimators that
  override ``BaseRTL._retraining_start``, so that ``cross_validate`` clones and fits them
  as it does the estimator).

Under ``routing="groups"`` the single-network rows get the group as one-hot input features,
so that they are not handicapped against tickets that know the group. The features are
appended by a step right in front of the network (``_GroupFeatures``, fed ``groups`` through
metadata routing), so that ``X`` reaches the user's own steps unchanged; and every scorer's
predictions get the test fold's ``groups`` (``_GroupsScorer``), which scikit-learn's scorers
do not pass on. Every fold runs with ``error_score="raise"``: a failure is never a NaN row.
"""

from __future__ import annotations

import copy
import warnings
from functools import partial, update_wrapper

import numpy as np
import scipy.sparse as sp
import torch
from sklearn import config_context
from sklearn.base import BaseEstimator, TransformerMixin, clone, is_classifier
from sklearn.metrics import check_scoring
from sklearn.model_selection import check_cv, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.utils import check_array
from sklearn.utils.metadata_routing import MetadataRequest

from ._base import BaseRTL
from ._classifier import RTLClassifier
from ._regressor import RTLRegressor
from ._routing import distinct_values
from ._tasks import OneVsRestTask
from ._tickets import TicketSet

__all__ = ["compare_baselines"]

_PREDICT_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function", "score")


def _rtl_step(estimator):
    """``(prefix, rtl)``: the RTL estimator itself or the Pipeline step that holds it."""
    if isinstance(estimator, BaseRTL):
        return "", estimator
    for name, value in estimator.get_params(deep=True).items():
        if isinstance(value, BaseRTL):
            return f"{name}__", value
    raise TypeError(
        "compare_baselines needs an RTLClassifier or RTLRegressor, or a Pipeline whose steps "
        f"include one; got {type(estimator).__name__}."
    )


def _variant(estimator, **params):
    """A clone of ``estimator`` with ``params`` set on its RTL step."""
    prefix, _ = _rtl_step(estimator)
    return clone(estimator).set_params(**{prefix + k: v for k, v in params.items()})


def _active_params(rtl) -> float:
    """Weights one prediction runs through: its ticket's kept weights plus the dense part
    (mean over tickets); every ticket's under label routing, which runs all detectors."""
    tickets = rtl.net_.module_.tickets
    n_dense_part = rtl.n_params_dense_ - tickets.n_prunable
    if isinstance(rtl._task, OneVsRestTask):
        return float(rtl.n_params_)
    return float(tickets.kept().mean() + n_dense_part)


def _control_seed(torch_seed, control):
    """The seed of a control's draw: derived from the fit's own ``torch_seed`` (so from
    ``random_state``), different for every ``control`` number and from ``torch_seed``."""
    return int(np.random.SeedSequence([torch_seed, control]).generate_state(1)[0] >> 1)


def _random_masks(tickets, seed):
    """A :class:`TicketSet` where every ticket's mask of every layer is drawn uniformly at
    random among the masks that keep as many weights as in ``tickets``."""
    generator = torch.Generator().manual_seed(seed)
    masks = {}
    for name, mask in tickets.masks.items():
        flat = mask.detach().cpu().flatten(1)
        drawn = torch.zeros_like(flat)
        for k, row in enumerate(flat):
            drawn[k, torch.randperm(row.numel(), generator=generator)[: int(row.sum())]] = True
        masks[name] = drawn.view_as(mask).to(mask.device)
    return TicketSet(masks)


class _NewInitControl:
    """OpenLTH's "reinitialize" control: the estimator's own fit (router, Alg. 1 and the
    chosen masks all as the estimator's), but Alg. 2 retrains those masks from a freshly
    drawn initialization of every weight (not rewound, whatever ``rewind_epoch``)."""

    def _retraining_start(self, d, tickets, start):
        with torch.random.fork_rng(devices=[]):  # the retraining's own draws stay as they were
            torch.manual_seed(_control_seed(d.plan.torch_seed, 1))
            network = self._make_network(d, tickets.n_tickets)
        return tickets, {name: w[0].clone() for name, w in network.get_weights().items()}


class _RandomMasksControl:
    """OpenLTH's "randomly prune" control: the estimator's own fit (router, Alg. 1 and the
    rewind point as the estimator's), but Alg. 2 retrains random masks that keep exactly as
    many weights per ticket and layer as the chosen ones (drawn per ticket, in
    ``shared_layers`` too). ``masks_`` and the mask diagnostics (``similarity_``,
    ``n_params_``, ...) describe the random masks; ``collapse_curve_`` the real rounds."""

    def _retraining_start(self, d, tickets, start):
        return _random_masks(tickets, _control_seed(d.plan.torch_seed, 2)), start


class _NewInitClassifier(_NewInitControl, RTLClassifier):
    """:class:`RTLClassifier` whose Alg. 2 starts from a new initialization."""


class _NewInitRegressor(_NewInitControl, RTLRegressor):
    """:class:`RTLRegressor` whose Alg. 2 starts from a new initialization."""


class _RandomMasksClassifier(_RandomMasksControl, RTLClassifier):
    """:class:`RTLClassifier` whose Alg. 2 retrains random masks of the same sparsity."""


class _RandomMasksRegressor(_RandomMasksControl, RTLRegressor):
    """:class:`RTLRegressor` whose Alg. 2 retrains random masks of the same sparsity."""


_CONTROLS = {
    "rtl, same masks, new init": (_NewInitClassifier, _NewInitRegressor),
    "rtl, random masks": (_RandomMasksClassifier, _RandomMasksRegressor),
}


def _control(estimator, name):
    """``estimator`` with its RTL step replaced by the control ``name`` of the same
    parameters (a control is an RTL estimator: ``cross_validate`` clones and fits it).
    A subclass of the estimators becomes the plain estimator's control."""
    prefix, rtl = _rtl_step(estimator)
    classifier, regressor = _CONTROLS[name]
    control = (classifier if is_classifier(rtl) else regressor)(**rtl.get_params(deep=False))
    return control if not prefix else clone(estimator).set_params(**{prefix[:-2]: control})


class _GroupFeatures(TransformerMixin, BaseEstimator):
    """Appends every sample's group, one-hot over ``categories``, to its features.

    The step in front of a single network under ``routing="groups"``: it receives
    ``groups`` through metadata routing, after the user's preprocessing, so that ``X``
    itself (a DataFrame with its column names, a sparse matrix) reaches the user's steps
    unchanged. Sparse input stays sparse.

    Parameters
    ----------
    categories : array-like of shape (n_groups,)
        The sorted distinct values of all of ``compare_baselines``' groups: the same
        one-hot columns in every fold, whichever groups its training rows hold.
    """

    def __init__(self, categories=()):
        self.categories = categories

    def fit(self, X, y=None, groups=None):
        """Store ``categories_``; nothing is learned from ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : ignored
        groups : array-like of shape (n_samples,)

        Returns
        -------
        self : object
        """
        self.categories_ = np.asarray(self.categories)
        return self

    def transform(self, X, groups=None):
        """``X`` with one column per category appended (a sparse ``X`` stays sparse).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        groups : array-like of shape (n_samples,)

        Returns
        -------
        X_out : {ndarray, sparse matrix} of shape (n_samples, n_features + n_groups)
        """
        X = check_array(
            X, accept_sparse=("csr", "csc"), dtype="numeric", ensure_all_finite=False,
            allow_nd=True,
        )  # fmt: skip
        if X.ndim != 2:
            raise ValueError(
                f"compare_baselines gives the single networks the group as one-hot input "
                f"features, which needs flat rows: the network's input X has shape {X.shape}."
            )
        groups = np.asarray(groups)
        codes = np.searchsorted(self.categories_, groups).clip(max=len(self.categories_) - 1)
        if groups.shape != (X.shape[0],) or np.any(self.categories_[codes] != groups):
            raise ValueError(
                f"groups must hold one of the {len(self.categories_)} known values per "
                f"sample of X ({X.shape[0]} samples)."
            )
        one_hot = np.eye(len(self.categories_), dtype=X.dtype)[codes]
        if sp.issparse(X):
            return sp.hstack([X, sp.csr_matrix(one_hot)], format=X.format)
        return np.hstack([X, one_hot])

    def fit_transform(self, X, y=None, groups=None):
        """:meth:`fit`, then :meth:`transform`, both with ``groups``."""
        return self.fit(X, y, groups=groups).transform(X, groups=groups)


def _with_group_features(model, categories):
    """``model`` whose RTL step first appends the one-hot group to its input."""
    prefix, rtl = _rtl_step(model)
    features = _GroupFeatures(categories).set_fit_request(groups=True)
    features.set_transform_request(groups=True)
    step = Pipeline([("group_features", features), ("rtl", rtl)])
    return step if not prefix else model.set_params(**{prefix[:-2]: step})


def _with_groups(estimator, groups):
    """A shallow copy of the fitted ``estimator`` whose prediction methods (and ``score``)
    take ``groups`` (through metadata routing in a Pipeline); ``estimator`` is unchanged."""
    bound = copy.copy(estimator)
    for name in _PREDICT_METHODS:
        if hasattr(estimator, name):
            method = getattr(estimator, name)  # its __name__ too: scorers read it
            setattr(bound, name, update_wrapper(partial(method, groups=groups), method))
    return bound


class _GroupsScorer:
    """A scorer (one metric or several) that gives each test fold's ``groups`` to the
    estimator's predictions: scikit-learn's scorers call ``predict`` without metadata.

    Parameters
    ----------
    scorer : callable
        What :func:`~sklearn.metrics.check_scoring` makes of ``compare_baselines``'
        ``scoring``.
    """

    def __init__(self, scorer):
        self.scorer = scorer

    def __call__(self, estimator, X, y, groups=None):
        return self.scorer(_with_groups(estimator, groups), X, y)

    def get_metadata_routing(self):
        """Requests ``groups`` for ``score``: ``cross_validate`` routes each fold's."""
        request = MetadataRequest(owner=self)
        request.score.add_request(param="groups", alias=True)
        return request


def _run(model, X, *, y, cv, scoring, n_jobs, params):
    """One row: every metric's mean and standard deviation over the folds (``score_*``
    for one metric, ``<metric>_*`` for several), the weights and the fit time."""
    result = cross_validate(
        model,
        X,
        y,
        cv=cv,
        scoring=scoring,
        n_jobs=n_jobs,
        params=params,
        return_estimator=True,
        error_score="raise",  # a failed fold raises its own error, not a NaN row
    )
    row = {}
    for key, scores in result.items():
        if key.startswith("test_"):
            row[f"{key[5:]}_mean"], row[f"{key[5:]}_std"] = np.mean(scores), np.std(scores)
    fitted = [_rtl_step(est)[1] for est in result["estimator"]]
    row["n_params"] = np.mean([rtl.n_params_ for rtl in fitted])
    row["n_active_params"] = np.mean([_active_params(rtl) for rtl in fitted])
    row["fit_time"] = np.mean(result["fit_time"])
    return {column: float(value) for column, value in row.items()}


def _equal_weights_sparsity(single, X, y, target, params):
    """The sparsity at which one ticket of ``single``'s architecture keeps ``target``
    weights in all (prunable plus dense part), found from one short dense fit."""
    probe = _variant(single, sparsity=0.0, n_prune_rounds=1, max_epochs=1)
    rtl = _rtl_step(probe.fit(X, y, **params))[1]
    n_prunable = rtl.net_.module_.tickets.n_prunable
    n_dense_part = rtl.n_params_dense_ - n_prunable
    density = (target - n_dense_part) / n_prunable
    if not 0.0 < density <= 1.0:
        raise ValueError(
            f"One network of this architecture cannot hold {target:.0f} weights "
            f"({n_dense_part} dense + up to {n_prunable} prunable)."
        )
    return float(1.0 - density)


def _request_groups(model, wanted):
    """Set whether the RTL step of ``model`` takes ``groups`` in fit, every prediction
    method (``predict_proba`` and ``decision_function`` included: scorers call them) and
    score."""
    rtl = _rtl_step(model)[1]
    for method in ("fit", *_PREDICT_METHODS):
        if hasattr(rtl, f"set_{method}_request"):
            getattr(rtl, f"set_{method}_request")(groups=wanted)
    return model


def _check_groups(groups, X, grouped):
    """``groups`` as a 1-D array of one value per sample (or None), checked up front."""
    if groups is None:
        if grouped:
            raise ValueError("routing='groups' needs groups=...: pass every sample's context.")
        return None
    array, n_samples = np.asarray(groups), X.shape[0] if hasattr(X, "shape") else len(X)
    if array.ndim != 1 or len(array) != n_samples:
        raise ValueError(
            f"groups must be a 1-D array with one value per sample of X: got shape "
            f"{array.shape} for {n_samples} samples."
        )
    return array


def compare_baselines(estimator, X, y, *, groups=None, cv=5, scoring=None, n_jobs=None):
    """Score an RTL estimator against the paper's baselines on the same splits.

    Parameters
    ----------
    estimator : RTLClassifier, RTLRegressor or Pipeline ending in one
        Its settings (network, sparsity, epochs, ...) define every row.
    X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
        Given unchanged to every row's estimator (a DataFrame keeps its column names for
        a ``ColumnTransformer``, a sparse matrix stays sparse).
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    groups : array-like of shape (n_samples,), default=None
        Every sample's context. Required under ``routing="groups"``: passed to ``fit``,
        ``predict`` and ``score`` (and to every scorer's predictions) through metadata
        routing, and appended one-hot to the input of the single-network rows, right
        before their network (after the Pipeline's other steps). Also passed to ``cv``
        (e.g. ``GroupKFold``) when given. Checked up front: one value per sample.
    cv : int, cross-validation generator or iterable, default=5
        As for :func:`~sklearn.model_selection.cross_validate`.
    scoring : str, callable, list, tuple, dict or None, default=None
        As for :func:`~sklearn.model_selection.cross_validate`: ``None`` uses the
        estimator's ``score`` (accuracy or R^2); a list, tuple or dict scores several
        metrics. Under ``routing="groups"`` every scorer's predictions get ``groups``.
    n_jobs : int, default=None
        Parallel folds, through joblib (any joblib backend, Dask included).

    Returns
    -------
    table : pandas.DataFrame or dict of ndarray
        One row per model (``model``): ``"rtl"``, ``"single (same per-ticket
        sparsity)"``, ``"single (same total weights)"``, ``"independent"``, ``"dense"``,
        then OpenLTH's lottery-ticket controls, which say whether the tickets' masks and
        their initialization matter on this data: ``"rtl, same masks, new init"``
        ("reinitialize": the estimator's router and final masks, Alg. 2 retraining them
        from a new random initialization instead of the rewind point) and ``"rtl, random
        masks"`` ("randomly prune": the estimator's router and rewind point, every mask
        replaced by a uniformly random one that keeps exactly as many weights per ticket
        and layer; weight tickets only, left out under ``prune_granularity="neuron"``).
        Each control fold runs the estimator's whole fit (its seeds, so its router and
        masks are those of the ``"rtl"`` row's fold) and changes only what Alg. 2 starts
        from, drawn from seeds derived from ``random_state``: a control costs one fit per
        fold, as the estimator does. Columns ``score_mean``, ``score_std`` (for several
        metrics, ``<name>_mean`` and ``<name>_std`` per metric instead), ``n_params``
        (weights stored, mean over folds), ``n_active_params`` (weights one prediction
        runs through) and ``fit_time`` (seconds per fold). A dict of arrays when pandas is
        not installed.

    Raises
    ------
    ValueError
        If ``groups`` is missing under ``routing="groups"`` or does not hold one value
        per sample, or if ``scoring`` is not a valid scoring. A fit or score that fails
        in any fold raises its own error (``error_score="raise"``).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn_rtl import RTLClassifier, compare_baselines
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = RTLClassifier(hidden_layer_sizes=(16,), n_clusters=2, n_prune_rounds=1,
    ...                     max_epochs=2, random_state=0)
    >>> table = compare_baselines(clf, X, y, cv=2)
    >>> list(table["model"])  # doctest: +NORMALIZE_WHITESPACE
    ['rtl', 'single (same per-ticket sparsity)', 'single (same total weights)',
     'independent', 'dense', 'rtl, same masks, new init', 'rtl, random masks']
    """
    _, rtl = _rtl_step(estimator)
    grouped = isinstance(rtl.routing, str) and rtl.routing == "groups"
    groups = _check_groups(groups, X, grouped)
    check_scoring(estimator, scoring)  # a bad scoring fails before any fit
    # the same splits for every row, drawn once (with groups, for a group-aware cv)
    with warnings.catch_warnings():  # "groups ignored" by splitters that take none
        warnings.filterwarnings("ignore", message="The groups parameter is ignored")
        splits = list(check_cv(cv, y, classifier=is_classifier(rtl)).split(X, y, groups))
    with config_context(enable_metadata_routing=True):  # restored on the way out
        rows = _rows(estimator, X, y, groups if grouped else None, splits, scoring, n_jobs)
    return _table(rows)


def _rows(estimator, X, y, groups, splits, scoring, n_jobs):
    """Every row of the table; ``groups`` only under ``routing="groups"``."""
    params = {} if groups is None else {"groups": groups}
    categories = None if groups is None else distinct_values(groups, "groups")[0]

    def run(model):
        scorer = scoring
        if groups is not None:
            scorer = _GroupsScorer(check_scoring(model, scoring))
        return _run(model, X, y=y, cv=splits, scoring=scorer, n_jobs=n_jobs, params=params)

    def single(**settings):  # one ticket; under groups routing, the group as features
        model = _variant(estimator, routing="kmeans", n_clusters=1, **settings)
        _request_groups(model, False)
        if groups is None:
            return model
        return _with_group_features(model, categories)

    rtl = _rtl_step(estimator)[1]
    own = _request_groups(clone(estimator), groups is not None)
    rows = {"rtl": run(own)}
    rows["single (same per-ticket sparsity)"] = run(single())
    sparsity = _equal_weights_sparsity(single(), X, y, rows["rtl"]["n_params"], params)
    rows["single (same total weights)"] = run(single(sparsity=sparsity))
    rows["independent"] = run(
        _request_groups(_variant(own, share_weights=False), groups is not None)
    )
    rows["dense"] = run(single(sparsity=0.0, n_prune_rounds=1))
    for name in _CONTROLS:
        if name == "rtl, random masks" and rtl.prune_granularity == "neuron":
            continue  # random weight masks are no neuron tickets: no such control
        rows[name] = run(_request_groups(_control(estimator, name), groups is not None))
    return rows


def _table(rows):
    columns = {"model": np.array(list(rows), dtype=object)}
    for column in next(iter(rows.values())):
        columns[column] = np.array([row[column] for row in rows.values()])
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is in the dev extra
        return columns
    return pd.DataFrame(columns)
