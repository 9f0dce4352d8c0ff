"""RTLRegressor: Routing the Lottery for (multi-output) regression."""

from __future__ import annotations

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score

from ._base import BaseRTL, predict_doc
from ._tasks import RegressionTask


class RTLRegressor(RegressorMixin, BaseRTL):
    """Routing the Lottery for regression: one sparse ticket per cluster or context.

    The same two stages as :class:`~sklearn_rtl.RTLClassifier` (per-ticket iterative
    magnitude pruning from a shared ``theta0``, then joint retraining of one shared weight
    tensor), with a squared-error loss on standardized targets. The paper's speech and
    INR experiments are of this kind, routed by a known context (``routing="groups"``).

    Parameters
    ----------
    hidden_layer_sizes, module, n_clusters, sparsity, n_prune_rounds, sparsity_ceiling, \
validation_fraction, max_epochs, share_weights, lr, batch_size, optimizer, device, \
random_state, verbose, prune_scope, prune_output_layer, rewind_epoch, module_params, \
optimizer_params, callbacks, unknown_group, input_shape, prunable, ticket_batchnorm, \
shared_layers, tol, n_iter_no_change, early_stopping, min_cluster_size, prune_granularity
        As for :class:`~sklearn_rtl.RTLClassifier` (``sparsity="auto"`` scores the held-out
        split with R^2).
    routing : {"kmeans", "groups"} or estimator, default="kmeans"
        As for :class:`~sklearn_rtl.RTLClassifier`, without ``"label"`` (there are no
        classes to route by).

    Attributes
    ----------
    n_outputs_ : int
        Number of targets.
    y_mean_, y_scale_ : ndarray of shape (`n_outputs_`,)
        Target standardization learned in ``fit`` (the network predicts standardized
        targets; ``predict`` undoes it).
    n_features_in_, n_tickets_, ticket_choice_, router_, masks_, ticket_sparsity_, \
sparsity_, n_params_, n_params_dense_, similarity_, layer_similarity_, layer_sparsity_, \
collapse_score_, collapse_curve_, collapse_detected_, collapse_sparsity_, input_shape_, net_
        As for :class:`~sklearn_rtl.RTLClassifier`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_rtl import RTLRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3))
    >>> groups = (X[:, 0] > 0).astype(int)
    >>> y = np.where(groups == 1, X[:, 1], -X[:, 2])
    >>> reg = RTLRegressor(routing="groups", hidden_layer_sizes=(16,), n_prune_rounds=1,
    ...                    max_epochs=2, sparsity=0.5, random_state=0)
    >>> reg.fit(X, y, groups=groups).predict(X[:3], groups=groups[:3]).shape
    (3,)
    """

    _multi_output = True
    _y_numeric = True
    _score_metric = staticmethod(r2_score)
    score = BaseRTL.score

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.regressor_tags.poor_score = False
        return tags

    def _make_task(self):
        return RegressionTask()

    def _encode_targets(self, y):
        """Standardized float32 targets, and ``y_mean_``, ``y_scale_``, ``n_outputs_``.

        Targets whose squares overflow float64 (``|y|`` beyond about 1e154) are
        standardized in units of their largest magnitude. Targets so large that a
        prediction a few standard deviations out would overflow raise a ``ValueError``.
        """
        y = np.asarray(y, dtype=np.float64)
        targets = {"_y_is_1d": y.ndim == 1}
        y = y.reshape(len(y), -1)
        with np.errstate(over="ignore", invalid="ignore"):
            mean, scale = y.mean(axis=0), y.std(axis=0)
        if not (np.isfinite(mean).all() and np.isfinite(scale).all()):
            unit = np.abs(y).max(axis=0)  # finite: validate_data checked y
            unit = np.where(unit > 0, unit, 1.0)
            mean, scale = (y / unit).mean(axis=0) * unit, (y / unit).std(axis=0) * unit
        scale = np.where(scale > 0, scale, 1.0)
        with np.errstate(over="ignore"):
            reach = np.abs(mean) + 1e3 * scale  # a prediction 1000 standard deviations out
        if not np.isfinite(reach).all():
            raise ValueError(
                f"y holds values too large to standardize and predict in float64 (largest "
                f"|y| = {np.abs(y).max():.3g}): rescale y first, e.g. divide it by a constant."
            )
        targets.update(n_outputs_=y.shape[1], y_mean_=mean, y_scale_=scale)
        return ((y - mean) / scale).astype(np.float32), targets

    @staticmethod
    def _targets_from(outputs, targets):
        y_pred = outputs * targets["y_scale_"] + targets["y_mean_"]
        return y_pred[:, 0] if targets["_y_is_1d"] else y_pred

    def _held_out_score(self, model, targets, X_val, y_val, groups_val):
        """R^2 of the routed prediction (per-ticket scores NaN)."""
        y_pred = self._targets_from(model.decision(X_val, groups_val), targets)
        return float(r2_score(y_val, y_pred)), np.full(model.network.n_tickets, np.nan)

    @predict_doc
    def predict(self, X, groups=None):
        """Predict targets, every sample through its own ticket.

        %(X_groups)s

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, `n_outputs_`)
        """
        X = self._validate_predict_input(X)
        return self._targets_from(self._model().decision(X, groups), vars(self))
