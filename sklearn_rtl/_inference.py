"""The routed model: router + ticket network, run in chunks without gradients.

A :class:`RoutedModel` is what prediction needs and nothing else. The estimator builds one
from its fitted attributes for ``predict``, and the fit builds one from the pieces it is
training, so that held-out scoring during ticket extraction never calls ``predict`` on a
half-fitted estimator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._batches import dense_rows

__all__ = ["RoutedModel"]

_INFER_BATCH = 8192


@dataclass
class RoutedModel:
    """Routes flat rows to tickets and runs them through their masked subnetworks.

    Parameters
    ----------
    router : router
        Fitted; ``predict(X, groups) -> ticket ids``.
    network : TicketNetwork
    input_shape : tuple of int
        Per-sample shape the network takes (flat rows are reshaped to it).
    device : str or torch.device
    task : task object
        Its ``decision`` turns network outputs into prediction scores.
    cached : bool, default=False
        Read the network's cached masked weights and sparse kernels (a fitted model's
        prediction). The fit's held-out scoring leaves it off: its weights change every
        step, some of them outside the version counters (e.g. a stopping rule's restore).
    compact : bool, default=False
        Run every ticket as its compact network (``prune_granularity="neuron"``).
    """

    router: object
    network: torch.nn.Module
    input_shape: tuple
    device: object
    task: object
    cached: bool = False
    compact: bool = False

    def route(self, X, groups=None) -> np.ndarray:
        """Ticket id of every row of ``X`` as the task routes it (the router's ticket, or
        under label routing the detectors' decision)."""
        return self.task.route(self, X, groups)

    def router_tickets(self, X, groups=None) -> np.ndarray:
        """The router's ticket id of every row of ``X``, routed in chunks of rows as the
        network runs.

        A router may copy what it is given (KMeans standardizes its input), so routing
        chunk by chunk keeps the peak memory of prediction flat in ``n_samples``.
        ``groups`` of another length than ``X`` go whole to the router, which names the
        problem (or ignores them).
        """
        n = X.shape[0]
        if groups is not None:
            groups = np.asarray(groups)
            if groups.ndim != 1 or len(groups) != n:
                return np.asarray(self.router.predict(X, groups), dtype=np.int64)
        if n <= _INFER_BATCH:
            return np.asarray(self.router.predict(X, groups), dtype=np.int64)
        tickets = np.empty(n, dtype=np.int64)
        for start in range(0, n, _INFER_BATCH):
            rows = slice(start, start + _INFER_BATCH)
            part = None if groups is None else groups[rows]
            tickets[rows] = np.asarray(self.router.predict(X[rows], part)).reshape(-1)
        return tickets

    def decision(self, X, groups=None) -> np.ndarray:
        """The task's prediction scores (see ``_tasks.py``)."""
        return self.task.decision(self, X, groups)

    def outputs(self, X, tickets=None) -> np.ndarray:
        """Network outputs for validated flat ``X``, in chunks, without gradients.

        Returns a float64 ndarray of shape (n_samples, n_outputs), or
        (n_samples, n_tickets, n_outputs) when ``tickets`` is None (every ticket).
        Up to ``_INFER_BATCH`` rows run as one chunk, straight into the result.
        """
        if self.network.training:  # a fitted network is already in eval mode
            self.network.eval()
        n = X.shape[0]
        with torch.inference_mode():
            if n <= _INFER_BATCH:
                out = self._chunk(X, slice(0, n), tickets).numpy()
            else:
                # One array filled chunk by chunk: a list of kept chunks (then concatenated)
                # pinned the heap between the passes' temporaries and raised RSS with n.
                out = None
                for start in range(0, n, _INFER_BATCH):
                    rows = slice(start, start + _INFER_BATCH)
                    chunk = self._chunk(X, rows, tickets)
                    if out is None:
                        out = np.empty((n, *chunk.shape[1:]), dtype=np.float64)
                    out[rows] = chunk.numpy()
        if not np.isfinite(out).all():
            raise ValueError(
                "The network's outputs for X are not finite (NaN or inf): X probably holds "
                "values far larger than the training data. Scale it as in fit."
            )
        return out

    def _chunk(self, X, rows, tickets):
        """The float64 CPU outputs of ``X[rows]`` (densified: sparse rows, read-only
        memory, a dense float32 copy of the chunk, never of ``X``)."""
        block = dense_rows(X, rows, self.input_shape)
        if not block.flags.writeable:  # a module (the user's) may write to its input
            block = block.copy()
        xb = torch.from_numpy(block).to(self.device)
        tb = None if tickets is None else torch.as_tensor(tickets[rows])  # grouped on the CPU
        return self.network(xb, tb, cached=self.cached, compact=self.compact).double().cpu()
