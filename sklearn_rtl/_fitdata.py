"""The data a fit works on: validated rows, sample weights and the held-out split.

* :class:`FitInputs`: what ``fit`` works on once the data is validated;
* :func:`sample_weights`: ``sample_weight`` (and a classifier's ``class_weight``) checked,
  with rows of weight zero dropped, so that a weight of zero is exactly dropping the row;
* :func:`split_held_out`: the held-out rows of ``validation_fraction`` (stratified, and
  every class and group keeps a training row), shared by early stopping, the per-round
  scores and ``sparsity="auto"``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import _check_sample_weight

from ._routing import distinct_values

__all__ = ["FitInputs", "sample_weights", "split_held_out"]


class FitInputs(NamedTuple):
    """What ``fit`` works on once the data is validated: flat rows (dense or sparse),
    targets as given and encoded, groups, sample weights (or None), the held-out rows (or
    None), target attributes, the task and sparsity strategy, shapes, widths and seeds."""

    X: object
    y: np.ndarray
    y_train: np.ndarray
    groups: np.ndarray | None
    weight: np.ndarray | None
    held_out: dict | None
    targets: dict
    task: object
    selection: object
    sample_shape: tuple
    input_shape: tuple
    hidden: tuple | None
    torch_seed: int
    router_seed: int
    loader_seed: int


def sample_weights(X, sample_weight, class_weight=None):
    """Checked float32 weights, or None when every weight is one.

    ``class_weight`` (an array of per-sample class weights, from scikit-learn's
    ``compute_sample_weight``) multiplies ``sample_weight``. Negative weights, and weights
    that are all zero, raise a ``ValueError``.
    """
    if sample_weight is None and class_weight is None:
        return None
    weight = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    if class_weight is not None:
        weight = weight * class_weight
    if not np.isfinite(weight).all() or weight.sum() <= 0:
        raise ValueError(
            "sample_weight must hold finite, non-negative weights that are not all zero "
            f"(sum {weight.sum():.3g})."
        )
    return None if np.all(weight == 1.0) else weight.astype(np.float32)


def drop_zero_weight(weight, *arrays):
    """The rows of weight zero removed from every array (None stays None)."""
    if weight is None or np.all(weight > 0):
        return (weight, *arrays)
    keep = np.flatnonzero(weight > 0)
    return (weight[keep], *(None if a is None else a[keep] for a in arrays))


def _keep_every_class(codes, fit_index, val_index, fraction):
    """Give every class (or group) ``codes`` holds that the split left without a training
    row one of its held-out rows back, so that it keeps its ticket and output column.

    Raises a ``ValueError`` when that leaves no held-out row at all.
    """
    missing = np.setdiff1d(np.unique(codes), codes[fit_index])
    if len(missing) == 0:
        return fit_index, val_index
    back = np.array([val_index[np.argmax(codes[val_index] == c)] for c in missing])
    val_index = np.setdiff1d(val_index, back)
    if len(val_index) == 0:
        raise ValueError(
            f"The held-out split (validation_fraction={fraction}) leaves no held-out row once "
            f"every one of the {len(np.unique(codes))} classes (or groups) keeps a training "
            f"row ({len(codes)} samples): give more samples, or validation_fraction=None with "
            f"a numeric sparsity."
        )
    return np.sort(np.concatenate([fit_index, back])), val_index


def split_held_out(arrays, y_train, groups, fraction, seed, stratify, keep_groups=False):
    """Hold out ``fraction`` of the rows (stratified by class when possible).

    Parameters
    ----------
    arrays : dict of str to array or None
        Every per-row array (``X``, ``y``, ``y_train``, ``groups``, ``weight``), split alike.
    y_train : ndarray
        Encoded targets: the classes every one of which keeps a training row (with
        ``stratify``).
    groups : ndarray or None
        With ``keep_groups`` (``routing="groups"``) every group keeps a training row too.

    Returns
    -------
    train, held_out : dict of str to array or None
    """
    index = np.arange(len(y_train))
    try:
        fit_index, val_index = train_test_split(
            index, test_size=fraction, random_state=seed, stratify=y_train if stratify else None
        )
    except ValueError:  # a class too small to stratify
        fit_index, val_index = train_test_split(index, test_size=fraction, random_state=seed)
    fit_index, val_index = np.sort(fit_index), np.sort(val_index)
    if stratify:
        fit_index, val_index = _keep_every_class(y_train, fit_index, val_index, fraction)
    if keep_groups and groups is not None:
        codes = distinct_values(groups, "groups")[1]
        fit_index, val_index = _keep_every_class(codes, fit_index, val_index, fraction)

    def take(i):
        return {k: None if a is None else a[i] for k, a in arrays.items()}

    return take(fit_index), take(val_index)
