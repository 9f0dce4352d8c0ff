"""When a stage ends: MLPClassifier's stopping rule, applied to every stage of a fit.

Every pruning round and the final retraining trains "until it stops improving", with
scikit-learn's ``MLPClassifier`` parameter names and meanings:

* by default the monitored value is the training loss per ticket (the summed loss over the
  number of tickets, on the scale of MLPClassifier's loss): a stage ends once it has
  improved by less than ``tol`` for ``n_iter_no_change`` consecutive epochs, or at
  ``max_epochs``;
* with ``early_stopping=True`` it is the held-out score (balanced accuracy, or R^2), recorded
  every epoch by :class:`HeldOutScore`; the stage ends once the score has not improved by
  ``tol`` for ``n_iter_no_change`` epochs, and the weights of its best epoch are restored.

Every stage runs with a fresh copy of :class:`StageStopping`
(:class:`~sklearn_rtl._training.StageRun`). It only raises its own flag (``stage_ended_``),
which the stage's epoch loop reads, so that a stage ends without an exception and Ctrl-C
keeps meaning "stop". :class:`HeldOutScore` is one instance for the whole fit: it holds the
scorer, built with it.
"""

from __future__ import annotations

import numpy as np
from skorch.callbacks import Callback

__all__ = ["HeldOutScore", "StageStopping"]


class HeldOutScore(Callback):
    """Records ``valid_score`` (the estimator's held-out score) at the end of every epoch.

    Parameters
    ----------
    score : callable, default=None
        ``score() -> (score, per-ticket scores)`` of the weights being trained (the
        estimator's held-out scorer of the routed model in training); ``None`` records
        nothing.
    """

    spans_fit = True  # one instance for every stage: it holds the scorer, never copied

    def __init__(self, score=None):
        self.score = score

    def on_epoch_end(self, net, **kwargs):
        if self.score is not None:
            net.history.record("valid_score", float(self.score()[0]))


class StageStopping(Callback):
    """MLPClassifier's ``tol`` / ``n_iter_no_change`` rule, restarted at every stage.

    Parameters
    ----------
    monitor : {"train_loss", "valid_score"}, default="train_loss"
        A loss is lower-is-better, a score higher-is-better.
    tol : float, default=1e-4
        An epoch improves only by more than ``tol`` over the best value so far.
    n_iter_no_change : int, default=10
        Epochs without improvement that end the stage.
    restore_best : bool, default=False
        Reload the weights of the best epoch when the stage ends.
    """

    def __init__(self, monitor="train_loss", tol=1e-4, n_iter_no_change=10, restore_best=False):
        self.monitor = monitor
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.restore_best = restore_best

    def on_train_begin(self, net, **kwargs):
        self.best_ = np.inf
        self.misses_ = 0
        self.best_weights_ = None
        self.stage_ended_ = False

    def on_epoch_end(self, net, **kwargs):
        value = net.history[-1, self.monitor]
        # the training loss sums every ticket's mean loss: per ticket, it is on the scale
        # of MLPClassifier's loss, which tol is meant for
        loss = value / net.module_.n_tickets if self.monitor.endswith("loss") else -value
        # MLPClassifier._update_no_improvement_count: no improvement unless the value beats
        # the best by more than tol; the best is updated whenever it is beaten at all
        self.misses_ = self.misses_ + 1 if loss > self.best_ - self.tol else 0
        if loss < self.best_:
            self.best_ = loss
            if self.restore_best:
                self.best_weights_ = {k: w.clone() for k, w in net.module_.weights.items()}
        if self.misses_ >= self.n_iter_no_change:
            self.stage_ended_ = True

    def on_train_end(self, net, **kwargs):
        if self.restore_best and self.best_weights_ is not None:
            for key, weight in net.module_.weights.items():
                weight.data.copy_(self.best_weights_[key])
