"""Which rows every training step sees, and the held-out rows in chunks.

* :class:`TicketBatchLoader`: the training batches of a stage, one mini-batch per ticket
  per step (Alg. 2's balanced batches in tied stages, each ticket's own steps in untied
  ones), drawn from the task's pools;
* :class:`HeldOutBatches`: the held-out rows, in order, in chunks.

``X`` is kept as flat rows, dense or scipy sparse: a batch is densified and reshaped to the
network's input shape on its own, never the whole of ``X``.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch

from ._tasks import MulticlassTask

__all__ = ["HeldOutBatches", "TicketBatchLoader", "dense_rows", "read_only_tensor"]


def dense_rows(X, index, input_shape=None) -> np.ndarray:
    """Rows ``index`` of ``X`` (dense or sparse) as a dense array of
    ``(len(index), *input_shape)`` (float32 unless ``X`` is of another float type)."""
    rows = X[index]
    if sp.issparse(rows):
        rows = rows.toarray()
    rows = np.asarray(rows)
    if rows.dtype.kind != "f":
        rows = rows.astype(np.float32)
    return rows if input_shape is None else rows.reshape(len(rows), *input_shape)


def read_only_tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor over ``array``'s memory, for code that only reads it (our routing, a sum):
    a read-only array (a memory map) too, without torch's warning that it is not writable.
    Never for a module the user wrote, which may write to its input."""
    if array.flags.writeable:
        return torch.from_numpy(array)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The given NumPy array is not writable")
        return torch.from_numpy(array)


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
    for one-vs-rest detectors, half positives (class ``k``, cycled) and half negatives; and
    how many steps make the ticket's own epoch (``task.epoch_steps``): a pass over its
    samples, or for a detector as many samples as the training set holds.

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
    input_shape : tuple of int, default=None
        Per-sample shape the network takes: ``X`` holds flat rows (dense or scipy
        sparse), densified and reshaped one batch at a time. ``None`` keeps rows as they
        are.
    shared_ticket : int, default=None
        A ticket that draws from every row, besides the rows' own tickets (the one shared
        ticket that ``n_clusters="auto"`` compares the clusters' tickets with).
    device : str or torch.device, default=None
        Where the network trains. On an accelerator, dense ``X``, ``y`` and the sample
        weights are copied there once, and every batch is gathered there: only the row
        indices cross per step. ``None`` or the CPU: batches are numpy arrays, as skorch's
        own loaders give.
    """

    def __init__(
        self, dataset, batch_size, task=None, rng=None, cycle=True, input_shape=None,
        shared_ticket=None, device=None,
    ):  # fmt: skip
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.task = task if task is not None else MulticlassTask()
        self.cycle = bool(cycle)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.X = dataset.X["X"]
        if isinstance(self.X, np.ndarray) and not self.X.flags.c_contiguous:
            # a batch gathers rows: from a column-major X (a DataFrame's values) each row
            # is strided, and a step's gather cost 10x a contiguous one
            self.X = np.ascontiguousarray(self.X)
        self.ticket = np.asarray(dataset.X["ticket"])
        self.weight = dataset.X.get("weight")
        self.y = np.asarray(dataset.y)
        self.input_shape = input_shape
        self.shared_ticket = shared_ticket
        self.device = None
        if device is not None and torch.device(device).type != "cpu" and not sp.issparse(self.X):
            self.device = torch.device(device)
            rows = dense_rows(self.X, slice(None), input_shape)
            self.X = torch.as_tensor(rows, device=self.device)
            self.y = torch.as_tensor(self.y, device=self.device)
            if self.weight is not None:
                self.weight = torch.as_tensor(np.asarray(self.weight), device=self.device)

    def _plan(self):
        """Per ticket: ``(ticket, index array of shape (n_steps_k, samples per step))``."""
        tickets = np.unique(self.ticket)
        pools = [self.task.pools(k, self.ticket, self.y, self.batch_size) for k in tickets]
        if self.shared_ticket is not None:
            k = self.shared_ticket
            every = np.full(len(self.ticket), k)
            tickets = np.append(tickets, k)
            pools.append(self.task.pools(k, every, self.y, self.batch_size))
        own_steps = [self.task.epoch_steps(parts, len(self.y), self.batch_size) for parts in pools]
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
            if self.device is None:
                rows = dense_rows(self.X, index, self.input_shape)
            else:  # gathered on the device; the tickets stay on the CPU (no sync per step)
                index = torch.as_tensor(index).to(self.device, non_blocking=True)
                rows = self.X[index]
            batch = {"X": rows, "ticket": torch.as_tensor(ticket)}
            if self.weight is not None:
                batch["weight"] = torch.as_tensor(self.weight[index])
            yield batch, self.y[index]

    def __len__(self):
        return max(len(steps) for _, steps in self._plan())


class HeldOutBatches:
    """The rows of a held-out skorch ``Dataset`` in order, ``batch_size`` at a time.

    Parameters
    ----------
    dataset : skorch.dataset.Dataset
        ``X`` is a dict with ``"X"`` (flat rows, dense or sparse) and ``"ticket"``.
    batch_size : int
    input_shape : tuple of int, default=None
    """

    def __init__(self, dataset, batch_size, input_shape=None):
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.input_shape = input_shape

    def __iter__(self):
        X, y = self.dataset.X, np.asarray(self.dataset.y)
        for start in range(0, len(y), self.batch_size):
            index = np.arange(start, min(start + self.batch_size, len(y)))
            batch = {"X": dense_rows(X["X"], index, self.input_shape)}
            batch["ticket"] = torch.as_tensor(np.asarray(X["ticket"])[index])
            if X.get("weight") is not None:
                batch["weight"] = torch.as_tensor(X["weight"][index])
            yield batch, y[index]

    def __len__(self):
        return -(-len(self.dataset.y) // self.batch_size)
