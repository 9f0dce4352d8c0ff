"""The learning task as one object: multi-class, one-vs-rest detectors, or regression.

A task says everything that differs between them, so that no other module branches on it:

* ``n_outputs(y_train)``: the width of the network's output;
* ``router_targets(y, y_train)``: what the router is fitted on;
* ``per_sample_loss(y_pred, y_true, ticket)``: one loss value per sample;
* ``pools(k, ticket, y, batch_size)``: the rows ticket ``k`` draws its batches from, as
  ``[(rows, per_step), ...]``;
* ``epoch_steps(pools, n_rows, batch_size)``: how many steps make one epoch of a ticket;
* ``route(model, X, groups)``: every sample's ticket at predict time (the router's, or
  under label routing the detectors' own decision);
* ``decision(model, X, groups)``: the scores a prediction is read from;
* ``export_output``: what the exported model (:func:`~sklearn_rtl.to_torch`) returns;
* ``predict_outputs(outputs)``, ``held_out_tickets(router, X, groups)``: the same for the raw
  outputs of the trainer on held-out rows (its loss and ``EpochScoring``).
"""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F

__all__ = ["MulticlassTask", "OneVsRestTask", "RegressionTask"]


class MulticlassTask:
    """Every ticket is a full K-way classifier of the samples routed to it."""

    name = "multiclass"
    export_output = "proba"

    def n_outputs(self, y_train) -> int:
        return int(np.max(y_train)) + 1

    def router_targets(self, y, y_train):
        return y

    def per_sample_loss(self, y_pred, y_true, ticket):
        return F.cross_entropy(y_pred, y_true.long().reshape(-1), reduction="none")

    def pools(self, k, ticket, y, batch_size):
        return [(np.flatnonzero(ticket == k), batch_size)]

    def epoch_steps(self, pools, n_rows, batch_size):
        """One pass over the ticket's own samples."""
        rows, per_step = pools[0]
        return -(-len(rows) // per_step)

    def route(self, model, X, groups=None):
        """Every sample's ticket: the router's."""
        return model.router_tickets(X, groups)

    def decision(self, model, X, groups=None):
        """Logits of every sample's own ticket, shape ``(n_samples, n_outputs)``."""
        return model.outputs(X, model.route(X, groups))

    def predict_outputs(self, outputs):
        """Encoded prediction from raw outputs of the rows' tickets: the class index."""
        return np.argmax(outputs, axis=-1)

    def held_out_tickets(self, router, X, groups=None):
        """Ticket of every held-out row for the held-out loss: its routed ticket."""
        return np.asarray(router.predict(X, groups)).astype(np.int64)


class OneVsRestTask(MulticlassTask):
    """Ticket ``k`` is the one-vs-rest detector of class ``k`` (routing by label).

    Its batches are half positives (class ``k``, cycled) and half negatives from the other
    classes, and one epoch shows it as many samples as the training set holds (a pass
    over the positives alone would give a small class a handful of steps per epoch, so a
    cap in epochs would stop its detector nearly untrained). A prediction runs every
    detector and reads their log-sigmoid scores.
    """

    name = "ovr"
    export_output = "label_proba"

    def n_outputs(self, y_train) -> int:
        return 1

    def router_targets(self, y, y_train):
        return y_train

    def per_sample_loss(self, y_pred, y_true, ticket):
        target = (y_true.reshape(-1) == ticket).to(y_pred.dtype)
        return F.binary_cross_entropy_with_logits(y_pred.reshape(-1), target, reduction="none")

    def pools(self, k, ticket, y, batch_size):
        half = max(1, batch_size // 2)
        return [(np.flatnonzero(y == k), half), (np.flatnonzero(y != k), half)]

    def epoch_steps(self, pools, n_rows, batch_size):
        """As many samples as the training set holds (half of them positives, cycled):
        a detector's epoch is as long as a dense model's, whatever its class's size."""
        return -(-n_rows // batch_size)

    def route(self, model, X, groups=None):
        """Every sample's ticket: the class whose detector scores highest."""
        return np.argmax(model.outputs(X)[..., 0], axis=1).astype(np.int64)

    def decision(self, model, X, groups=None):
        """``log(sigmoid(z_k))`` of every detector, shape ``(n_samples, n_tickets)``."""
        return -np.logaddexp(0.0, -model.outputs(X)[..., 0])

    def predict_outputs(self, outputs):
        """Class index from every detector's logit, ``outputs`` of shape ``(n, K, 1)``."""
        return np.argmax(outputs[..., 0], axis=1)

    def held_out_tickets(self, router, X, groups=None):
        """``-1``: every detector scores every held-out row."""
        return np.full(X.shape[0], -1, dtype=np.int64)


class RegressionTask(MulticlassTask):
    """Squared error on standardized targets; every ticket predicts all outputs."""

    name = "regression"
    export_output = "regression"

    def n_outputs(self, y_train) -> int:
        return y_train.shape[1]

    def predict_outputs(self, outputs):
        return outputs

    def per_sample_loss(self, y_pred, y_true, ticket):
        per_sample = F.mse_loss(y_pred, y_true.to(y_pred.dtype).view_as(y_pred), reduction="none")
        return per_sample.reshape(len(y_pred), -1).mean(1)
