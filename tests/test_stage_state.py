"""Issue 21: every stage runs as its own short-lived StageRun (history, callbacks, views).

Defect 4: skorch's ``Checkpoint(load_best=True)`` passed through ``callbacks=`` kept its
"best" across stages, so a stage that never beat an earlier stage's loss got that stage's
weights, masks (buffers of the module) and history back at its end, or a raw torch error
from loading another stage's optimizer state.
"""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from skorch.callbacks import Callback, Checkpoint

from conftest import small_rtl


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X[:300] / 16).astype(np.float32), y[:300]


def _prune_rounds(**params):
    """Three pruning rounds of three epochs each (no early end), then three of retraining."""
    base = dict(
        hidden_layer_sizes=(16,), n_clusters=2, n_prune_rounds=3, max_epochs=3,
        max_prune_epochs=3, tol=0.0, lr=1e-2,
    )  # fmt: skip
    return small_rtl(**{**base, **params})


def _mask_density(net):
    masks = net.module_.get_masks().values()
    return float(sum(m.sum() for m in masks) / sum(m.numel() for m in masks))


class StageEnds(Callback):
    """Every stage's name and mask density at its end (after the Checkpoint's restore),
    and whether the weights then are those of the stage's first epoch."""

    spans_fit = True  # one recorder for the whole fit

    def __init__(self):
        self.ends = []

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == 1:
            self.first_epoch_ = {k: w.clone() for k, w in net.module_.get_weights().items()}

    def on_train_end(self, net, **kwargs):
        weights = net.module_.get_weights()
        first = all(torch.equal(weights[k], w) for k, w in self.first_epoch_.items())
        self.ends.append((net.stage_.name, _mask_density(net), first))


def _recorder(est):
    return next(cb for _, cb in est.net_.callbacks_ if isinstance(cb, StageEnds))


def test_checkpoint_load_best_restarts_with_every_stage(digits, tmp_path):
    X, y = digits
    checkpoint = Checkpoint(load_best=True, dirname=str(tmp_path), monitor="train_loss_best")
    est = _prune_rounds(sparsity=0.99, callbacks=[checkpoint]).fit(X, y)
    # before: ValueError "loaded state dict contains a parameter group that doesn't match
    # the size of optimizer's group" (retraining loaded a pruning round's optimizer state)
    assert est.n_tickets_ >= 2
    assert est.n_iter_ == {"prune_round_1": 3, "prune_round_2": 3, "prune_round_3": 3, "retrain": 3}
    np.testing.assert_allclose(est.ticket_sparsity_, 0.99, atol=0.005)
    history = est.net_.history
    stages = [row["stage"] for row in history]
    assert stages == [s for s in est.n_iter_ for _ in range(3)]
    # "best" is per stage: every stage's first epoch is its best so far
    assert [row["train_loss_best"] for row in history if row["epoch"] == 1] == [True] * 4
    assert all(row["event_cp"] == row["train_loss_best"] for row in history)


def test_a_stage_that_never_checkpoints_keeps_its_own_weights_and_masks(digits, tmp_path):
    # the monitor fires in round 1 only: later stages wrote no checkpoint, and restoring
    # round 1's file would bring back round 1's (dense) masks and weights
    only_round_1 = Checkpoint(
        load_best=True, dirname=str(tmp_path), f_optimizer=None,
        monitor=lambda net: net.history[-1, "stage"] == "prune_round_1",
    )  # fmt: skip
    est = _prune_rounds(sparsity=0.9, callbacks=[only_round_1, StageEnds()]).fit(*digits)
    assert est.n_tickets_ >= 2
    assert list(est.n_iter_) == ["prune_round_1", "prune_round_2", "prune_round_3", "retrain"]
    assert all(n == 3 for n in est.n_iter_.values())
    ends = _recorder(est).ends
    assert [name for name, _, _ in ends] == list(est.n_iter_)
    densities = [density for _, density, _ in ends]
    # each round trains under the masks pruned after the round before it; the retraining
    # under the final ones (sparsity 0.9)
    assert densities[0] == 1.0 and densities[0] > densities[1] > densities[2] > densities[3]
    assert densities[3] == pytest.approx(0.1, abs=0.005)
    np.testing.assert_allclose(est.ticket_sparsity_, 0.9, atol=0.005)


def test_load_best_restores_the_stage_own_best_epoch_and_keeps_every_epoch(digits, tmp_path):
    first_epoch = Checkpoint(
        load_best=True, dirname=str(tmp_path), monitor=lambda net: len(net.history) == 1
    )
    est = _prune_rounds(n_prune_rounds=2, callbacks=[first_epoch, StageEnds()])
    est.fit(*digits)
    ends = _recorder(est).ends
    assert [first for _, _, first in ends] == [True, True, True]  # every stage's own epoch 1
    # the restore brings back weights, not the history saved with them: 3 epochs each
    assert est.n_iter_ == {"prune_round_1": 3, "prune_round_2": 3, "retrain": 3}


class CountEpochs(Callback):
    def initialize(self):  # returns None: skorch tolerates it, so must the stages
        self.epochs_ = 0

    def on_epoch_end(self, net, **kwargs):
        self.epochs_ += 1
        net.history.record("epochs_seen", self.epochs_)


def test_user_callbacks_are_fresh_copies_in_every_stage(digits):
    counter = CountEpochs()
    est = _prune_rounds(n_prune_rounds=2, callbacks=[counter]).fit(*digits)
    seen = [row["epochs_seen"] for row in est.net_.history]
    assert seen == [1, 2, 3] * 3  # restarted with every stage, never carried over
    assert not hasattr(counter, "epochs_")  # the user's instance is never used


def test_the_trainer_keeps_no_stage_state_between_stages(digits):
    lengths = []

    class StageLength(Callback):
        def on_epoch_end(self, net, **kwargs):
            lengths.append((net.stage_.name, len(net.history)))

    est = _prune_rounds(n_prune_rounds=1, callbacks=[StageLength()]).fit(*digits)
    # while a stage runs, net.history holds that stage's epochs only
    assert lengths == [(stage, e) for stage in ("prune_round_1", "retrain") for e in (1, 2, 3)]
    net = est.net_
    assert net.run_ is None and net.stage_ is None
    stale = ("stage_histories_", "stop_stage_", "ticket_views_", "present_")
    assert not set(stale) & set(vars(net))
    # the fit's history is every stage's epochs, in order
    assert [(r["stage"], r["epoch"]) for r in net.history] == lengths


def test_early_stopping_scorer_is_built_into_its_callback(digits):
    est = small_rtl(early_stopping=True, max_epochs=4, n_clusters=2).fit(*digits)
    callbacks = dict(est.net_.callbacks_)
    assert callbacks["held_out_score"].score is not None
    assert len(est.validation_scores_) == est.n_iter_["retrain"]
    assert "held_out_score" not in dict(small_rtl(max_epochs=1).fit(*digits).net_.callbacks_)
