"""How ticket extraction picks its pruning round: a fixed sparsity, or held-out ("auto").

Both strategies answer the same three questions for :func:`~sklearn_rtl._stages.extract_tickets`
and the estimator:

* ``schedule()``: the density every ticket keeps after each pruning round;
* ``should_stop(scores)``: given the held-out scores so far (``scores[0]`` is the dense
  network, ``scores[r]`` round ``r``'s masks), whether to stop pruning;
* ``choose(scores, n_rounds)``: the index of the round whose masks are retrained
  (``0`` = dense, ``n_rounds`` = the last round).
"""

from __future__ import annotations

from ._collapse import collapse_from_scores, drop_persists
from ._tickets import density_schedule

__all__ = ["AutoSparsity", "FixedSparsity", "make_selection"]


class FixedSparsity:
    """Prune to ``sparsity`` on a geometric schedule and keep the last round's masks."""

    needs_held_out = False

    def __init__(self, sparsity: float, n_prune_rounds: int):
        self.sparsity = sparsity
        self.n_prune_rounds = n_prune_rounds

    def schedule(self) -> list[float]:
        return density_schedule(self.sparsity, self.n_prune_rounds)

    def should_stop(self, scores) -> bool:
        return False

    def choose(self, scores, n_rounds: int) -> int:
        return n_rounds


class AutoSparsity:
    """Prune up to ``ceiling`` and keep the last round before the held-out score falls for
    good (:func:`~sklearn_rtl.collapse_from_scores`); stop once two rounds score that low
    (:func:`~sklearn_rtl.drop_persists`)."""

    needs_held_out = True

    def __init__(self, ceiling: float, n_prune_rounds: int):
        self.ceiling = ceiling
        self.n_prune_rounds = n_prune_rounds

    def schedule(self) -> list[float]:
        return density_schedule(self.ceiling, self.n_prune_rounds)

    def should_stop(self, scores) -> bool:
        return drop_persists(scores)

    def choose(self, scores, n_rounds: int) -> int:
        collapsed = collapse_from_scores(scores)
        return len(scores) - 1 if collapsed is None else collapsed - 1


def make_selection(sparsity, sparsity_ceiling: float, n_prune_rounds: int):
    """The strategy for a (validated) ``sparsity`` parameter: a number or ``"auto"``."""
    if isinstance(sparsity, str):
        return AutoSparsity(sparsity_ceiling, n_prune_rounds)
    return FixedSparsity(sparsity, n_prune_rounds)
