"""Collapse detection: when did pruning go too far?

Two rules live here.

* :func:`detect_collapse` is **label-free**: it reads only the mask-similarity curve that
  ticket extraction records (``collapse_curve_``), as the paper proposes (Sec. 4.5).
* :func:`collapse_from_scores` reads a curve of **held-out scores** (one per pruning round);
  ``sparsity="auto"`` uses it.

See ``docs/paper-reproduction.md`` for the evidence behind both rules.
"""

from __future__ import annotations

import numpy as np

__all__ = ["collapse_from_scores", "detect_collapse", "drop_persists", "similarity_lift"]


def collapse_from_scores(scores, tol=0.02):
    """First round after which the held-out score stays more than ``tol`` below its best.

    A *sustained* drop: round ``i`` is the collapse if every score from ``i`` on is below
    ``max(scores[:i]) - tol``. A single noisy dip that recovers later is not a collapse.

    Parameters
    ----------
    scores : sequence of float
        Held-out scores (higher is better), one per pruning round in order of increasing
        sparsity; ``scores[0]`` is the reference (the dense network, or the first round).
    tol : float, default=0.02
        Allowed drop below the best earlier score (absolute, e.g. balanced accuracy).

    Returns
    -------
    index : int or None
        Smallest ``i >= 1`` with ``max(scores[i:]) < max(scores[:i]) - tol``; ``None`` if
        there is none.

    Examples
    --------
    >>> collapse_from_scores([0.90, 0.91, 0.90, 0.85, 0.50])
    3
    >>> collapse_from_scores([0.90, 0.85, 0.90, 0.50])  # the dip at 1 recovers
    3
    >>> collapse_from_scores([0.90, 0.89, 0.90]) is None
    True
    """
    scores = np.asarray(scores, dtype=np.float64)
    for i in range(1, len(scores)):
        if np.max(scores[i:]) < np.max(scores[:i]) - tol:
            return i
    return None


def drop_persists(scores, tol=0.02, patience=2):
    """Whether the last ``patience`` scores all lie more than ``tol`` below the best
    earlier score: ``sparsity="auto"`` stops pruning there.

    Examples
    --------
    >>> drop_persists([0.9, 0.8, 0.7]), drop_persists([0.9, 0.8, 0.9])
    (True, False)
    """
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) <= patience:
        return False
    return bool(np.max(scores[-patience:]) < np.max(scores[:-patience]) - tol)


def similarity_lift(curve):
    """Mean pairwise mask similarity over the random-mask level, per pruning round.

    Parameters
    ----------
    curve : list of dict
        A fitted ``collapse_curve_``: records with ``similarity`` and
        ``random_similarity`` (``d / (2 - d)`` at the tickets' density ``d``).

    Returns
    -------
    lift : ndarray of shape (n_rounds,)
        ``similarity / random_similarity``; ``1`` means the tickets share no more weights
        than independent random masks of the same density would.

    Examples
    --------
    >>> similarity_lift([{"similarity": 0.6, "random_similarity": 0.2}]).round(6).tolist()
    [3.0]
    """
    sim = np.array([r["similarity"] for r in curve], dtype=np.float64)
    rand = np.array([r["random_similarity"] for r in curve], dtype=np.float64)
    return sim / np.maximum(rand, 1e-12)


def detect_collapse(curve, min_elasticity=0.13, rule="plateau", rise=0.02):
    """Label-free collapse detection on the mask-similarity curve alone.

    ``rule="plateau"`` (default, chosen from the evidence in
    ``docs/paper-reproduction.md``): healthy tickets drift apart as pruning goes on, so
    the Jaccard similarity of their masks *falls* with the density ``d``. Collapse is
    flagged at the first round where, in **some prunable layer**, the mean pairwise
    Jaccard ``J`` stops falling: its elasticity ``log(J_r / J_{r-1}) / log(d_r / d_{r-1})``
    drops below ``min_elasticity`` (0.13 is a fall of less than 5% of ``J`` over a round
    that keeps 68% of the weights). On our MLP runs this rule never fired before the
    held-out accuracy drop: it is a *lagging* signal (at the drop in 2 of 21 runs, later
    in 17, of which 7 one round later; missed 2), i.e. it tells that pruning went past
    collapse, not that it is about to.

    ``rule="rise"`` is the paper's signature (Sec. 4.5): the first round whose global mean
    pairwise Jaccard rises by more than ``rise``. It never fired on our runs.

    Parameters
    ----------
    curve : list of dict
        A fitted ``collapse_curve_`` (records with ``sparsity``, ``similarity`` and
        ``layer_similarity``), in pruning order.
    min_elasticity : float, default=0.13
        ``rule="plateau"``: smallest per-layer elasticity of healthy tickets.
    rule : {"plateau", "rise"}, default="plateau"
    rise : float, default=0.02
        ``rule="rise"``: smallest round-to-round rise of the similarity.

    Returns
    -------
    index : int or None
        Index into ``curve`` of the first flagged round, ``None`` if none is (always for
        a single ticket, whose similarity is constantly 1).

    Examples
    --------
    >>> curve = [{"sparsity": 1 - d, "similarity": j, "layer_similarity": {"fc": j}}
    ...          for d, j in [(0.5, 0.6), (0.25, 0.4), (0.125, 0.39)]]
    >>> detect_collapse(curve)
    2
    >>> detect_collapse(curve, rule="rise") is None
    True
    """
    if rule not in ("plateau", "rise"):
        raise ValueError(f"rule must be 'plateau' or 'rise', got {rule!r}.")
    sim = np.array([r["similarity"] for r in curve], dtype=np.float64)
    if len(sim) == 0 or np.all(sim >= 1.0 - 1e-12):
        return None  # a single ticket (or identical tickets throughout)
    if rule == "rise":
        for i in range(1, len(sim)):
            if sim[i] - sim[i - 1] > rise:
                return i
        return None
    density = np.array([1.0 - r["sparsity"] for r in curve], dtype=np.float64)
    layers = [
        np.array([r["layer_similarity"][name] for r in curve], dtype=np.float64)
        for name in curve[0].get("layer_similarity", {})
    ] or [sim]
    for i in range(1, len(curve)):
        step = np.log(density[i] / density[i - 1])
        if step >= 0:
            continue
        for j in layers:
            elasticity = np.log(max(j[i], 1e-12) / max(j[i - 1], 1e-12)) / step
            if elasticity < min_elasticity:
                return i
    return None
