"""The torch side: the default MLP and the ticket network that routes samples to masks.

:class:`TicketNetwork` turns any ``torch.nn.Module`` into ``n_tickets`` subnetworks that share
its architecture. The wrapped module becomes a stateless template: its parameters move into
``weights`` with a leading *copy* axis, and every prunable parameter gets a boolean mask
buffer of shape ``(n_tickets, *weight.shape)``. With one weight copy the tickets share one
dense tensor ``theta`` (RTL); with ``n_tickets`` copies every ticket owns its weights
(ticket extraction and the independent-models baseline).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

__all__ = ["MLP", "TicketNetwork", "find_prunable"]

_PRUNABLE_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class MLP(nn.Module):
    """Fully connected ReLU network: the default module for tabular data.

    Parameters
    ----------
    n_features : int
        Input dimension.
    hidden_layer_sizes : tuple of int
        Width of every hidden layer.
    n_outputs : int
        Output dimension (logits).
    """

    def __init__(self, n_features: int, hidden_layer_sizes=(256, 256), n_outputs: int = 2):
        super().__init__()
        sizes = [n_features, *hidden_layer_sizes]
        layers: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], n_outputs))
        self.layers = nn.Sequential(*layers)

    def forward(self, X):
        return self.layers(X)


def find_prunable(module: nn.Module, prune_output_layer: bool = False) -> list[str]:
    """Names of the weights that tickets prune: Linear and Conv weights, biases excluded.

    Parameters
    ----------
    module : torch.nn.Module
    prune_output_layer : bool, default=False
        The last Linear/Conv layer (the classifier) stays dense unless this is True, as in
        the paper.

    Returns
    -------
    names : list of str
        Parameter names in registration order.
    """
    names = [
        f"{prefix}.weight" if prefix else "weight"
        for prefix, sub in module.named_modules()
        if isinstance(sub, _PRUNABLE_TYPES) and getattr(sub, "weight", None) is not None
    ]
    if not prune_output_layer and len(names) > 1:
        names = names[:-1]
    return names


def _key(name: str) -> str:
    return name.replace(".", "__")


class TicketNetwork(nn.Module):
    """``n_tickets`` masked subnetworks of one template module.

    Parameters
    ----------
    template : torch.nn.Module
        The architecture. Its parameters become the initial weights ``theta0``; the
        template itself keeps only buffers (e.g. batch-norm statistics, shared).
    n_tickets : int
        Number of tickets ``K``.
    prunable : list of str
        Names of the template's parameters that carry masks.
    """

    def __init__(self, template: nn.Module, n_tickets: int, prunable: list[str]):
        super().__init__()
        self.n_tickets = int(n_tickets)
        self.param_names = [name for name, _ in template.named_parameters()]
        self.prunable = list(prunable)
        self.weights = nn.ParameterDict()
        self.masks = nn.Module()
        for name in self.param_names:
            prefix, _, attr = name.rpartition(".")
            owner = template.get_submodule(prefix)
            value = getattr(owner, attr).detach()
            delattr(owner, attr)
            setattr(owner, attr, None)
            self.weights[_key(name)] = nn.Parameter(value.unsqueeze(0).clone())
        for name in self.prunable:
            shape = self.weights[_key(name)].shape[1:]
            self.masks.register_buffer(
                _key(name), torch.ones((self.n_tickets, *shape), dtype=torch.bool)
            )
        self.template = template

    # ------------------------------------------------------------------ state
    @property
    def n_copies(self) -> int:
        """Number of weight copies: 1 (shared ``theta``) or ``n_tickets`` (one per ticket)."""
        return next(iter(self.weights.values())).shape[0]

    def get_masks(self) -> dict[str, torch.Tensor]:
        """Masks as ``{name: bool tensor of shape (n_tickets, *shape)}`` (views)."""
        return {name: getattr(self.masks, _key(name)) for name in self.prunable}

    @torch.no_grad()
    def set_masks(self, masks: dict[str, torch.Tensor]) -> None:
        for name in self.prunable:
            getattr(self.masks, _key(name)).copy_(masks[name])

    def get_weights(self) -> dict[str, torch.Tensor]:
        """Weights as ``{name: tensor of shape (n_copies, *shape)}`` (detached views)."""
        return {name: self.weights[_key(name)].detach() for name in self.param_names}

    @torch.no_grad()
    def set_weights(self, weights: dict[str, torch.Tensor], n_copies: int) -> None:
        """Load one set of weights (shape ``(1, *shape)`` or ``(*shape)``) into ``n_copies``.

        Used to rewind every ticket to the same point, e.g. ``theta0``. Replaces the
        parameters, so build the optimizer afterwards.
        """
        for name in self.param_names:
            value = weights[name]
            value = value.reshape(self.weights[_key(name)].shape[1:])
            stacked = value.unsqueeze(0).expand(n_copies, *value.shape).clone()
            self.weights[_key(name)] = nn.Parameter(stacked.to(self.weights[_key(name)].device))

    def ticket_parameters(self, ticket: int) -> dict[str, torch.Tensor]:
        """The parameters of ticket ``ticket``: its weight copy, masked where prunable."""
        copy = ticket if self.n_copies > 1 else 0
        params = {}
        for name in self.param_names:
            weight = self.weights[_key(name)][copy]
            if name in self.prunable:
                weight = weight * getattr(self.masks, _key(name))[ticket]
            params[name] = weight
        return params

    # ---------------------------------------------------------------- forward
    def forward_ticket(self, X: torch.Tensor, ticket: int) -> torch.Tensor:
        """Run ``X`` through ticket ``ticket``'s subnetwork."""
        return functional_call(self.template, self.ticket_parameters(ticket), (X,))

    def forward(self, X: torch.Tensor, ticket: torch.Tensor | None = None) -> torch.Tensor:
        """Routed forward pass.

        Parameters
        ----------
        X : Tensor of shape (n_samples, ...)
        ticket : LongTensor of shape (n_samples,), default=None
            Every sample's ticket. The batch is grouped by ticket and each group runs once
            through its masked weights. ``None`` runs every sample through every ticket.

        Returns
        -------
        out : Tensor of shape (n_samples, n_outputs), or (n_samples, n_tickets, n_outputs)
            when ``ticket`` is None.
        """
        if ticket is None:
            return torch.stack([self.forward_ticket(X, k) for k in range(self.n_tickets)], 1)
        ticket = ticket.reshape(-1)
        present = torch.unique(ticket).tolist()
        if len(present) == 1:
            return self.forward_ticket(X, present[0])
        out = None
        for k in present:
            index = torch.nonzero(ticket == k).flatten()
            group_out = self.forward_ticket(X[index], k)
            if out is None:
                out = group_out.new_empty((len(X), *group_out.shape[1:]))
            out[index] = group_out
        return out

    # --------------------------------------------------------------- updates
    def snapshot(self) -> dict[str, torch.Tensor]:
        """Copy of the weights before an optimizer step, for :meth:`masked_update`."""
        return {key: p.detach().clone() for key, p in self.weights.items()}

    @torch.no_grad()
    def masked_update(self, before: dict[str, torch.Tensor], tied: bool) -> None:
        """Undo every change the optimizer made outside the masks, and tie shared weights.

        Ticket ``k``'s update is kept only on ``m_k``; a weight no ticket keeps does not
        move (bitwise), whatever the optimizer's moments say. With ``tied=True`` every copy
        held the shared ``theta`` before the step and the tickets' masked updates are summed
        into it (one update per ticket, as Alg. 2's round-robin), then copied back to all
        copies.
        """
        for name in self.param_names:
            key = _key(name)
            param, old = self.weights[key], before[key]
            mask = getattr(self.masks, key) if name in self.prunable else None
            if not tied:
                if mask is not None:
                    param.copy_(torch.where(mask, param, old))
                continue
            delta = param - old
            if mask is not None:
                delta = torch.where(mask, delta, 0.0)
                theta = torch.where(mask.any(0), old[0] + delta.sum(0), old[0])
            else:
                theta = old[0] + delta.sum(0)
            param.copy_(theta.unsqueeze(0).expand_as(param))

    @torch.no_grad()
    def share(self) -> None:
        """Keep a single weight copy (after tied training every copy is identical)."""
        self.set_weights({name: w[0] for name, w in self.get_weights().items()}, n_copies=1)
