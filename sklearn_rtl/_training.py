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
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.utils import to_tensor

from ._tasks import MulticlassTask

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

    The task says which rows ticket ``k`` draws from (``task.pools``): its own samples, or,
    for one-vs-rest detectors, half positives (class ``k``, cycled) and half negatives.

    Parameters
    ----------
    dataset : skorch.dataset.Dataset
        ``X`` is a dict with ``"X"`` and ``"ticket"`` arrays, ``y`` the encoded targets.
    batch_size : int
        Samples per ticket per step.
    task : task object, default=MulticlassTask()
    rng : numpy.random.Generator, default=None
        Source of shuffling; reused across epochs.
    cycle : bool, default=True
        Whether smaller tickets are cycled to the largest ticket's number of steps.
    """

    def __init__(self, dataset, batch_size, task=None, rng=None, cycle=True):
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.task = task if task is not None else MulticlassTask()
        self.cycle = bool(cycle)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.X = dataset.X["X"]
        self.ticket = np.asarray(dataset.X["ticket"])
        self.y = np.asarray(dataset.y)

    def _plan(self):
        """Per ticket: ``(ticket, index array of shape (n_steps_k, samples per step))``."""
        tickets = np.unique(self.ticket)
        pools = [self.task.pools(k, self.ticket, self.y, self.batch_size) for k in tickets]
        own_steps = [-(-len(parts[0][0]) // parts[0][1]) for parts in pools]
        longest = max(own_steps)
        plan = []
        for k, parts, steps in zip(tickets, pools, own_steps, strict=True):
            n_steps = longest if self.cycle else steps
            rows = [
                _cycled(pool, n_steps * n, self.rng).reshape(n_steps, n)
                for pool, per_step in parts
                if (n := min(per_step, len(pool)))
            ]
            plan.append((k, np.concatenate(rows, axis=1)))
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
    """skorch ``NeuralNet`` over a :class:`~sklearn_rtl._network.TicketNetwork`: the trainer
    of both RTL stages.

    Adds three things to skorch's loop: the loss is summed over tickets (each ticket's mean
    of the task's per-sample loss), the training batches come from
    :class:`TicketBatchLoader`, and every optimizer step is followed by the masked (and,
    in a tied stage, tied) update of :meth:`TicketNetwork.masked_update`. A stage is run by
    :meth:`fit_stage`, which alone decides how the next training behaves.

    Parameters
    ----------
    task : task object, default=MulticlassTask()
        Per-sample loss and batch pools (``_tasks.py``).
    loader_rng : numpy.random.Generator, default=None
        Shuffles the training batches of every stage, in turn.
    **kwargs
        Passed to :class:`skorch.NeuralNet`.
    """

    def __init__(self, *args, task=None, loader_rng=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.task = task if task is not None else MulticlassTask()
        self.loader_rng = loader_rng

    def fit_stage(self, stage, X, y, start):
        """Rewind every ticket's copy to ``start`` and train for ``stage.epochs`` epochs.

        ``stage`` is a record with ``name``, ``tied`` and ``epochs``: tied stages (joint
        retraining) keep one shared ``theta`` and cycle smaller tickets (Alg. 2); untied
        ones (ticket extraction, the independent baseline) let every ticket make only its
        own steps, as K separate runs would (Alg. 1).
        """
        self.module_.set_weights(start, n_copies=self.module_.n_tickets)
        self.stage_ = stage
        self.max_epochs = stage.epochs
        self.initialize_optimizer()
        return self._train_stage(X, y)

    def _train_stage(self, X, y):
        """skorch's ``partial_fit`` minus its ``except KeyboardInterrupt: pass``.

        skorch ends training quietly on Ctrl-C and returns, so the fit would go on with
        the next stage. Here the interrupt propagates (after ``on_train_end``, so that
        callbacks such as the progress bar close) and ``fit`` restores the estimator as it
        was. A stage that ends with non-finite weights or optimizer state raises a
        ``ValueError`` (:meth:`_check_finite`).
        """
        if not self.initialized_:
            self.initialize()
        self.notify("on_train_begin", X=X, y=y)
        try:
            self.fit_loop(X, y)
        except KeyboardInterrupt:
            self.notify("on_train_end", X=X, y=y)
            raise
        self.notify("on_train_end", X=X, y=y)
        self._check_finite(X)
        return self

    def _check_finite(self, X):
        """Raise a ``ValueError`` if the stage left inf or NaN in the weights or in the
        optimizer's state.

        Non-finite weights in a pruning round would rank weights by NaN magnitudes, and the
        next stage, rewound to finite weights, would hide them. With inputs of magnitude
        around 1e20 and beyond, squared gradients overflow float32: Adam's second moment
        becomes inf, every update ``m / sqrt(v)`` becomes 0 and the weights freeze at their
        initial values, finite; only the optimizer state shows that training stopped.
        """
        weights = self.module_.get_weights().values()
        state = getattr(self.optimizer_, "state", {})
        tensors = [v for per_param in state.values() for v in per_param.values()]
        if all(bool(torch.isfinite(w).all()) for w in weights):
            if all(bool(torch.isfinite(v).all()) for v in tensors if torch.is_tensor(v)):
                return
            what = "Training overflowed float32 (the optimizer's state holds inf or NaN)"
        else:
            what = "Training produced non-finite weights (NaN or inf)"
        data = X["X"] if isinstance(X, dict) else X
        raise ValueError(
            f"{what} in stage {self.stage_.name!r}: X probably holds very large values "
            f"(largest |X| = {float(np.abs(data).max()):.3g}). Scale it first (e.g. "
            f"StandardScaler) or lower lr."
        )

    def get_default_callbacks(self):
        return [*super().get_default_callbacks(), ("stage", RecordStage())]

    def get_iterator(self, dataset, training=False):
        if not training:
            return super().get_iterator(dataset, training=False)
        return TicketBatchLoader(
            dataset, self.batch_size, task=self.task, rng=self.loader_rng, cycle=self.stage_.tied
        )

    def get_loss(self, y_pred, y_true, X=None, training=False):
        ticket = to_tensor(X["ticket"], device=y_pred.device).reshape(-1)
        y_true = to_tensor(y_true, device=y_pred.device)
        per_sample = self.task.per_sample_loss(y_pred, y_true, ticket)
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

        In an untied stage with one weight copy per ticket, the optimizer steps one view
        per ticket copy instead of the stacked weight (:meth:`_optimizer_parameters`), so
        every ticket has its own optimizer state, step count included.
        """
        named_parameters = self._optimizer_parameters()
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

    def _optimizer_parameters(self):
        """The ``(name, tensor)`` pairs the optimizer steps.

        skorch's learnable parameters, except in an untied stage (ticket extraction, the
        independent baseline) with one weight copy per ticket: there every stacked weight
        of shape ``(K, *shape)`` becomes ``K`` views of shape ``shape`` (one per ticket copy,
        sharing its storage, under the stacked weight's name so that ``param_groups``
        patterns still apply). The optimizer then keeps separate state per ticket copy
        (Adam's and AdamW's step count and moments, SGD's momentum buffer), and
        :meth:`train_step_single` hands a ticket's view its gradient only when the ticket
        has samples in the step: torch's optimizers skip a parameter whose gradient is
        ``None``, so an absent ticket's weights and state neither move nor decay, exactly
        as in K separate runs. Tied stages (joint retraining) have every ticket in every
        step and keep the stacked weights (one shared step count, per-copy moments).
        """
        named = list(self.get_all_learnable_params())
        self.ticket_views_ = []
        network = self.module_
        stage = getattr(self, "stage_", None)
        if stage is None or stage.tied or network.n_copies == 1:
            return named
        stacked = {id(p) for p in network.weights.values()}
        split = []
        for name, param in named:
            if id(param) not in stacked:
                split.append((name, param))
                continue
            views = list(param.detach().unbind(0))
            self.ticket_views_.append((param, views))
            split.extend((name, view) for view in views)
        return split

    def train_step_single(self, batch, **fit_params):
        """skorch's forward and backward pass; with per-ticket views (untied stages), the
        stacked gradients are cleared first and then handed to the views of the tickets
        present in the batch (``None`` for the others, which the optimizer then skips)."""
        views = getattr(self, "ticket_views_", None) or []
        for param, _ in views:
            param.grad = None
        step = super().train_step_single(batch, **fit_params)
        present = getattr(self, "present_", None)
        for param, copies in views:
            for k, view in enumerate(copies):
                keep = param.grad is not None and (present is None or bool(present[k]))
                view.grad = param.grad[k] if keep else None
        return step

    def train_step(self, batch, **fit_params):
        n_tickets = self.module_.n_tickets
        present = torch.unique(to_tensor(batch[0]["ticket"], device="cpu"))
        if len(present) == n_tickets:
            present = None
        tied = self.stage_.tied
        per_ticket = bool(getattr(self, "ticket_views_", None))
        self.present_ = None
        if per_ticket and present is not None:
            self.present_ = torch.zeros(n_tickets, dtype=torch.bool)
            self.present_[present] = True
            # Absent tickets get no gradient, so the optimizer leaves them untouched.
            present = None
        # An untied update with every ticket present only needs the masked weights' old
        # values; absent tickets' copies are restored whole.
        before = self.module_.snapshot(prunable_only=not tied and present is None)
        step = super().train_step(batch, **fit_params)
        self.module_.masked_update(before, tied=tied, present=present)
        return step

    def __getstate__(self):
        # The per-ticket views belong to the optimizer of the running stage only.
        state = super().__getstate__()
        state.pop("ticket_views_", None)
        state.pop("present_", None)
        return state


class RecordStage(Callback):
    """Writes the current stage (``"rewind"``, ``"prune_round_<r>"``, ``"retrain"``) into
    every epoch of the skorch history, so one history tells the whole fit."""

    def on_epoch_begin(self, net, **kwargs):
        stage = getattr(net, "stage_", None)
        net.history.record("stage", "train" if stage is None else stage.name)
