"""Neuron-level tickets: IMP that removes whole hidden units (whole channels of a CNN).

A neuron ticket is still a set of weight masks (a :class:`~sklearn_rtl._tickets.TicketSet`),
so Alg. 2, the diagnostics and every output path keep their meaning; its masks only have a
structure. Where ticket ``k`` removes unit ``j`` of layer ``l`` it masks row ``j`` of layer
``l``'s weight (every weight into the unit) and column ``j`` of layer ``l + 1``'s (every
weight out of it). ``sparsity`` still counts weights, so the two kinds of ticket are
comparable.

That structure is what makes a neuron ticket fast: :func:`compact_mlp` and
:func:`compact_cnn` build it as a physically smaller dense network holding only its kept
units. A removed unit still adds a constant to the next layer where that layer keeps its
columns (the dense output layer): ``relu(bias)`` of a removed hidden unit, or the batch
norm of a removed channel's zero map. The compact network folds that constant into the
next layer's bias, so it computes what the masked network computes, up to float rounding.

* :func:`unit_chain`: the layers whose units can be removed, in order (the default MLP, a
  ``Sequential`` of ``Linear``/``ReLU``, the default CNN), or None;
* :func:`prune_units`: one IMP round, per layer or global (``prune_scope``);
* :func:`kept_units`: the units every layer of a ticket keeps.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ._models import MLP, SmallCNN

__all__ = [
    "compact_cnn",
    "compact_mlp",
    "compact_ticket",
    "kept_units",
    "prune_units",
    "unit_chain",
]


def _linear_chain(module: nn.Module, prefix: str = "") -> list[str] | None:
    """Weight names of an alternating ``Linear, ReLU, ..., Linear`` stack, else None."""
    if type(module) is MLP:
        return _linear_chain(module.layers, f"{prefix}layers.")
    if type(module) is not nn.Sequential:
        return None
    children = list(module.named_children())
    kinds = [type(child) for _, child in children]
    expected = [nn.Linear if i % 2 == 0 else nn.ReLU for i in range(len(children))]
    if not children or kinds != expected or len(children) % 2 == 0:
        return None
    return [f"{prefix}{name}.weight" for name, child in children if type(child) is nn.Linear]


def unit_chain(template: nn.Module, prunable: list[str]) -> list[str] | None:
    """The weights whose rows are units, layer after layer, or None.

    Supported: the default :class:`~sklearn_rtl.MLP`, an ``nn.Sequential`` alternating
    ``Linear`` and ``ReLU`` (the last a ``Linear``), and the default
    :class:`~sklearn_rtl.SmallCNN` (its convolutions, then the head). Every layer but the
    last must be prunable (a removed unit must lose its incoming weights), and nothing
    outside the chain may be.
    """
    if type(template) is SmallCNN:
        convs = [f"features.{i}.weight" for i, m in enumerate(template.features)
                 if isinstance(m, nn.Conv2d)]  # fmt: skip
        chain = [*convs, "head.weight"]
    else:
        chain = _linear_chain(template)
    if chain is None or len(chain) < 2:
        return None
    if not set(chain[:-1]) <= set(prunable) or not set(prunable) <= set(chain):
        return None
    return chain


def kept_units(masks: dict[str, torch.Tensor], chain: list[str], k: int) -> list[torch.Tensor]:
    """Boolean keep-vector of the hidden units of every layer but the last, for ticket
    ``k``: a unit is kept while any weight into it is."""
    return [masks[name][k].flatten(1).any(1) for name in chain[:-1]]


def _layer_size(shape, rows: int, cols: int) -> int:
    return rows * cols * int(np.prod(shape[2:], dtype=np.int64))


def _n_kept_weights(shapes, chain, prunable, n_units) -> int:
    """Weights the prunable layers keep when hidden layer ``l`` keeps ``n_units[l]``."""
    total = 0
    for depth, name in enumerate(chain):
        if name not in prunable:
            continue
        rows = n_units[depth] if depth < len(chain) - 1 else shapes[name][0]
        cols = n_units[depth - 1] if depth > 0 else shapes[name][1]
        total += _layer_size(shapes[name], rows, cols)
    return total


def _unit_scores(weights, masks, chain, k, normalize):
    """Norm of every hidden unit's surviving incoming weights; -1 for removed units.
    ``normalize`` divides by the root of the unit's surviving weights (an RMS), so that
    units of layers with different fan-in rank on one scale (global scope)."""
    scores = []
    for name in chain[:-1]:
        kept = masks[name][k].flatten(1)
        values = (weights[name][k].detach().flatten(1) * kept).float()
        norm = values.norm(dim=1)
        if normalize:
            norm = norm / kept.sum(1).clamp(min=1).sqrt()
        scores.append(torch.where(kept.any(1), norm, torch.full_like(norm, -1.0)))
    return scores


def _keep_layerwise(scores, shapes, chain, prunable, target):
    """Keep the same fraction of every hidden layer's units (its top by norm), the
    fraction whose weight count comes closest to ``target``."""
    alive = [int(s.gt(-1).sum()) for s in scores]
    sizes = [len(s) for s in scores]
    fractions = sorted({j / n for n in sizes for j in range(1, n + 1)})
    best, best_gap = None, None
    for f in fractions:
        n_units = [
            min(alive[depth], max(1, round(f * sizes[depth]))) for depth in range(len(sizes))
        ]
        gap = abs(_n_kept_weights(shapes, chain, prunable, n_units) - target)
        if best_gap is None or gap < best_gap:
            best, best_gap = n_units, gap
    keep = []
    for s, n in zip(scores, best, strict=True):
        order = torch.sort(s, descending=True, stable=True).indices
        mask = torch.zeros(len(s), dtype=torch.bool, device=s.device)
        mask[order[:n]] = True
        keep.append(mask)
    return keep


def _keep_global(scores, shapes, chain, prunable, target):
    """Remove the units of lowest score over all hidden layers, one at a time, until the
    kept weights reach ``target`` (every layer keeps at least one unit)."""
    keep = [s.gt(-1) for s in scores]
    n_units = [int(m.sum()) for m in keep]
    layer_of = torch.cat([torch.full((len(s),), depth) for depth, s in enumerate(scores)])
    flat = torch.cat(scores)
    for i in torch.sort(flat, stable=True).indices.tolist():
        if _n_kept_weights(shapes, chain, prunable, n_units) <= target:
            break
        depth = int(layer_of[i])
        offset = i - sum(len(s) for s in scores[:depth])
        if flat[i] < 0 or n_units[depth] == 1:
            continue
        keep[depth][offset] = False
        n_units[depth] -= 1
    return keep


def prune_units(weights, masks, density, scope, chain):
    """One round of neuron-level IMP: every ticket keeps its strongest hidden units.

    Parameters
    ----------
    weights : dict of str to Tensor of shape (n_tickets, ...)
        Trained weights of every ticket (every name of ``chain`` that is prunable).
    masks : dict of str to bool Tensor of shape (n_tickets, ...)
        Current (neuron-structured) masks; removed units stay removed.
    density : float
        Fraction of the prunable weights each ticket keeps, in ``(0, 1]``.
    scope : {"layer", "global"}
        ``"layer"``: every hidden layer keeps the same fraction of its units, ranked by
        the L2 norm of their incoming weights; ``"global"``: units of all layers ranked
        together by the RMS of their incoming weights.
    chain : list of str
        :func:`unit_chain` of the network.

    Returns
    -------
    new_masks : dict of str to bool Tensor of shape (n_tickets, ...)

    Examples
    --------
    >>> w = {"a": torch.tensor([[[1.0, 1.0], [0.1, 0.1], [2.0, 2.0]]]),
    ...      "b": torch.ones(1, 1, 3)}
    >>> m = {n: torch.ones_like(v, dtype=torch.bool) for n, v in w.items()}
    >>> new = prune_units(w, m, density=5 / 9, scope="layer", chain=["a", "b"])
    >>> new["a"][0].int().tolist(), new["b"][0].int().tolist()
    ([[1, 1], [0, 0], [1, 1]], [[1, 0, 1]])
    """
    if scope not in ("layer", "global"):
        raise ValueError(f"scope must be 'layer' or 'global', got {scope!r}.")
    prunable = set(masks)
    shapes = {name: tuple(masks[name].shape[1:]) for name in chain if name in prunable}
    n_prunable = sum(int(np.prod(masks[n].shape[1:])) for n in masks)
    target = density * n_prunable
    new = {name: torch.zeros_like(m) for name, m in masks.items()}
    choose = _keep_layerwise if scope == "layer" else _keep_global
    for k in range(next(iter(masks.values())).shape[0]):
        scores = _unit_scores(weights, masks, chain, k, normalize=scope == "global")
        keep = choose(scores, shapes, chain, prunable, target)
        for depth, name in enumerate(chain):
            if name not in prunable:
                continue
            rows = (
                keep[depth]
                if depth < len(chain) - 1
                else torch.ones(shapes[name][0], dtype=torch.bool)
            )
            cols = keep[depth - 1] if depth > 0 else torch.ones(shapes[name][1], dtype=torch.bool)
            structured = rows.to(masks[name].device)[:, None] & cols.to(masks[name].device)[None]
            extra = (1,) * (masks[name].dim() - 3)
            new[name][k] = masks[name][k] & structured.reshape(*structured.shape, *extra)
    return new


def compact_mlp(params: dict, chain: list[str], keep: list[torch.Tensor]) -> nn.Sequential:
    """Ticket of a Linear/ReLU chain as a smaller ``nn.Sequential`` holding only its kept
    units. ``params`` are the ticket's (masked) parameters by name; the bias of a layer
    after removed units takes their constant contribution ``W[:, removed] @ relu(b)``."""
    layers: list[nn.Module] = []
    for depth, name in enumerate(chain):
        weight = params[name]
        bias_name = name[: -len("weight")] + "bias"
        bias = params.get(bias_name)
        rows = keep[depth] if depth < len(chain) - 1 else torch.ones(len(weight), dtype=torch.bool)
        cols = keep[depth - 1] if depth > 0 else torch.ones(weight.shape[1], dtype=torch.bool)
        rows, cols = rows.to(weight.device), cols.to(weight.device)
        if bias is None:
            bias = torch.zeros(len(weight), dtype=weight.dtype, device=weight.device)
        if depth > 0:
            previous_bias = params.get(chain[depth - 1][: -len("weight")] + "bias")
            if previous_bias is not None and (~cols).any():
                constant = torch.relu(previous_bias[~cols])
                bias = bias + weight[:, ~cols] @ constant
        linear = nn.Linear(int(cols.sum()), int(rows.sum()))
        with torch.no_grad():
            linear.weight.copy_(weight[rows][:, cols])
            linear.bias.copy_(bias[rows])
        layers += [linear, nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def _bn_value(template, params, index, attr):
    """A batch-norm parameter or running statistic: the ticket's own where it has one
    (per-ticket statistics), else the template's shared buffer."""
    name = f"features.{index}.{attr}"
    return params[name] if name in params else getattr(template.features[index], attr)


def compact_cnn(template: SmallCNN, params: dict, keep: list[torch.Tensor]) -> nn.Sequential:
    """Ticket of the default CNN holding only its kept channels (conv blocks, global
    average pooling, head). ``params`` are the ticket's parameters and batch-norm
    statistics by name; the head's bias takes the constant a removed last channel leaves
    after batch norm and ReLU."""
    blocks: list[nn.Module] = []
    conv_index = [i for i, m in enumerate(template.features) if isinstance(m, nn.Conv2d)]
    previous = None
    for depth, i in enumerate(conv_index):
        conv, norm = template.features[i], template.features[i + 1]
        rows = keep[depth]
        cols = previous if previous is not None else torch.ones(conv.in_channels, dtype=torch.bool)
        weight = params[f"features.{i}.weight"][rows][:, cols]
        small = nn.Conv2d(int(cols.sum()), int(rows.sum()), conv.kernel_size,
                          padding=conv.padding, bias=False)  # fmt: skip
        bn = nn.BatchNorm2d(int(rows.sum()), eps=norm.eps, momentum=norm.momentum)
        with torch.no_grad():
            small.weight.copy_(weight)
            for attr in ("weight", "bias", "running_mean", "running_var"):
                getattr(bn, attr).copy_(_bn_value(template, params, i + 1, attr)[rows])
        blocks += [small, bn]
        blocks += [m for m in template.features[i + 2 : (conv_index + [None])[depth + 1]]]
        previous = rows
    i = conv_index[-1]
    mean, var, gamma, beta = (
        _bn_value(template, params, i + 1, attr)
        for attr in ("running_mean", "running_var", "weight", "bias")
    )
    level = torch.relu(beta - gamma * mean / torch.sqrt(var + template.features[i + 1].eps))
    head = nn.Linear(int(previous.sum()), params["head.weight"].shape[0])
    with torch.no_grad():
        head.weight.copy_(params["head.weight"][:, previous])
        head.bias.copy_(
            params["head.bias"] + params["head.weight"][:, ~previous] @ level[~previous]
        )
    return nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(1), head)


def compact_ticket(network, k: int) -> nn.Module | None:
    """Ticket ``k`` of a :class:`~sklearn_rtl.TicketNetwork` as a compact dense network
    (:func:`compact_mlp` or :func:`compact_cnn`), in eval mode; None where the network has
    no :func:`unit_chain`."""
    chain = unit_chain(network.template, network.prunable)
    if chain is None:
        return None
    keep = kept_units(network.get_masks(), chain, k)
    with torch.no_grad():
        params = network.ticket_parameters(k)
        device = params[chain[0]].device
        if type(network.template) is SmallCNN:
            module = compact_cnn(network.template, params, keep)
        else:
            module = compact_mlp(params, chain, keep)
    return module.to(device).eval()  # on the ticket's device (CUDA fits predict there)
