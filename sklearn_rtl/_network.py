"""The ticket network: K masked subnetworks of one template module, and the routed forward.

:class:`TicketNetwork` turns any ``torch.nn.Module`` into ``n_tickets`` subnetworks that share
its architecture. The wrapped module becomes a stateless template: its parameters move into
``weights`` with a leading *copy* axis, and every prunable parameter gets a boolean mask
buffer of shape ``(n_tickets, *weight.shape)``. With one weight copy the tickets share one
dense tensor ``theta`` (RTL); with ``n_tickets`` copies every ticket owns its weights
(ticket extraction and the independent-models baseline).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.nn.modules.batchnorm import _BatchNorm

from ._compact import network_getstate, network_setstate
from ._models import MLP
from ._tickets import TicketSet
from ._units import compact_ticket

__all__ = ["TicketBatchNormNetwork", "TicketNetwork", "make_ticket_network"]

# When a ticket's masked Linear weight runs as a torch CSR matrix at predict time (see
# TicketNetwork.inference_kernels and docs/benchmarks.md, "Sparse kernels at predict time"):
# measured on one CPU thread, 784->256 and 256->256 layers: CSR won from 4-8 rows a pass
# at density <= 0.1 (0.4-0.8x the dense time) and lost at density 0.2 and on single rows.
_CSR_MAX_DENSITY = 0.11  # kept fraction of the layer's weights, per ticket (10 % and rounding)
_CSR_MIN_WEIGHTS = 256 * 256  # out * in of the layer
_CSR_MIN_ROWS = 8  # rows of one ticket in one forward
_CSR_ROWS = 256  # rows per sparse product: the transposed block stays in cache
# Compact (neuron-level) MLP tickets run with the rows as columns, h^T = W h^T + b, from
# this many rows a pass: MKL's product with few outputs (a ticket's 20-40 kept units) took
# 0.75-0.9x the time of ``F.linear``'s layout from 64 rows on, and lost on single rows.
_COLUMNS_MIN_ROWS = 16


def _key(name: str) -> str:
    return name.replace(".", "__")


def _has_hooks(module: nn.Module) -> bool:
    return any(
        getattr(module, attr, None)
        for attr in (
            "_forward_hooks",
            "_forward_pre_hooks",
            "_backward_hooks",
            "_forward_hooks_with_kwargs",
            "_forward_pre_hooks_with_kwargs",
        )
    )


def _linear_relu_plan(template: nn.Module, param_names: list[str]):
    """The layers of a plain ``Linear``/``ReLU`` stack, or ``None`` for any other module.

    Recognized: :class:`MLP` and (nested) ``nn.Sequential`` containers whose leaves are
    ``nn.Linear``, ``nn.ReLU`` or ``nn.Identity``, without hooks, every parameter a Linear
    weight or bias. Returns a list of ``("linear", weight_name, bias_name_or_None)`` and
    ``("relu",)`` steps that computes exactly what the module's ``forward`` does.
    """
    plan: list[tuple] = []
    seen: list[str] = []

    def walk(module, prefix):
        if _has_hooks(module):
            return False
        if type(module) is MLP:
            return walk(module.layers, f"{prefix}layers.")
        if type(module) is nn.Sequential:
            return all(walk(child, f"{prefix}{name}.") for name, child in module.named_children())
        if type(module) is nn.Linear:
            weight = f"{prefix}weight"
            bias = f"{prefix}bias" if f"{prefix}bias" in param_names else None
            plan.append(("linear", weight, bias))
            seen.extend([weight] + ([bias] if bias else []))
            return True
        if type(module) is nn.ReLU:
            plan.append(("relu",))
            return True
        return type(module) is nn.Identity

    if not walk(template, "") or sorted(seen) != sorted(param_names):
        return None
    if not any(step[0] == "linear" for step in plan):
        return None
    return plan


class _Cache:
    """A value computed from tensors, kept until one of them changes.

    ``key`` holds every tensor with its storage and version counter (any in-place write,
    ``set_masks``, an optimizer step or ``set_weights`` moves one of them). Pickles and
    copies as an empty cache.
    """

    def __init__(self):
        self.key = None
        self.value = None

    def __reduce__(self):
        return (_Cache, ())

    def get(self, tensors, compute):
        """The value for ``tensors``, from ``compute()`` if any of them changed."""
        key = tuple((t, t.data_ptr(), t._version) for t in tensors)
        same = self.key is not None and len(self.key) == len(key)
        pairs = zip(self.key or (), key, strict=same)
        if not (same and all(a[0] is b[0] and a[1:] == b[1:] for a, b in pairs)):
            self.value, self.key = compute(), key
        return self.value


def _runs_sparse(masked_weight: torch.Tensor, mask: torch.Tensor) -> bool:
    """The measured rule: a large 2-D CPU layer that keeps at most 11 % of its weights."""
    return (
        masked_weight.ndim == 2
        and masked_weight.device.type == "cpu"
        and mask.numel() >= _CSR_MIN_WEIGHTS
        and int(mask.count_nonzero()) <= _CSR_MAX_DENSITY * mask.numel()
    )


def _tree_buffers(module: nn.Module) -> list[torch.Tensor]:
    """``module.buffers()`` read straight from the module tree: a walk without
    ``named_modules``' generators and name prefixes (3 µs against 7 on the MLP)."""
    found = [b for b in module._buffers.values() if b is not None]
    for child in module._modules.values():
        if child is not None:
            found += _tree_buffers(child)
    return found


def _ticket_view(params: dict, ticket: int) -> dict:
    """Ticket ``ticket``'s weights from stacked ``params`` (leading ticket or copy axis): a
    view of one copy (its backward reshapes the gradient; an index fills zeros first)."""
    return {n: p[ticket] if p.shape[0] > 1 else p.view(p.shape[1:]) for n, p in params.items()}


def _compact_pass(module: nn.Module, X: torch.Tensor) -> torch.Tensor:
    """A compact ticket's outputs for ``X``. A Linear/ReLU chain runs its layers directly,
    from ``_COLUMNS_MIN_ROWS`` rows with the rows as columns (the same products, another
    layout); any other module is called."""
    layers = list(module) if isinstance(module, nn.Sequential) else ()
    if not layers or X.ndim != 2 or not all(type(m) in (nn.Linear, nn.ReLU) for m in layers):
        return module(X)
    if len(X) < _COLUMNS_MIN_ROWS:  # the layers without the modules' call overhead
        h = X
        for layer in layers:
            h = torch.relu(h) if type(layer) is nn.ReLU else F.linear(h, layer.weight, layer.bias)
        return h
    h = X.T
    for layer in layers:
        if type(layer) is nn.ReLU:
            h = torch.relu(h)
        elif layer.bias is None:
            h = layer.weight @ h
        else:
            h = torch.addmm(layer.bias[:, None], layer.weight, h)
    return h.T


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

    Notes
    -----
    Plain ``Linear``/``ReLU`` stacks (the default :class:`MLP`, ``nn.Sequential``) take a
    fast path: the masked weights of all tickets are formed once per forward as one
    ``(n_tickets, out, in)`` tensor per layer, and the tickets run together as batched
    matrix products (``bmm``) instead of one ``functional_call`` per ticket. Every other
    module takes the generic ``functional_call`` path. Set ``fast_path = False`` to force
    the generic path. Pickling stores what ``save`` stores (``_compact.encode_network``):
    the kept weights and every ticket's mask over their union, 1 bit per position.

    Prediction (``forward(..., cached=True)`` without gradients) reads the masked weights
    from a cache, recomputed only when a weight or mask tensor changed, and runs a
    ticket's layer as a torch CSR matrix product where that was measured to pay on one
    CPU thread: a Linear layer of at least 256 x 256 weights of which the ticket keeps
    at most 11 %, for at least 8 of its rows at once (:meth:`inference_kernels`). CSR sums
    in another order than the dense product: such outputs agree with the dense ones to
    about 1e-6, not bit for bit.

    Examples
    --------
    >>> import torch
    >>> from sklearn_rtl import find_prunable
    >>> template = MLP(4, (8,), 3)
    >>> net = TicketNetwork(template, n_tickets=2, prunable=find_prunable(template))
    >>> {name: tuple(m.shape) for name, m in net.get_masks().items()}
    {'layers.0.weight': (2, 8, 4)}
    >>> net(torch.zeros(5, 4), torch.tensor([0, 1, 1, 0, 1])).shape
    torch.Size([5, 3])
    """

    def __init__(self, template: nn.Module, n_tickets: int, prunable: list[str]):
        super().__init__()
        self.n_tickets = int(n_tickets)
        self.param_names = [name for name, _ in template.named_parameters()]
        self.prunable = list(prunable)
        self.plan_ = _linear_relu_plan(template, self.param_names)
        self.fast_path = True
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

    @property
    def tickets(self) -> TicketSet:
        """The current masks as a :class:`~sklearn_rtl._tickets.TicketSet` (a copy)."""
        return TicketSet({name: m.detach().clone() for name, m in self.get_masks().items()})

    @torch.no_grad()
    def set_masks(self, masks: TicketSet | dict[str, torch.Tensor]) -> None:
        """Load the masks of a :class:`~sklearn_rtl._tickets.TicketSet` (or a dict)."""
        masks = masks.masks if isinstance(masks, TicketSet) else masks
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

    #: whether every copy's pruned weights are zero in place (during a training stage
    #: where each copy has its own mask: :meth:`premask`); False on networks pickled before
    premasked_ = False

    @torch.no_grad()
    def premask(self) -> None:
        """Zero every copy's pruned weights in place, so that the training forward needs
        no mask product (nor its backward). Only where every copy has its own mask: an
        untied stage (Alg. 1, the independent baseline) or a single ticket; a shared
        ``theta`` under several masks keeps its values. :meth:`masked_update` keeps the
        zeros (a pruned weight never moves) and :meth:`unmask` puts the values back."""
        if self.n_copies != self.n_tickets:
            return
        for name in self.prunable:
            key = _key(name)
            self.weights[key].masked_fill_(~getattr(self.masks, key), 0.0)
        self.premasked_ = True

    @torch.no_grad()
    def zero_pruned(self) -> None:
        """After an optimizer step of a premasked stage: every pruned weight back to 0,
        where it stood before the step (:meth:`masked_update` without a snapshot)."""
        for name in self.prunable:
            key = _key(name)
            self.weights[key].mul_(self._mask_weights(key, getattr(self.masks, key))[1])

    @torch.no_grad()
    def unmask(self, start: dict[str, torch.Tensor]) -> None:
        """Undo :meth:`premask`: every pruned weight back to its value in ``start`` (the
        stage's start point, where it stood all stage long)."""
        if not self.premasked_:
            return
        for name in self.prunable:
            key = _key(name)
            weight, mask = self.weights[key], getattr(self.masks, key)
            value = start[name].reshape(weight.shape[1:]).to(weight.device)
            weight.copy_(torch.where(mask, weight, value.expand_as(weight)))
        self.premasked_ = False

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

    def stacked_parameters(self) -> dict[str, torch.Tensor]:
        """Every ticket's parameters at once, masked where prunable.

        Returns ``{name: tensor of shape (n_tickets, *shape)}`` for prunable weights and
        ``(n_copies, *shape)`` for the others (a leading 1 broadcasts over tickets). One
        elementwise product per layer: the masked weights of all tickets, computed once.
        """
        params = {}
        for name in self.param_names:
            weight = self.weights[_key(name)]
            if name in self.prunable and not self.premasked_:
                weight = weight * getattr(self.masks, _key(name))
            params[name] = weight
        return params

    def inference_parameters(self) -> dict[str, torch.Tensor]:
        """:meth:`stacked_parameters` without gradients, cached until a weight or mask
        changes (a new tensor, an in-place write, another storage)."""
        return self._inference_weights()[0]

    def inference_kernels(self) -> dict[str, list[str]]:
        """Every masked Linear weight's kernel at predict time, per ticket: ``"csr"`` or
        ``"dense"`` (the rule of the class notes; layers of other modules are dense)."""
        csr = self._inference_weights()[2]
        names = [step[1] for step in self.plan_ or [] if step[0] == "linear"]
        return {
            name: ["csr" if name in csr[k] else "dense" for k in range(self.n_tickets)]
            for name in names
            if name in self.prunable
        }

    def _inference_weights(self):
        """``(masked weights, per ticket its own weights (views without the ticket axis),
        per ticket {weight name: CSR matrix} of the layers that run sparse)``, cached until
        a weight or mask changes (the views cost a one-row prediction 15 µs a call)."""

        def compute():
            with torch.inference_mode(False), torch.no_grad():
                params = self.stacked_parameters()
                tickets = range(self.n_tickets)
                owns = [_ticket_view(params, k) for k in tickets]
                return params, owns, [self._sparse_layers(params, k) for k in tickets]

        cache = vars(self).get("_inference")
        if cache is None:
            cache = self._inference = _Cache()
        # the containers' own dicts: a tensor replaced (set_weights, load) is a new entry
        tensors = [*self.weights._parameters.values(), *self.masks._buffers.values()]
        return cache.get(tensors, compute)

    def _sparse_layers(self, params, ticket: int) -> dict[str, torch.Tensor]:
        """Ticket ``ticket``'s CSR weights of the plan's layers that run sparse."""
        if getattr(self, "plan_", None) is None:
            return {}
        masks = self.get_masks()
        layers = {}
        for step in self.plan_:
            name = step[1] if step[0] == "linear" else None
            if name in masks and _runs_sparse(params[name][ticket], masks[name][ticket]):
                with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta"
                    warnings.simplefilter("ignore", UserWarning)
                    layers[name] = params[name][ticket].to_sparse_csr()
        return layers

    # ---------------------------------------------------------------- pickle
    def __getstate__(self):
        # Only what prediction needs: the union's weight values and positions, every
        # ticket's mask over the union (1 bit per union position), the dense parts.
        return network_getstate(self)

    def __setstate__(self, state):
        network_setstate(self, state)  # also reads 0.1.0's bit-packed full masks

    # ---------------------------------------------------------------- forward
    def forward_ticket(self, X: torch.Tensor, ticket: int) -> torch.Tensor:
        """Run ``X`` through ticket ``ticket``'s subnetwork."""
        if self._use_fast(X):
            return self._plan_2d(X, self.ticket_parameters(ticket))
        return functional_call(self.template, self.ticket_parameters(ticket), (X,))

    def _use_fast(self, X) -> bool:
        return self.fast_path and getattr(self, "plan_", None) is not None and X.ndim == 2

    def _plan_2d(self, X, params, sparse=None):
        """One ticket's pass through the Linear/ReLU plan (``params`` without ticket axis);
        the layers in ``sparse`` (``{weight name: CSR matrix}``) as sparse products."""
        h = X
        for step in self.plan_:
            if step[0] == "relu":
                h = torch.relu(h)
            elif sparse and step[1] in sparse:
                hT = h.T.contiguous()
                if step[2]:
                    h = torch.sparse.addmm(params[step[2]][:, None], sparse[step[1]], hT).T
                else:
                    h = torch.sparse.mm(sparse[step[1]], hT).T
            else:
                h = F.linear(h, params[step[1]], params[step[2]] if step[2] else None)
        return h

    def _ticket_pass(self, X, own, layers=None):
        """One ticket's pass over its rows ``X``: ``own`` its weights (:func:`_ticket_view`),
        ``layers`` its CSR weights. Layers that run sparse do so in blocks of rows."""
        if not layers or len(X) < _CSR_MIN_ROWS:
            return self._plan_2d(X, own)
        blocks = [X[i : i + _CSR_ROWS] for i in range(0, len(X), _CSR_ROWS)]
        return torch.cat([self._plan_2d(block, own, layers) for block in blocks])

    def _plan_batched(self, X, params, shared_input):
        """All selected tickets at once: ``X`` is ``(n, in)`` when ``shared_input`` (every
        ticket sees every sample) else ``(T, n, in)``; ``params`` have a leading ticket axis
        of ``T`` (or 1, broadcast). Returns ``(T, n, out)``."""
        h = X
        n_sel = max(p.shape[0] for p in params.values())
        for step in self.plan_:
            if step[0] == "relu":
                h = torch.relu(h)
                continue
            weight = params[step[1]]
            bias = params[step[2]] if step[2] else None
            if shared_input:
                # First layer, one input for all tickets: a single (n, in) x (in, T*out).
                t, n_out = weight.shape[0], weight.shape[1]
                flat_bias = bias.expand(t, n_out).reshape(-1) if bias is not None else None
                h = F.linear(h, weight.reshape(t * n_out, -1), flat_bias)
                h = h.view(len(X), t, n_out).transpose(0, 1)
                if t < n_sel:
                    h = h.expand(n_sel, *h.shape[1:])
                shared_input = False
                continue
            weight = weight.expand(n_sel, *weight.shape[1:])
            if bias is None:
                h = torch.bmm(h, weight.transpose(1, 2))
            else:
                bias = bias.expand(n_sel, bias.shape[-1]).unsqueeze(1)
                h = torch.baddbmm(bias, h, weight.transpose(1, 2))
        return h

    def forward(
        self,
        X: torch.Tensor,
        ticket: torch.Tensor | None = None,
        *,
        cached: bool = False,
        compact: bool = False,
    ) -> torch.Tensor:
        """Routed forward pass.

        Parameters
        ----------
        X : Tensor of shape (n_samples, ...)
        ticket : LongTensor of shape (n_samples,), default=None
            Every sample's ticket. The batch is grouped by ticket and each group runs once
            through its masked weights. ``None`` runs every sample through every ticket.
        cached : bool, default=False
            Prediction: read the cached masked weights (:meth:`inference_parameters`) and
            run the layers that pay as CSR products (:meth:`inference_kernels`). Taken
            only where gradients are off and the module is a Linear/ReLU stack.
        compact : bool, default=False
            Prediction of neuron-level tickets: every ticket's rows run through its
            compact network (:meth:`compact_tickets`), which costs what its kept units
            cost. Taken only where gradients are off and the network has a unit chain.

        Returns
        -------
        out : Tensor of shape (n_samples, n_outputs), or (n_samples, n_tickets, n_outputs)
            when ``ticket`` is None.
        """
        if compact and not torch.is_grad_enabled() and (tickets := self.compact_tickets()):
            return self._forward_compact(X, ticket, tickets)
        if not self._use_fast(X):
            return self._forward_generic(X, ticket)
        owns, sparse = None, None
        if cached and not torch.is_grad_enabled():
            params, owns, sparse = self._inference_weights()
            sparse = sparse if any(sparse) else None
        else:
            params = self.stacked_parameters()

        def one(rows, k):
            own = owns[k] if owns is not None else _ticket_view(params, k)
            return self._ticket_pass(rows, own, sparse[k] if sparse is not None else None)

        if ticket is None:
            if sparse is not None:
                return torch.stack([one(X, k) for k in range(self.n_tickets)], 1)
            return self._plan_batched(X, params, shared_input=True).transpose(0, 1).contiguous()
        if self.n_tickets == 1:  # every row through the one ticket: no grouping
            return one(X, 0)
        # the tickets stay where they are (the CPU in training): grouping them needs no
        # device sync
        ticket = ticket.reshape(-1).to(dtype=torch.long)
        present, sizes = self._present(ticket)
        if len(present) == 1:
            return one(X, present[0])
        order, Xs = self._sorted(X, ticket)
        if min(sizes) == max(sizes) and sparse is None:
            # Balanced groups (every training step): one bmm per layer for all tickets.
            if len(present) < self.n_tickets:
                index = torch.as_tensor(present, device=X.device)
                params = {
                    n: p.index_select(0, index) if p.shape[0] > 1 else p for n, p in params.items()
                }
            grouped = Xs.reshape(len(present), sizes[0], *X.shape[1:])
            out = self._plan_batched(grouped, params, shared_input=False)
            out = out.reshape(len(X), *out.shape[2:])
        else:
            # Unequal groups (routed prediction): one pass per ticket, masked weights shared.
            parts = [
                one(chunk, k) for k, chunk in zip(present, torch.split(Xs, sizes), strict=True)
            ]
            out = torch.cat(parts)
        return out if order is None else out.new_empty(out.shape).index_copy(0, order, out)

    def _present(self, ticket):
        """The tickets with rows, ascending, and their numbers of rows."""
        if len(ticket) == 1 and 0 <= (k := int(ticket[0])) < self.n_tickets:
            return [k], [1]  # one row: no count
        counts = torch.bincount(ticket, minlength=self.n_tickets).tolist()
        present = [k for k, n in enumerate(counts) if n]
        return present, [counts[k] for k in present]

    @staticmethod
    def _sorted(X, ticket):
        """``(order, X sorted by ticket)``; order (on ``X``'s device) None where the rows
        already are."""
        if bool((ticket[1:] >= ticket[:-1]).all()):
            return None, X
        order = torch.argsort(ticket, stable=True).to(X.device)
        return order, X.index_select(0, order)

    def compact_tickets(self) -> list[nn.Module] | None:
        """Every ticket as the dense network of only the units it keeps (neuron-level
        tickets), cached until a parameter or buffer changes; None where the network has
        no unit chain (:func:`~sklearn_rtl._units.unit_chain`)."""

        def compute():
            with torch.inference_mode(False):
                modules = [compact_ticket(self, k) for k in range(self.n_tickets)]
            return None if modules[0] is None else modules

        cache = vars(self).get("_compact")
        if cache is None:
            cache = self._compact = _Cache()
        return cache.get(self._state_tensors(), compute)

    def _state_tensors(self) -> list[torch.Tensor]:
        """Every tensor a ticket is built from: weights, masks, the template's buffers
        (read from the containers: ``parameters()`` and ``buffers()`` took 17 µs, most of
        a one-row prediction's cache lookup)."""
        return [
            *self.weights._parameters.values(),
            *self.masks._buffers.values(),
            *_tree_buffers(self.template),
        ]

    def _forward_compact(self, X, ticket, modules):
        """Every row through the compact network ``modules[k]`` of its ticket ``k``."""
        return self._per_ticket(X, ticket, lambda rows, k: _compact_pass(modules[k], rows))

    def _forward_generic(self, X, ticket):
        """``functional_call`` per ticket: any module."""
        return self._per_ticket(X, ticket, self.forward_ticket)

    def _per_ticket(self, X, ticket, run):
        """Every row through ``run(rows, k)`` of its ticket ``k`` (every ticket on every row
        where ``ticket`` is None). A ticket's rows are gathered just before its pass, so
        that its first layer reads them from cache (6 % faster than one sort of all rows
        on 4 compact tickets of 4,096 rows of 784 features), and scattered into the
        output."""
        if ticket is None:
            return torch.stack([run(X, k) for k in range(self.n_tickets)], 1)
        ticket = ticket.reshape(-1).to(dtype=torch.long)
        present, _ = self._present(ticket)
        if len(present) == 1:
            return run(X, present[0])
        out = None
        for k in present:
            index = torch.nonzero(ticket == k).flatten().to(X.device)
            part = run(X.index_select(0, index), k)
            if out is None:
                out = part.new_empty((len(X), *part.shape[1:]))
            out.index_copy_(0, index, part)
        return out

    # --------------------------------------------------------------- updates
    def snapshot(self, prunable_only: bool = False) -> dict[str, torch.Tensor]:
        """Copy of the weights before an optimizer step, for :meth:`masked_update`.

        ``prunable_only=True`` copies only the masked weights: enough for an untied update.
        """
        keys = {_key(n) for n in self.prunable} if prunable_only else None
        return {
            key: p.detach().clone()
            for key, p in self.weights.items()
            if keys is None or key in keys
        }

    @torch.no_grad()
    def masked_update(
        self, before: dict[str, torch.Tensor], tied: bool, present: torch.Tensor | None = None
    ) -> None:
        """Undo every change the optimizer made outside the masks, and tie shared weights.

        Ticket ``k``'s update is kept only on ``m_k``; a weight no ticket keeps does not
        move (bitwise), whatever the optimizer's moments say. With ``tied=True`` every copy
        held the shared ``theta`` before the step and the tickets' masked updates are summed
        into it (one update per ticket, as Alg. 2's round-robin), then copied back to all
        copies. ``present`` (ticket ids, default all) lists the tickets that had samples in
        the step: with ``tied=False`` the copies of the others are restored whole, so a
        ticket that did not train does not move.
        """
        absent = None
        if present is not None and not tied:
            absent = torch.ones(self.n_tickets, dtype=torch.bool)
            absent[present.cpu()] = False
            absent = torch.nonzero(absent).flatten()
        for name in self.param_names:
            key = _key(name)
            param = self.weights[key]
            mask = getattr(self.masks, key) if name in self.prunable else None
            if not tied:
                if mask is not None:
                    torch.where(mask, param, before[key], out=param)
                if absent is not None and len(absent):
                    index = absent.to(param.device)
                    param.index_copy_(0, index, before[key].index_select(0, index))
                continue
            old = before[key]
            delta = param - old
            if mask is not None:
                union, kept = self._mask_weights(key, mask)
                delta.mul_(kept)  # 0 outside the mask
                theta = torch.where(union, old[0] + delta.sum(0), old[0])
            else:
                theta = old[0] + delta.sum(0)
            param.copy_(theta.unsqueeze(0).expand_as(param))

    def _mask_weights(self, key: str, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mask.any(0), mask as 0/1 weights)``, recomputed only when the mask changed
        (its version counter moves with every in-place write): once per stage, not per
        step. The product with the 0/1 weights is 9x faster than ``where`` or
        ``masked_fill_`` on a 128x128 layer."""
        cache = vars(self).setdefault("_union_cache", {})
        hit = cache.get(key)
        if hit is None or hit[0] is not mask or hit[1] != mask._version:
            kept = mask.to(self.weights[key].dtype)
            hit = cache[key] = (mask, mask._version, mask.any(0), kept)
        return hit[2], hit[3]

    @torch.no_grad()
    def share(self) -> None:
        """Keep a single weight copy (after tied training every copy is identical)."""
        self.set_weights({name: w[0] for name, w in self.get_weights().items()}, n_copies=1)


class TicketBatchNormNetwork(TicketNetwork):
    """A :class:`~sklearn_rtl.TicketNetwork` with per-ticket batch-norm running statistics.

    Training batches are grouped by ticket, so batch norm normalizes every ticket with its
    own batch statistics during training; with the template's shared running statistics,
    evaluation would then normalize every ticket with a mixture of all tickets' statistics.
    Here every batch-norm layer that tracks running statistics gets buffers of shape
    ``(n_tickets, *shape)``, and ticket ``k`` reads and updates row ``k`` (they are passed to
    ``functional_call`` with the ticket's parameters). The affine batch-norm weights stay
    dense and shared, as in the paper.

    Parameters
    ----------
    template, n_tickets, prunable
        As for :class:`~sklearn_rtl.TicketNetwork`.

    Examples
    --------
    >>> import torch
    >>> from sklearn_rtl import SmallCNN, TicketBatchNormNetwork, find_prunable
    >>> template = SmallCNN(in_channels=1, n_outputs=3, channels=(4,), input_hw=(6, 6))
    >>> network = TicketBatchNormNetwork(template, 2, find_prunable(template))
    >>> out = network(torch.randn(8, 1, 6, 6), torch.tensor([0, 1] * 4))
    >>> out.shape, network.ticket_stat(network.stat_names[0]).shape
    (torch.Size([8, 3]), torch.Size([2, 4]))
    """

    _STATS = ("running_mean", "running_var", "num_batches_tracked")

    def __init__(self, template: nn.Module, n_tickets: int, prunable: list[str]):
        super().__init__(template, n_tickets, prunable)
        self.ticket_stats = nn.Module()
        self.stat_names: list[str] = []
        for prefix, sub in template.named_modules():
            if not (isinstance(sub, _BatchNorm) and sub.track_running_stats):
                continue
            for attr in self._STATS:
                value = getattr(sub, attr, None)
                if value is None:
                    continue
                name = f"{prefix}.{attr}" if prefix else attr
                stacked = value.detach().unsqueeze(0).repeat(self.n_tickets, *[1] * value.ndim)
                self.ticket_stats.register_buffer(name.replace(".", "__"), stacked.clone())
                self.stat_names.append(name)

    def _state_tensors(self) -> list[torch.Tensor]:
        return [*super()._state_tensors(), *self.ticket_stats._buffers.values()]

    def ticket_stat(self, name: str) -> torch.Tensor:
        """Running statistic ``name`` of every ticket, shape ``(n_tickets, *shape)``."""
        return getattr(self.ticket_stats, name.replace(".", "__"))

    def ticket_parameters(self, ticket: int) -> dict[str, torch.Tensor]:
        params = super().ticket_parameters(ticket)
        for name in self.stat_names:
            # A view: batch norm's in-place update of its running statistics lands in row k.
            params[name] = self.ticket_stat(name)[ticket]
        return params


def has_batchnorm(module: nn.Module) -> bool:
    """Whether ``module`` has a batch-norm layer that tracks running statistics."""
    return any(isinstance(sub, _BatchNorm) and sub.track_running_stats for sub in module.modules())


def make_ticket_network(template, n_tickets, prunable, ticket_batchnorm=True) -> TicketNetwork:
    """The ticket network for ``template``: with per-ticket batch-norm statistics when
    ``ticket_batchnorm`` and the template has batch norm, else a plain one."""
    per_ticket_bn = ticket_batchnorm and has_batchnorm(template)
    network_class = TicketBatchNormNetwork if per_ticket_bn else TicketNetwork
    return network_class(template, n_tickets, prunable)
