"""``compare_baselines``: does routing help on my data? One call, the paper's baselines.

Every row is cut from the given estimator's settings (a :class:`~sklearn_rtl.RTLClassifier`
or :class:`~sklearn_rtl.RTLRegressor`, alone or as the last step of a Pipeline) and scored
with scikit-learn's :func:`~sklearn.model_selection.cross_validate` on the same splits:

* the estimator itself;
* one ticket at the same per-ticket sparsity (the same work per prediction);
* one ticket with the same total weights as the estimator (its sparsity solved from the
  estimator's fitted ``n_params_``);
* independent tickets (``share_weights=False``);
* the dense network (one ticket, ``sparsity=0``).

Under ``routing="groups"`` the single-network rows get the group as one-hot input features,
so that they are not handicapped against tickets that know the group.
"""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np
from sklearn import config_context
from sklearn.base import clone, is_classifier
from sklearn.model_selection import check_cv, cross_validate

from ._base import BaseRTL
from ._tasks import OneVsRestTask

__all__ = ["compare_baselines"]

_COLUMNS = ("model", "score_mean", "score_std", "n_params", "n_active_params", "fit_time")


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


def _variant(estimator, prefix, **params):
    return clone(estimator).set_params(**{prefix + k: v for k, v in params.items()})


def _active_params(rtl) -> float:
    """Weights one prediction runs through: its ticket's kept weights plus the dense part
    (mean over tickets); every ticket's under label routing, which runs all detectors."""
    tickets = rtl.net_.module_.tickets
    n_dense_part = rtl.n_params_dense_ - tickets.n_prunable
    if isinstance(rtl._task, OneVsRestTask):
        return float(rtl.n_params_)
    return float(tickets.kept().mean() + n_dense_part)


def _one_hot(groups):
    values, codes = np.unique(np.asarray(groups), return_inverse=True)
    return np.eye(len(values), dtype=np.float32)[codes.reshape(-1)]


def _run(model, X, *, y, cv, scoring, n_jobs, params=None):
    result = cross_validate(
        model,
        X,
        y,
        cv=cv,
        scoring=scoring,
        n_jobs=n_jobs,
        params=params or {},
        return_estimator=True,
    )
    fitted = [_rtl_step(est)[1] for est in result["estimator"]]
    return {
        "score_mean": float(np.mean(result["test_score"])),
        "score_std": float(np.std(result["test_score"])),
        "n_params": float(np.mean([rtl.n_params_ for rtl in fitted])),
        "n_active_params": float(np.mean([_active_params(rtl) for rtl in fitted])),
        "fit_time": float(np.mean(result["fit_time"])),
    }


def _equal_weights_sparsity(single, X, y, target):
    """The sparsity at which one ticket of ``single``'s architecture keeps ``target``
    weights in all (prunable plus dense part), found from one short dense fit."""
    prefix, _ = _rtl_step(single)
    probe = _variant(single, prefix, sparsity=0.0, n_prune_rounds=1, max_epochs=1)
    rtl = _rtl_step(probe.fit(X, y))[1]
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
    """Set whether the RTL step of ``model`` takes ``groups`` in fit, predict and score."""
    rtl = _rtl_step(model)[1]
    rtl.set_fit_request(groups=wanted).set_predict_request(groups=wanted)
    rtl.set_score_request(groups=wanted)
    return model


def compare_baselines(estimator, X, y, *, groups=None, cv=5, scoring=None, n_jobs=None):
    """Score an RTL estimator against the paper's baselines on the same splits.

    Parameters
    ----------
    estimator : RTLClassifier, RTLRegressor or Pipeline ending in one
        Its settings (network, sparsity, epochs, ...) define every row.
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    groups : array-like of shape (n_samples,), default=None
        Every sample's context. Required under ``routing="groups"`` (passed to ``fit``,
        ``predict`` and ``score`` through metadata routing, and given to the
        single-network rows as one-hot features); also passed to ``cv`` (e.g.
        ``GroupKFold``) when given.
    cv : int, cross-validation generator or iterable, default=5
        As for :func:`~sklearn.model_selection.cross_validate`.
    scoring : str, callable or None, default=None
        ``None`` uses the estimator's ``score`` (accuracy or R^2).
    n_jobs : int, default=None
        Parallel folds, through joblib (any joblib backend, Dask included).

    Returns
    -------
    table : pandas.DataFrame or dict of ndarray
        One row per model (``model``): ``"rtl"``, ``"single (same per-ticket
        sparsity)"``, ``"single (same total weights)"``, ``"independent"``, ``"dense"``;
        columns ``score_mean``, ``score_std``, ``n_params`` (weights stored, mean over
        folds), ``n_active_params`` (weights one prediction runs through) and ``fit_time``
        (seconds per fold). A dict of arrays when pandas is not installed.

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
     'independent', 'dense']
    """
    prefix, rtl = _rtl_step(estimator)
    grouped = isinstance(rtl.routing, str) and rtl.routing == "groups"
    if grouped and groups is None:
        raise ValueError("routing='groups' needs groups=...: pass every sample's context.")
    X_single = np.hstack([np.asarray(X, dtype=np.float32), _one_hot(groups)]) if grouped else X
    # the same splits for every row, drawn once (with groups, for a group-aware cv)
    with warnings.catch_warnings():  # "groups ignored" by splitters that take none
        warnings.filterwarnings("ignore", message="The groups parameter is ignored")
        splits = list(check_cv(cv, y, classifier=is_classifier(rtl)).split(X, y, groups))
    run = partial(_run, y=y, cv=splits, scoring=scoring, n_jobs=n_jobs)
    with config_context(enable_metadata_routing=True):
        own = _request_groups(clone(estimator), grouped)
        single = _request_groups(_variant(estimator, prefix, routing="kmeans", n_clusters=1), False)
        with_groups = {"groups": groups} if grouped else {}
        rows = {"rtl": run(own, X, params=with_groups)}
        rows["single (same per-ticket sparsity)"] = run(single, X_single)
        sparsity = _equal_weights_sparsity(single, X_single, y, rows["rtl"]["n_params"])
        rows["single (same total weights)"] = run(
            _variant(single, prefix, sparsity=sparsity), X_single
        )
        independent = _request_groups(_variant(own, prefix, share_weights=False), grouped)
        rows["independent"] = run(independent, X, params=with_groups)
        rows["dense"] = run(_variant(single, prefix, sparsity=0.0, n_prune_rounds=1), X_single)
    return _table(rows)


def _table(rows):
    columns = {"model": np.array(list(rows), dtype=object)}
    for column in _COLUMNS[1:]:
        columns[column] = np.array([row[column] for row in rows.values()])
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is in the dev extra
        return columns
    return pd.DataFrame(columns)
