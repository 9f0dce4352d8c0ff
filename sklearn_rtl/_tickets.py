"""The ticket set: the K binary masks over the prunable weights, and magnitude pruning.

A :class:`TicketSet` holds, for every prunable parameter, a boolean tensor of shape
``(n_tickets, *weight.shape)``: entry ``[k]`` is ticket ``k``'s mask ``m_k`` for that layer
(paper Eq. 1 and 3). It is a value object in the spirit of OpenLTH's ``Mask``: pruning
returns a new set, and every diagnostic of the masks (kept counts, the union, Jaccard
similarity, per-layer sparsity) is computed here, in one place.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ._diagnostics import (
    collapse_score,
    layer_similarity,
    random_mask_jaccard,
    similarity_matrix,
    ticket_similarity,
)
from ._units import prune_units

__all__ = ["TicketSet", "density_schedule", "prune_by_magnitude"]


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


class TicketSet:
    """The masks of ``K`` tickets over the prunable layers of one network.

    Parameters
    ----------
    masks : dict of str to bool Tensor of shape (n_tickets, ...)
        One entry per prunable parameter; row ``k`` is ticket ``k``'s mask. Kept as given
        (not copied); a ``TicketSet`` is never modified in place.

    Examples
    --------
    >>> tickets = TicketSet.full({"w": (2, 2)}, n_tickets=2)
    >>> weights = {"w": torch.tensor([[[1.0, 4.0], [3.0, 2.0]], [[4.0, 3.0], [1.0, 2.0]]])}
    >>> pruned = tickets.prune(weights, density=0.5)
    >>> pruned.kept().tolist(), pruned.density, pruned.n_union
    ([2, 2], 0.5, 3)
    >>> pruned.similarity()[0, 1].round(4)
    np.float64(0.3333)
    """

    def __init__(self, masks: dict[str, torch.Tensor]):
        if not masks:
            raise ValueError("A TicketSet needs at least one prunable layer.")
        self.masks = dict(masks)

    # ------------------------------------------------------------ construction
    @classmethod
    def full(cls, shapes: dict[str, tuple[int, ...]], n_tickets: int, device=None) -> TicketSet:
        """All-ones masks: every ticket starts as the dense network (Alg. 1, ``m_k <- 1``)."""
        return cls(
            {
                name: torch.ones((n_tickets, *shape), dtype=torch.bool, device=device)
                for name, shape in shapes.items()
            }
        )

    def prune(
        self, weights: dict[str, torch.Tensor], density: float, scope="layer", shared=(), chain=None
    ):
        """A new set where every ticket keeps ``density`` of the prunable weights: its
        largest-magnitude survivors in ``weights`` (see :func:`prune_by_magnitude`), or
        with a unit ``chain`` its strongest whole units (neuron-level tickets, see
        :func:`~sklearn_rtl._units.prune_units`).

        Layers named in ``shared`` get one mask for all tickets, ranked by the mean
        magnitude of the tickets' weights (each trained on its own data, so together on
        the joint data); they keep ``density`` of their own weights whatever the scope.
        """
        device = next(iter(weights.values())).device
        masks = {name: m.to(device) for name, m in self.masks.items()}
        if chain is not None:
            return TicketSet(prune_units(weights, masks, density, scope, chain))
        rest = [name for name in self.names if name not in shared]
        new = {}
        if rest:
            own = {name: weights[name] for name in rest}
            new.update(prune_by_magnitude(own, {n: masks[n] for n in rest}, density, scope))
        joint = {
            name: weights[name].abs().mean(0, keepdim=True).expand_as(weights[name])
            for name in self.names
            if name in shared
        }
        if joint:
            new.update(prune_by_magnitude(joint, {n: masks[n] for n in joint}, density, "layer"))
        return TicketSet({name: new[name] for name in self.names})

    # -------------------------------------------------------------- structure
    @property
    def names(self) -> list[str]:
        """The prunable parameters, in order."""
        return list(self.masks)

    @property
    def n_tickets(self) -> int:
        return int(next(iter(self.masks.values())).shape[0])

    @property
    def n_prunable(self) -> int:
        """Prunable weights of one network."""
        return int(sum(m[0].numel() for m in self.masks.values()))

    def ticket(self, k: int) -> dict[str, np.ndarray]:
        """Ticket ``k``'s mask of every layer, as boolean arrays."""
        return {name: m[k].cpu().numpy() for name, m in self.masks.items()}

    def numpy(self) -> dict[str, np.ndarray]:
        """Every mask as a boolean array of shape ``(n_tickets, ...)``."""
        return {name: m.cpu().numpy() for name, m in self.masks.items()}

    # ----------------------------------------------------------------- counts
    def kept(self) -> np.ndarray:
        """Number of weights each ticket keeps, shape ``(n_tickets,)``."""
        counts = sum(m.flatten(1).sum(1) for m in self.masks.values())
        return counts.cpu().numpy().astype(np.int64)

    def union(self) -> dict[str, torch.Tensor]:
        """Per layer, the weights kept by at least one ticket (``U_k m_k``)."""
        return {name: m.any(0) for name, m in self.masks.items()}

    @property
    def n_union(self) -> int:
        """Number of distinct weights kept by at least one ticket, ``|U_k m_k|``."""
        return int(sum(int(u.sum()) for u in self.union().values()))

    @property
    def density(self) -> float:
        """Mean fraction of the prunable weights a ticket keeps."""
        return float(self.kept().mean() / self.n_prunable)

    def ticket_sparsity(self) -> np.ndarray:
        """Fraction of the prunable weights every ticket removed, shape ``(n_tickets,)``."""
        return 1.0 - self.kept() / self.n_prunable

    def layer_sparsity(self) -> dict[str, np.ndarray]:
        """Per layer, the fraction of its weights every ticket removed."""
        return {n: 1.0 - m.reshape(len(m), -1).mean(axis=1) for n, m in self.numpy().items()}

    # ------------------------------------------------------------- similarity
    def similarity(self) -> np.ndarray:
        """Jaccard similarity of every pair of tickets over all prunable weights."""
        return similarity_matrix(self.numpy())

    def layer_similarity(self) -> dict[str, np.ndarray]:
        """:meth:`similarity` of every layer separately."""
        return layer_similarity(self.numpy())

    def round_record(self, round_index: int) -> dict:
        """The ``collapse_curve_`` record of this set after pruning round ``round_index``."""
        similarity = self.similarity()
        return {
            "round": round_index,
            "sparsity": 1.0 - self.density,
            "ticket_sparsity": self.ticket_sparsity(),
            "similarity": collapse_score(similarity),
            "ticket_similarity": ticket_similarity(similarity),
            "layer_similarity": {n: collapse_score(s) for n, s in self.layer_similarity().items()},
            "random_similarity": random_mask_jaccard(self.density),
        }

    # ---------------------------------------------------------------- storage
    def pack(self) -> dict[str, tuple]:
        """Bit-packed masks (1 bit per weight) for compact storage."""
        return {
            name: (tuple(m.shape), np.packbits(m.cpu().numpy().ravel()))
            for name, m in self.masks.items()
        }

    @classmethod
    def unpack(cls, packed: dict[str, tuple]) -> TicketSet:
        """Inverse of :meth:`pack`."""
        masks = {}
        for name, (shape, bits) in packed.items():
            n = math.prod(shape)
            masks[name] = torch.from_numpy(np.unpackbits(bits, count=n).astype(bool).reshape(shape))
        return cls(masks)

    def __eq__(self, other) -> bool:
        if not isinstance(other, TicketSet) or self.names != other.names:
            return NotImplemented
        return all(torch.equal(self.masks[n].cpu(), other.masks[n].cpu()) for n in self.names)

    __hash__ = None

    def __repr__(self) -> str:
        return (
            f"TicketSet(n_tickets={self.n_tickets}, layers={len(self.masks)}, "
            f"density={self.density:.4f})"
        )
