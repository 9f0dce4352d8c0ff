"""Training through skorch: balanced ticket batches and masked, optionally tied, updates.

Both stages of RTL run on the same machinery:

* ticket extraction (Alg. 1): one weight copy per ticket, untied, every copy trained on its
  own ticket's samples only; K independent IMP runs in one batched loop;
* joint retraining (Alg. 2): one shared ``theta`` (copies tied after every step), every
  sample trained through its own ticket's mask.

Every optimizer step sees one mini-batch per ticket (smaller tickets' samples are cycled,
Alg. 2's balanced dataset), the loss is the sum of the per-ticket mean losses, and
:meth:`TicketNetwork.masked_update` keeps every ticket's update on its own mask.

Every training of the fit (the rewind epochs, each pruning round, the joint retraining) is
one :class:`StageRun`, created by :meth:`TicketNet.fit_stage` and dropped when the stage
ends. It holds everything that belongs to that stage alone: its masks and start, its own
skorch history, fresh copies of the stage callbacks (so that skorch's "best" flags,
``EarlyStopping`` and ``Checkpoint(load_best=True)`` are per stage), the per-ticket optimizer
views and the checkpoint files the stage wrote. The trainer itself keeps only what spans
the fit: its history (the epochs of the finished stages, each with its ``stage``) and the
callbacks that serve every stage (see :func:`spans_fit`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping, PrintLog
from skorch.history import History
from skorch.utils import TeeGenerator, to_tensor

from ._batches import HeldOutBatches, TicketBatchLoader
from ._tasks import MulticlassTask

__all__ = ["StageRun", "TicketBatchLoader", "TicketNet", "spans_fit"]  # loader: _batches.py

_FUSED_OPTIMIZERS = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD, torch.optim.Adagrad)
_BATCH_HOOKS = ("on_batch_begin", "on_batch_end", "on_grad_computed")
# skorch's per-batch methods that do nothing (the net's on_batch_begin opens the history's
# batch record: not one of them)
_NO_OP_HOOKS = {
    NeuralNet.on_batch_end, NeuralNet.on_grad_computed,
    *(getattr(Callback, name) for name in _BATCH_HOOKS),
}  # fmt: skip


def spans_fit(callback) -> bool:
    """Whether one instance of ``callback`` serves every stage of a fit.

    True for callbacks whose class says ``spans_fit = True`` (the fit's progress bar, the
    held-out scorer) and for skorch's ``PrintLog`` (one table for the whole fit). Every other
    callback restarts with every stage, as a fresh copy.
    """
    return isinstance(callback, PrintLog) or bool(getattr(callback, "spans_fit", False))


@dataclass(eq=False)
class StageRun:
    """One stage's training, from its rewind to its last epoch; dropped when it ends.

    Parameters
    ----------
    stage : Stage
        Name, tied or not, epoch cap (``_stages.Stage``).
    start : dict of str to Tensor
        The weights every ticket's copy is rewound to.
    tickets : TicketSet or None
        The masks the stage trains under; ``None`` keeps the network's.
    callbacks : list of (str, Callback)
        This stage's callbacks: fresh copies, and the instances that span the fit.
    history : History
        This stage's epochs only (skorch's ``net.history`` while the stage runs).
    ticket_views : list of (Parameter, list of Tensor)
        Untied stages: every stacked weight and its per-ticket views, which the optimizer
        steps (:meth:`TicketNet._optimizer_parameters`).
    present : Tensor or None
        Untied stages: which tickets have samples in the current step.
    saved : list
        Every checkpoint target (path or file object) written during the stage: a
        ``Checkpoint`` restores only from these (:meth:`TicketNet.load_params`).
    hooks : dict
        Per-batch notification name to the methods it calls (:meth:`TicketNet.notify`).
    """

    stage: object
    start: dict
    tickets: object = None
    callbacks: list = field(default_factory=list)
    history: History = field(default_factory=History)
    ticket_views: list = field(default_factory=list)
    present: torch.Tensor | None = None
    saved: list = field(default_factory=list)
    hooks: dict = field(default_factory=dict)

    def set_up(self, network):
        """Load the stage's masks and rewind every ticket's copy to ``start``."""
        if self.tickets is not None:
            network.set_masks(self.tickets)
        network.set_weights(self.start, n_copies=network.n_tickets)
        if network.n_tickets == 1 or not self.stage.tied:
            network.premask()  # every copy its own mask: no mask product per step

    def ended(self) -> bool:
        """Whether a callback ended the stage (``StageStopping`` sets ``stage_ended_``)."""
        return any(getattr(cb, "stage_ended_", False) for _, cb in self.callbacks)

    def early_stopped(self) -> bool:
        """Whether a user's skorch ``EarlyStopping`` ran out of patience."""
        return any(
            isinstance(cb, EarlyStopping) and cb.misses_ >= cb.patience for _, cb in self.callbacks
        )

    def wrote(self, targets) -> bool:
        """Whether every checkpoint target in ``targets`` was written during this stage."""
        return all(target in self.saved for target in targets)


class TicketNet(NeuralNet):
    """skorch ``NeuralNet`` over a :class:`~sklearn_rtl._network.TicketNetwork`: the trainer
    of both RTL stages.

    Adds three things to skorch's loop: the loss is summed over tickets (each ticket's mean
    of the task's per-sample loss), the training batches come from
    :class:`TicketBatchLoader`, and every optimizer step is followed by the masked (and,
    in a tied stage, tied) update of :meth:`TicketNetwork.masked_update`. A stage is run by
    :meth:`fit_stage` as a :class:`StageRun` (``run_`` while it trains, ``None`` between
    stages); ``history`` holds the epochs of every finished stage.

    Parameters
    ----------
    task : task object, default=MulticlassTask()
        Per-sample loss and batch pools (``_tasks.py``).
    loader_rng : numpy.random.Generator, default=None
        Shuffles the training batches of every stage, in turn.
    input_shape : tuple of int, default=None
        Per-sample shape the network takes.
    **kwargs
        Passed to :class:`skorch.NeuralNet`. ``callbacks`` restart with every stage, as
        fresh copies, except those that span the fit (:func:`spans_fit`).
    """

    run_ = None  # also for nets pickled before stages ran as StageRun objects

    def __init__(self, *args, task=None, loader_rng=None, input_shape=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.task = task if task is not None else MulticlassTask()
        self.loader_rng = loader_rng
        self.input_shape = input_shape
        self.run_ = None

    @property
    def stage_(self):
        """The running stage (``_stages.Stage``), or ``None`` between stages."""
        return None if self.run_ is None else self.run_.stage

    def initialize_callbacks(self):
        """skorch's callbacks, kept as the templates every stage copies (``callbacks_``
        then holds the running, or last, stage's)."""
        super().initialize_callbacks()
        self.callback_templates_ = list(self.callbacks_)
        return self

    def fit_stage(self, stage, X, y, start, tickets=None):
        """Rewind every ticket's copy to ``start`` (under ``tickets``) and train one stage.

        ``stage`` is a record with ``name``, ``tied`` and ``epochs`` (the cap): tied stages
        (joint retraining) keep one shared ``theta`` and cycle smaller tickets (Alg. 2);
        untied ones (ticket extraction, the independent baseline) let every ticket make
        only its own steps, as K separate runs would (Alg. 1). The stage ends at the cap,
        or earlier when a callback says so (:class:`~sklearn_rtl._stopping.StageStopping`,
        or a user's ``EarlyStopping``). The stage runs as a :class:`StageRun` with its own
        history and fresh callbacks; its epochs join ``history`` when it ends. A stage that
        ends with non-finite weights or optimizer state raises a ``ValueError``
        (:meth:`_check_finite`).
        """
        if not self.initialized_:
            self.initialize()
        run = StageRun(stage, start, tickets, callbacks=self._fresh_callbacks())
        fit_history, self.run_ = self.history, run
        self.history, self.callbacks_ = run.history, run.callbacks
        try:
            run.set_up(self.module_)
            self.max_epochs = stage.epochs
            self.initialize_optimizer()
            self._train_stage(X, y)
            self._check_finite(X)
        finally:
            self.module_.unmask(start)
            self.run_ = None
            self.history = History([*fit_history, *run.history])
        return self

    def _fresh_callbacks(self):
        """A fresh, initialized copy of every stage callback; the fit-wide ones as they are."""
        callbacks = []
        for name, template in self.callback_templates_:
            callback = template if spans_fit(template) else copy.deepcopy(template)
            if callback is not template:
                callback.initialize()  # skorch ignores what initialize returns: so do we
            callbacks.append((name, callback))
        return callbacks

    def _train_stage(self, X, y):
        """skorch's ``partial_fit`` / ``fit_loop`` without swallowing ``KeyboardInterrupt``.

        skorch ends training quietly on Ctrl-C and returns, so the fit would go on with
        the next stage. Here the interrupt propagates (after ``on_train_end``, so that
        callbacks such as the progress bar close) and ``fit`` restores the estimator as it
        was.
        """
        dataset_train, dataset_valid = self.get_split_datasets(X, y)
        datasets = {"dataset_train": dataset_train, "dataset_valid": dataset_valid}
        iterators = (
            self.get_iterator(dataset_train, training=True),
            None if dataset_valid is None else self.get_iterator(dataset_valid),
        )
        self.notify("on_train_begin", X=X, y=y)
        try:
            for _ in range(self.max_epochs):
                if self._run_epoch(*iterators, datasets):
                    break
        finally:
            self.notify("on_train_end", X=X, y=y)

    def notify(self, method_name, **cb_kwargs):
        """skorch's ``notify``; inside a stage, a per-batch notification calls only the
        methods that do something (:meth:`_batch_hooks`)."""
        if self.run_ is None or method_name not in _BATCH_HOOKS:
            return super().notify(method_name, **cb_kwargs)
        for hook in self._batch_hooks(method_name):
            hook(self, **cb_kwargs)
        return None

    def _batch_hooks(self, method_name):
        """The net's and the stage's callbacks' ``method_name`` methods, less skorch's
        no-ops (up to three calls per callback per step), listed once per stage."""
        hooks = self.run_.hooks.get(method_name)
        if hooks is None:
            owners = [self, *(cb for _, cb in self.callbacks_)]
            hooks = self.run_.hooks[method_name] = [
                getattr(owner, method_name)
                for owner in owners
                if method_name in vars(owner)
                or getattr(type(owner), method_name) not in _NO_OP_HOOKS
            ]
        return hooks

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """skorch's epoch loop; in training, a batch's size (for the history) is its number
        of targets, not a recursive walk of the input dict."""
        if not training or iterator is None:
            return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        batch_count = 0
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            self.history.record_batch(prefix + "_loss", step["loss"].item())
            self.history.record_batch(prefix + "_batch_size", len(batch[1]))
            self.notify("on_batch_end", batch=batch, training=training, **step)
            batch_count += 1
        self.history.record(prefix + "_batch_count", batch_count)
        return None

    def _optimizer_step(self, batch, **fit_params):
        """skorch's ``train_step``: zero the gradients, forward and backward,
        ``on_grad_computed``, step. The optimizers that evaluate a closure once (Adam,
        AdamW, SGD, Adagrad) step without one; the others get skorch's closure."""
        if type(self.optimizer_) not in _FUSED_OPTIMIZERS:
            return super().train_step(batch, **fit_params)
        self._zero_grad_optimizer()
        step = self.train_step_single(batch, **fit_params)
        if self._batch_hooks("on_grad_computed"):
            self.notify(
                "on_grad_computed",
                named_parameters=TeeGenerator(self.get_all_learnable_params()),
                batch=batch,
                training=True,
            )
        self.optimizer_.step()
        return step

    def _run_epoch(self, iterator_train, iterator_valid, datasets) -> bool:
        """One epoch; whether the stage should end."""
        self.notify("on_epoch_begin", **datasets)
        self.run_single_epoch(iterator_train, True, "train", self.train_step)
        self.run_single_epoch(iterator_valid, False, "valid", self.validation_step)
        try:
            self.notify("on_epoch_end", **datasets)
        except KeyboardInterrupt:
            # skorch's EarlyStopping ends training by raising KeyboardInterrupt: that ends
            # the stage; a real Ctrl-C ends the fit
            if not self.run_.early_stopped():
                raise
            return True
        return self.run_.ended()

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        """skorch's new epoch, recorded with its stage (``"rewind"``, ``"prune_round_<r>"``,
        ``"validate"``, ``"retrain"``), so that the fit's history tells the whole fit."""
        super().on_epoch_begin(net, dataset_train, dataset_valid, **kwargs)
        self.history.record("stage", self.run_.stage.name)

    def save_params(self, *args, **kwargs):
        """skorch's ``save_params``; a running stage notes every target it writes."""
        super().save_params(*args, **kwargs)
        if self.run_ is not None:
            self.run_.saved.extend(f for k, f in kwargs.items() if k.startswith("f_") and f)

    def load_params(self, *args, checkpoint=None, **kwargs):
        """skorch's ``load_params``; inside a stage, a ``Checkpoint`` restores only what the
        same stage saved.

        The masks are buffers of the module, so module parameters saved in another stage
        (another pruning round) would bring back that round's weights and masks, and its
        optimizer state may not even fit this stage's optimizer. A ``Checkpoint`` that
        wrote nothing in the running stage (its monitor never fired) restores nothing: the
        stage keeps its last epoch's weights. A restore never replaces the stage's history:
        every trained epoch stays recorded.
        """
        run = self.run_
        if run is None or checkpoint is None:
            return super().load_params(*args, checkpoint=checkpoint, **kwargs)
        files = checkpoint.get_formatted_files(self)
        targets = [f for k, f in files.items() if k not in ("f_history", "f_pickle") and f]
        if run.wrote(targets):
            super().load_params(*args, checkpoint=checkpoint, **kwargs)
        self.history = run.history
        return None

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
            f"{what} in stage {self.run_.stage.name!r}: X probably holds very large values "
            f"(largest |X| = {float(np.abs(data).max()):.3g}). Scale it first (e.g. "
            f"StandardScaler) or lower lr."
        )

    def _set_training(self, training=True):
        """skorch's train/eval switch, skipped where the module is already in that mode:
        skorch calls it before every step, and ``Module.train`` walks every submodule (5 %
        of a default fit's time on a small table)."""
        for name in self._modules + self._criteria:
            module = getattr(self, name + "_")
            if isinstance(module, torch.nn.Module) and module.training != training:
                module.train(training)

    def get_iterator(self, dataset, training=False):
        if not training:
            return HeldOutBatches(dataset, max(self.batch_size, 1024), self.input_shape)
        return TicketBatchLoader(
            dataset,
            self.batch_size,
            task=self.task,
            rng=self.loader_rng,
            # tied stages (Alg. 2) and the n_clusters="auto" comparison: equal steps
            cycle=self.run_.stage.tied or self.run_.stage.shared_ticket is not None,
            input_shape=self.input_shape,
            shared_ticket=self.run_.stage.shared_ticket,
            device=self.device,
        )

    def infer(self, x, **fit_params):
        """The network's outputs for a batch dict: through every row's ticket, or through
        every ticket (``(n, K, n_outputs)``) where the tickets are ``-1`` (one-vs-rest
        detectors on held-out rows)."""
        if not isinstance(x, dict):
            return super().infer(x, **fit_params)
        X = to_tensor(x["X"], device=self.device)
        ticket = to_tensor(x["ticket"], device="cpu")  # the network groups rows on the CPU
        return self.module_(X, None if bool((ticket < 0).all()) else ticket)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Sum over tickets of each ticket's (sample-weighted) mean loss."""
        y_true = to_tensor(y_true, device=y_pred.device)
        weight = X.get("weight") if isinstance(X, dict) else None
        if y_pred.ndim == 3:  # every ticket on every row: one loss column per ticket
            ticket = torch.arange(y_pred.shape[1], device=y_pred.device)
            ticket = ticket.repeat(len(y_pred))
            y_true = y_true.repeat_interleave(y_pred.shape[1], 0)
            weight = None if weight is None else weight.repeat_interleave(y_pred.shape[1])
            y_pred = y_pred.reshape(-1, y_pred.shape[-1])
        else:
            ticket = to_tensor(X["ticket"], device=y_pred.device).reshape(-1)
        per_sample = self.task.per_sample_loss(y_pred, y_true, ticket)
        n_tickets = self.module_.n_tickets
        if n_tickets == 1 and weight is None:
            return per_sample.mean()
        mass = torch.ones_like(per_sample)
        if weight is not None:
            mass = to_tensor(weight, device=y_pred.device).to(per_sample.dtype)
            per_sample = per_sample * mass
        totals = per_sample.new_zeros(n_tickets).index_add_(0, ticket, per_sample)
        counts = per_sample.new_zeros(n_tickets).index_add_(0, ticket, mass)
        present = counts > 0
        return (totals[present] / counts[present]).sum()

    def predict(self, X):
        """The task's decision on the raw outputs (class index, or values), e.g. for
        skorch's ``EpochScoring`` on the held-out rows."""
        return self.task.predict_outputs(self.predict_proba(X))

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
        network, run = self.module_, self.run_
        if run is None or run.stage.tied or network.n_copies == 1:
            return named
        run.ticket_views = []
        stacked = {id(p) for p in network.weights.values()}
        split = []
        for name, param in named:
            if id(param) not in stacked:
                split.append((name, param))
                continue
            views = list(param.detach().unbind(0))
            run.ticket_views.append((param, views))
            split.extend((name, view) for view in views)
        return split

    def train_step_single(self, batch, **fit_params):
        """skorch's forward and backward pass; with per-ticket views (untied stages), the
        stacked gradients are cleared first and then handed to the views of the tickets
        present in the batch (``None`` for the others, which the optimizer then skips)."""
        run = self.run_
        for param, _ in run.ticket_views:
            param.grad = None
        step = super().train_step_single(batch, **fit_params)
        present = run.present
        for param, copies in run.ticket_views:
            for k, view in enumerate(copies):
                keep = param.grad is not None and (present is None or bool(present[k]))
                view.grad = param.grad[k] if keep else None
        return step

    def train_step(self, batch, **fit_params):
        n_tickets = self.module_.n_tickets
        present = None  # every ticket in the step (one ticket: always)
        if n_tickets > 1:
            present = torch.unique(to_tensor(batch[0]["ticket"], device="cpu"))
            if len(present) == n_tickets:
                present = None
        run = self.run_
        network = self.module_
        # one ticket: tied and untied are the same update (no copies to tie)
        tied = run.stage.tied and n_tickets > 1
        run.present = None
        if run.ticket_views and present is not None:
            run.present = torch.zeros(n_tickets, dtype=torch.bool)
            run.present[present] = True
            # Absent tickets get no gradient, so the optimizer leaves them untouched.
            present = None
        if network.premasked_ and not tied and present is None:
            # every pruned weight stood at 0 before the step: no snapshot to restore from
            step = self._optimizer_step(batch, **fit_params)
            network.zero_pruned()
            return step
        # An untied update with every ticket present only needs the masked weights' old
        # values; absent tickets' copies are restored whole.
        before = network.snapshot(prunable_only=not tied and present is None)
        step = self._optimizer_step(batch, **fit_params)
        network.masked_update(before, tied=tied, present=present)
        return step

    def __getstate__(self):
        # a stage's state (its views into the weights, its callbacks) ends with the stage:
        # a net pickled while training (skorch's Checkpoint(f_pickle=...)) carries none
        state = super().__getstate__()
        state["run_"] = None
        return state


class RecordStage(Callback):
    """Kept only so that models pickled by sklearn-rtl 0.1 load (their nets list it among
    their callbacks); every epoch's stage is now recorded by
    :meth:`TicketNet.on_epoch_begin`, so it records nothing."""
