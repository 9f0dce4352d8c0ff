"""Training through skorch: balanced ticket batches and masked, optionally tied, updates.

Both stages of RTL run on the same machinery:

* ticket extraction (Alg. 1): one weight copy per ticket, untied, every copy trained on its
  own ticket's samples only; K independent IMP runs in one batched loop;
* joint retraining (Alg. 2): one shared ``theta`` (copies tied after every step), every
  sample trained through its own ticket's mask.

Every optimizer step sees one mini-batch per ticket (smaller tickets' samples are cycled,
Alg. 2's balanced dataset), the loss is the sum of the per-ticket mean losses, and
:meth:`TicketNetwork.masked_update` keeps every ticket's update on its own mask.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.utils import to_tensor

__all__ = ["RecordStage", "TicketBatchLoader", "TicketNet"]

_FUSED_OPTIMIZERS = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD, torch.optim.Adagrad)


def _cycled(indices: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """Shuffled ``indices``, repeated (reshuffled each pass) to exactly ``length`` entries."""
    passes = -(-length // len(indices))
    return np.concatenate([rng.permutation(indices) for _ in range(passes)])[:length]


class TicketBatchLoader:
    """Iterates multi-ticket mini-batches over a skorch ``Dataset``.

    Every batch holds ``batch_size`` samples of every ticket in it (or all of a smaller
    ticket's samples). With ``cycle=True`` (joint retraining, Alg. 2's balanced dataset)
    one epoch makes as many steps as the largest ticket needs to see all of its samples
    once, and smaller tickets are cycled, so every ticket gets the same number of updates.
    With ``cycle=False`` (ticket extraction, Alg. 1, and the independent baseline) every
    ticket makes only its own ``ceil(n_k / batch_size)`` steps per epoch, as K separate
    trainings would, and drops out of the later steps of the epoch.

    With ``task="ovr"`` ticket ``k`` is a one-vs-rest detector of class ``k``: each of its
    batches is half positives (samples of class ``k``, cycled) and half negatives drawn from
    the other classes.

    Parameters
    ----------
    dataset : skorch.dataset.Dataset
        ``X`` is a dict with ``"X"`` and ``"ticket"`` arrays, ``y`` the encoded targets.
    batch_size : int
        Samples per ticket per step.
    task : {"multiclass", "ovr"}, default="multiclass"
    rng : numpy.random.Generator, default=None
        Source of shuffling; reused across epochs.
    cycle : bool, default=True
        Whether smaller tickets are cycled to the largest ticket's number of steps.
    """

    def __init__(self, dataset, batch_size, task="multiclass", rng=None, cycle=True, **_ignored):
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.task = task
        self.cycle = bool(cycle)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.X = dataset.X["X"]
        self.ticket = np.asarray(dataset.X["ticket"])
        self.y = np.asarray(dataset.y)

    def _plan(self):
        """Per ticket: ``(ticket, index array of shape (n_steps_k, samples per step))``."""
        tickets = np.unique(self.ticket)
        rng = self.rng
        if self.task == "ovr":
            half = max(1, self.batch_size // 2)
            pools = [(np.flatnonzero(self.y == k), np.flatnonzero(self.y != k)) for k in tickets]
            own_steps = [-(-len(pos) // half) for pos, _ in pools]
        else:
            pools = [np.flatnonzero(self.ticket == k) for k in tickets]
            own_steps = [-(-len(pool) // self.batch_size) for pool in pools]
        longest = max(own_steps)
        plan = []
        for k, pool, steps in zip(tickets, pools, own_steps, strict=True):
            n_steps = longest if self.cycle else steps
            if self.task == "ovr":
                pos, neg = pool
                n_pos, n_neg = min(half, len(pos)), min(half, len(neg))
                parts = [_cycled(pos, n_steps * n_pos, rng).reshape(n_steps, n_pos)]
                if n_neg:
                    parts.append(_cycled(neg, n_steps * n_neg, rng).reshape(n_steps, n_neg))
                plan.append((k, np.concatenate(parts, axis=1)))
            else:
                size = min(self.batch_size, len(pool))
                plan.append((k, _cycled(pool, n_steps * size, rng).reshape(n_steps, size)))
        return plan

    def __iter__(self):
        plan = self._plan()
        for step in range(max(len(steps) for _, steps in plan)):
            active = [(k, steps[step]) for k, steps in plan if step < len(steps)]
            index = np.concatenate([rows for _, rows in active])
            # A sample's ticket is the ticket whose batch it fills (under "ovr" the
            # negatives of ticket k come from other classes but still train detector k).
            ticket = np.concatenate([np.full(len(rows), k, dtype=np.int64) for k, rows in active])
            yield {"X": self.X[index], "ticket": torch.as_tensor(ticket)}, self.y[index]

    def __len__(self):
        return max(len(steps) for _, steps in self._plan())


class TicketNet(NeuralNet):
    """skorch ``NeuralNet`` over a :class:`~sklearn_rtl._network.TicketNetwork`.

    Adds three things to skorch's loop: the loss is summed over tickets (each ticket's mean
    loss), ``task="ovr"`` turns class targets into one-vs-rest targets of each sample's
    ticket, and every optimizer step is followed by the masked (and, with ``tied=True``,
    tied) update of :meth:`TicketNetwork.masked_update`.

    Parameters
    ----------
    task : {"multiclass", "ovr", "regression"}, default="multiclass"
    tied : bool, default=False
        Whether the weight copies hold one shared ``theta``.
    **kwargs
        Passed to :class:`skorch.NeuralNet`.
    """

    def __init__(self, *args, task="multiclass", tied=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.task = task
        self.tied = tied

    def get_loss(self, y_pred, y_true, X=None, training=False):
        ticket = to_tensor(X["ticket"], device=y_pred.device).reshape(-1)
        y_true = to_tensor(y_true, device=y_pred.device)
        if self.task == "ovr":
            target = (y_true.reshape(-1) == ticket).to(y_pred.dtype)
            per_sample = F.binary_cross_entropy_with_logits(
                y_pred.reshape(-1), target, reduction="none"
            )
        elif self.task == "regression":
            per_sample = F.mse_loss(
                y_pred, y_true.to(y_pred.dtype).view_as(y_pred), reduction="none"
            )
            per_sample = per_sample.reshape(len(y_pred), -1).mean(1)
        else:
            per_sample = F.cross_entropy(y_pred, y_true.long().reshape(-1), reduction="none")
        n_tickets = self.module_.n_tickets
        totals = per_sample.new_zeros(n_tickets).index_add_(0, ticket, per_sample)
        counts = per_sample.new_zeros(n_tickets).index_add_(0, ticket, torch.ones_like(per_sample))
        present = counts > 0
        return (totals[present] / counts[present]).sum()

    def initialize_optimizer(self, *args, **kwargs):
        """skorch's optimizer set-up, with ``fused=True`` when the optimizer supports it.

        The fused CPU/CUDA kernels of Adam, AdamW, SGD and Adagrad update all weight copies
        in one pass (8x faster than the default per-tensor loop on a K=8 stack of the
        default MLP). Not applied when the user chose ``fused`` or ``foreach`` through
        ``optimizer_params``, or where the optimizer or torch version lacks it.
        """
        named_parameters = self.get_all_learnable_params()
        args, kwargs = self.get_params_for_optimizer("optimizer", named_parameters)
        args = tuple(
            list(a) if not isinstance(a, (list, tuple, dict, torch.Tensor)) else a for a in args
        )
        if (
            self.optimizer in _FUSED_OPTIMIZERS
            and "fused" not in kwargs
            and "foreach" not in kwargs
        ):
            try:
                self.optimizer_ = self.optimizer(*args, fused=True, **kwargs)
                return self
            except (RuntimeError, TypeError, ValueError):
                pass
        self.optimizer_ = self.optimizer(*args, **kwargs)
        return self

    def train_step(self, batch, **fit_params):
        n_tickets = self.module_.n_tickets
        present = torch.unique(to_tensor(batch[0]["ticket"], device="cpu"))
        if len(present) == n_tickets:
            present = None
        # An untied update with every ticket present only needs the masked weights' old
        # values; absent tickets' copies are restored whole.
        before = self.module_.snapshot(prunable_only=not self.tied and present is None)
        step = super().train_step(batch, **fit_params)
        self.module_.masked_update(before, tied=self.tied, present=present)
        return step


class RecordStage(Callback):
    """Writes the current stage (``"rewind"``, ``"prune_round_<r>"``, ``"retrain"``) into
    every epoch of the skorch history, so one history tells the whole fit."""

    def on_epoch_begin(self, net, **kwargs):
        net.history.record("stage", getattr(net, "stage_", "train"))
