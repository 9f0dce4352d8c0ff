"""The ticket set: binary masks over the prunable weights and magnitude pruning.

Pure functions only. A *mask set* is a ``dict`` mapping a prunable parameter name to a
boolean tensor of shape ``(n_tickets, *weight.shape)``: entry ``[k]`` is ticket ``k``'s
mask ``m_k`` for that layer (paper Eq. 1 and 3).
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = [
    "density_schedule",
    "full_masks",
    "prune_by_magnitude",
    "ticket_kept_counts",
    "union_kept_count",
    "pack_masks",
    "unpack_masks",
]


def density_schedule(sparsity: float, n_prune_rounds: int) -> list[float]:
    """Fraction of prunable weights each ticket keeps after every pruning round.

    A geometric schedule: every round removes the same fraction of the surviving weights,
    and the last round lands exactly on ``1 - sparsity``.

    Parameters
    ----------
    sparsity : float
        Target fraction of prunable weights removed, in ``[0, 1)``.
    n_prune_rounds : int
        Number of pruning rounds, ``>= 1``.

    Returns
    -------
    densities : list of float of length ``n_prune_rounds``
        Decreasing densities, the last one equal to ``1 - sparsity``.

    Examples
    --------
    >>> [round(d, 4) for d in density_schedule(0.75, 2)]
    [0.5, 0.25]
    """
    target = 1.0 - sparsity
    densities = [target ** ((r + 1) / n_prune_rounds) for r in range(n_prune_rounds)]
    densities[-1] = target
    return densities


def full_masks(shapes: dict[str, tuple[int, ...]], n_tickets: int, device=None) -> dict:
    """All-ones masks: every ticket starts as the dense network (Alg. 1, ``m_k <- 1``)."""
    return {
        name: torch.ones((n_tickets, *shape), dtype=torch.bool, device=device)
        for name, shape in shapes.items()
    }


def _keep_top(scores: torch.Tensor, n_keep: int) -> torch.Tensor:
    """Boolean mask of the ``n_keep`` largest entries of a 1-D tensor (stable ties)."""
    keep = torch.zeros_like(scores, dtype=torch.bool)
    if n_keep > 0:
        order = torch.sort(scores, descending=True, stable=True).indices
        keep[order[:n_keep]] = True
    return keep


def prune_by_magnitude(
    weights: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor],
    density: float,
    scope: str = "layer",
) -> dict[str, torch.Tensor]:
    """Prune every ticket to ``density`` by removing its lowest-magnitude surviving weights.

    Parameters
    ----------
    weights : dict of str to Tensor of shape (n_tickets, ...)
        Trained weights of every ticket (``theta_T^(k)`` of Alg. 1), one slice per ticket.
    masks : dict of str to bool Tensor of shape (n_tickets, ...)
        Current masks. Only surviving weights can be kept: masks only shrink.
    density : float
        Fraction of the prunable weights each ticket keeps, in ``(0, 1]``.
    scope : {"layer", "global"}, default="layer"
        ``"layer"`` keeps ``density`` of every layer (at least one weight per layer);
        ``"global"`` ranks the magnitudes of all prunable layers together.

    Returns
    -------
    new_masks : dict of str to bool Tensor of shape (n_tickets, ...)
        The pruned masks; the inputs are not modified.

    Examples
    --------
    >>> w = {"w": torch.tensor([[[0.1, -3.0], [2.0, 0.5]]])}
    >>> m = {"w": torch.ones(1, 2, 2, dtype=torch.bool)}
    >>> prune_by_magnitude(w, m, density=0.5)["w"].int().tolist()
    [[[0, 1], [1, 0]]]
    """
    if scope not in ("layer", "global"):
        raise ValueError(f"scope must be 'layer' or 'global', got {scope!r}.")
    names = list(masks)
    n_tickets = next(iter(masks.values())).shape[0]
    new_masks = {name: torch.zeros_like(masks[name]) for name in names}
    for k in range(n_tickets):
        # Pruned weights score -1, below any magnitude, so they are never revived.
        scores = [
            torch.where(masks[name][k], weights[name][k].detach().abs(), -1.0).flatten()
            for name in names
        ]
        if scope == "global":
            flat = torch.cat(scores)
            n_keep = min(int(round(density * flat.numel())), int(flat.gt(-1).sum()))
            kept = _keep_top(flat, n_keep)
            parts = torch.split(kept, [s.numel() for s in scores])
            for name, part in zip(names, parts, strict=True):
                new_masks[name][k] = part.view_as(masks[name][k])
        else:
            for name, layer_scores in zip(names, scores, strict=True):
                n_keep = max(1, int(round(density * layer_scores.numel())))
                n_keep = min(n_keep, int(layer_scores.gt(-1).sum()))
                new_masks[name][k] = _keep_top(layer_scores, n_keep).view_as(masks[name][k])
    return new_masks


def ticket_kept_counts(masks: dict[str, torch.Tensor]) -> np.ndarray:
    """Number of weights each ticket keeps, shape ``(n_tickets,)``."""
    return sum(m.flatten(1).sum(1) for m in masks.values()).cpu().numpy().astype(np.int64)


def union_kept_count(masks: dict[str, torch.Tensor]) -> int:
    """Number of distinct weights kept by at least one ticket, ``|U_k m_k|``."""
    return int(sum(int(m.any(0).sum()) for m in masks.values()))


def pack_masks(masks: dict[str, torch.Tensor]) -> dict[str, tuple]:
    """Bit-pack boolean masks (1 bit per weight) for compact storage."""
    return {
        name: (tuple(m.shape), np.packbits(m.cpu().numpy().ravel())) for name, m in masks.items()
    }


def unpack_masks(packed: dict[str, tuple]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`pack_masks`."""
    out = {}
    for name, (shape, bits) in packed.items():
        n = math.prod(shape)
        out[name] = torch.from_numpy(np.unpackbits(bits, count=n).astype(bool).reshape(shape))
    return out
