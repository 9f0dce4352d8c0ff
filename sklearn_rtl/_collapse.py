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


def detect_collapse(curve, rise=0.02):
    """Label-free collapse detection on the mask-similarity curve (paper Sec. 4.5).

    The rule: collapse at the first pruning round whose mean pairwise Jaccard similarity
    **rises** by more than ``rise`` over the previous round's. Pruning only removes
    weights, so on healthy tickets the similarity falls with sparsity (towards the random
    level ``d / (2 - d)``); a rise means the tickets are being squeezed onto the same
    surviving weights, the paper's "sharp increase in IoU" at collapse.

    Parameters
    ----------
    curve : list of dict
        A fitted ``collapse_curve_`` (records with ``similarity``), in pruning order.
    rise : float, default=0.02
        Smallest round-to-round increase of the similarity that counts as collapse.

    Returns
    -------
    index : int or None
        Index into ``curve`` of the first collapsed round, ``None`` if no round qualifies
        (always ``None`` for a single ticket, whose similarity is constant).

    Examples
    --------
    >>> curve = [{"similarity": s} for s in (0.7, 0.5, 0.3, 0.4)]
    >>> detect_collapse(curve)
    3
    """
    sim = np.array([r["similarity"] for r in curve], dtype=np.float64)
    for i in range(1, len(sim)):
        if sim[i] - sim[i - 1] > rise:
            return i
    return None
