"""Mask similarity between tickets and the collapse score (paper Sec. 4.5, Eq. 8)."""

from __future__ import annotations

import numpy as np

__all__ = [
    "jaccard",
    "similarity_matrix",
    "layer_similarity",
    "ticket_similarity",
    "collapse_score",
    "random_mask_jaccard",
]


def jaccard(mask_a, mask_b) -> float:
    """Jaccard similarity (IoU) ``|a & b| / |a | b|`` of two boolean masks.

    Parameters
    ----------
    mask_a, mask_b : array-like of bool, same shape
        Two binary masks.

    Returns
    -------
    similarity : float
        In ``[0, 1]``; ``1.0`` when both masks are empty.

    Examples
    --------
    >>> jaccard([1, 1, 0, 0], [1, 0, 1, 0])
    0.3333333333333333
    """
    a = np.asarray(mask_a, dtype=bool)
    b = np.asarray(mask_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"Masks must have the same shape, got {a.shape} and {b.shape}.")
    union = np.count_nonzero(a | b)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(a & b) / union)


def _as_matrix(masks) -> np.ndarray:
    """Masks as one boolean array of shape (n_tickets, n_weights)."""
    if isinstance(masks, dict):
        parts = [np.asarray(m, dtype=bool).reshape(len(m), -1) for m in masks.values()]
        return np.concatenate(parts, axis=1)
    matrix = np.asarray(masks, dtype=bool)
    return matrix.reshape(len(matrix), -1)


def similarity_matrix(masks) -> np.ndarray:
    """Pairwise Jaccard similarity of every pair of tickets over all their weights.

    Parameters
    ----------
    masks : dict of str to array of shape (n_tickets, ...), or array of shape (n_tickets, ...)
        Ticket masks, per layer (concatenated over layers) or as one array.

    Returns
    -------
    similarity : ndarray of shape (n_tickets, n_tickets)
        Symmetric, with ones on the diagonal.

    Examples
    --------
    >>> similarity_matrix([[1, 1, 0], [1, 0, 1]]).round(3).tolist()
    [[1.0, 0.333], [0.333, 1.0]]
    """
    matrix = _as_matrix(masks).astype(np.float64)
    intersection = matrix @ matrix.T
    sizes = matrix.sum(axis=1)
    union = sizes[:, None] + sizes[None, :] - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        similarity = np.where(union > 0, intersection / np.where(union > 0, union, 1), 1.0)
    np.fill_diagonal(similarity, 1.0)
    return similarity


def layer_similarity(masks: dict) -> dict[str, np.ndarray]:
    """:func:`similarity_matrix` of every layer separately.

    Parameters
    ----------
    masks : dict of str to array of shape (n_tickets, ...)
        Ticket masks per layer, e.g. ``{name: m.numpy()}`` of a ticket network's masks.

    Returns
    -------
    similarity : dict of str to ndarray of shape (n_tickets, n_tickets)
        One symmetric matrix per layer, with ones on the diagonal.

    Examples
    --------
    >>> masks = {"fc1": [[1, 1, 0, 0], [1, 1, 0, 0]], "fc2": [[1, 0], [0, 1]]}
    >>> {name: s[0, 1] for name, s in layer_similarity(masks).items()}
    {'fc1': np.float64(1.0), 'fc2': np.float64(0.0)}
    """
    return {name: similarity_matrix(np.asarray(m)) for name, m in masks.items()}


def ticket_similarity(similarity) -> np.ndarray:
    """Mean similarity of every ticket to the other tickets (the paper's per-ticket score).

    Parameters
    ----------
    similarity : array-like of shape (n_tickets, n_tickets)
        A similarity matrix such as :func:`similarity_matrix` returns.

    Returns
    -------
    scores : ndarray of shape (n_tickets,)
        Row means without the diagonal; ``[1.0]`` for a single ticket.

    Examples
    --------
    >>> ticket_similarity([[1.0, 0.2, 0.4], [0.2, 1.0, 0.6], [0.4, 0.6, 1.0]]).round(2).tolist()
    [0.3, 0.4, 0.5]
    """
    similarity = np.asarray(similarity, dtype=np.float64)
    n = len(similarity)
    if n == 1:
        return np.ones(1)
    return (similarity.sum(axis=1) - np.diag(similarity)) / (n - 1)


def collapse_score(similarity) -> float:
    """Mean pairwise similarity between distinct tickets, in ``[0, 1]``.

    High values mean the tickets have collapsed onto the same weights; a single ticket
    scores ``1.0``. Compare it with :func:`random_mask_jaccard` at the tickets' density.

    Parameters
    ----------
    similarity : array-like of shape (n_tickets, n_tickets)
        A similarity matrix such as :func:`similarity_matrix` returns.

    Returns
    -------
    score : float
        The mean of :func:`ticket_similarity`.

    Examples
    --------
    >>> round(collapse_score([[1.0, 0.2, 0.4], [0.2, 1.0, 0.6], [0.4, 0.6, 1.0]]), 6)
    0.4
    """
    return float(np.mean(ticket_similarity(similarity)))


def random_mask_jaccard(density):
    """Expected Jaccard of two independent random masks of the same density: ``d / (2 - d)``.

    The reference level for :func:`collapse_score`: tickets that share no more weights than
    chance score about this.

    Parameters
    ----------
    density : float or array-like of float
        Fraction of the weights every mask keeps (``1 - sparsity``), in ``[0, 1]``.

    Returns
    -------
    similarity : float or ndarray
        A float for a scalar ``density``, else an array of its shape.

    Examples
    --------
    >>> random_mask_jaccard(0.5)
    0.3333333333333333
    """
    density = np.asarray(density, dtype=np.float64)
    value = density / (2.0 - density)
    return float(value) if value.ndim == 0 else value
