"""The data a fit works on: validated rows, sample weights and the held-out split.

* :class:`FitInputs`: what ``fit`` works on once the data is validated: the training
  :class:`Rows`, the held-out :class:`Rows` (or None) and the :class:`FitPlan`;
* :func:`sample_weights`: ``sample_weight`` (and a classifier's ``class_weight``) checked
  and scaled by a power of two (only relative weights matter), with rows of weight zero
  dropped, so that a weight of zero is exactly dropping the row;
* :func:`split_held_out`: the held-out rows of ``validation_fraction`` (stratified, and
  every class and group keeps a training row), shared by early stopping, the per-round
  scores and ``sparsity="auto"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import _check_sample_weight

from ._routing import distinct_values

__all__ = ["FitInputs", "FitPlan", "Rows", "sample_weights", "split_held_out"]


@dataclass(frozen=True, kw_only=True)
class Rows:
    """Rows of a fit, every array aligned with ``X``'s rows.

    Attributes
    ----------
    X : ndarray or scipy.sparse.csr_matrix
        Flat float32 rows (the network reshapes them to ``input_shape``).
    y : ndarray
        Targets as given.
    y_train : ndarray
        Targets as the network trains on them (class indices, or standardized values).
    groups : ndarray or None
        Every row's context.
    weight : ndarray of float32 or None
        Every row's (relative, positive) weight; None when every weight is one.
    """

    X: object
    y: np.ndarray
    y_train: np.ndarray
    groups: np.ndarray | None
    weight: np.ndarray | None

    def trainer_data(self, ticket):
        """The rows as the trainer takes them: ``X``, every row's ``ticket`` (int64) and,
        where the rows are weighted, their ``weight``."""
        data = {"X": self.X, "ticket": np.asarray(ticket).astype(np.int64)}
        if self.weight is not None:
            data["weight"] = self.weight
        return data


@dataclass(frozen=True, kw_only=True)
class FitPlan:
    """What a fit resolved from its parameters and the data, before training.

    Attributes
    ----------
    targets : dict
        Fitted target attributes (``classes_``; ``y_mean_``, ``y_scale_``, ...).
    task : object
        The task object (``_tasks.py``): loss, outputs and held-out routing.
    selection : object
        The sparsity strategy (``_selection.py``): schedule and chosen round.
    sample_shape : tuple of int
        Shape of one sample of ``X`` as given.
    input_shape : tuple of int
        Shape of one sample as the network takes it.
    hidden : tuple of int or None
        Hidden widths of the default network (None with a user ``module``).
    torch_seed, router_seed, loader_seed : int
        Seeds of the network's initialization, the router and the batch order.
    """

    targets: dict
    task: object
    selection: object
    sample_shape: tuple
    input_shape: tuple
    hidden: tuple | None
    torch_seed: int
    router_seed: int
    loader_seed: int


@dataclass(frozen=True, kw_only=True)
class FitInputs:
    """What ``fit`` works on once the data is validated.

    Attributes
    ----------
    train : Rows
        The rows the tickets train on.
    held_out : Rows or None
        The rows held out for early stopping and the per-round scores, or None.
    plan : FitPlan
    """

    train: Rows
    held_out: Rows | None
    plan: FitPlan


# the smallest positive weight, relative to the largest, that float32 holds at full precision
_SMALLEST_RELATIVE_WEIGHT = float(np.finfo(np.float32).tiny)


def sample_weights(X, sample_weight, class_weight=None):
    """Checked float32 weights, or None when every weight is one.

    ``class_weight`` (an array of per-sample class weights, from scikit-learn's
    ``compute_sample_weight``) multiplies ``sample_weight``. Negative or non-finite weights,
    and weights that are all zero, raise a ``ValueError``.

    Only relative weights matter (every ticket's loss is its weighted mean), so the weights
    are divided by the power of two that puts the largest in ``[1, 2)``: exact, so the
    float32 weights are the given ones rescaled, and no positive weight underflows to zero
    (or overflows) in float32. Positive weights smaller than about 1e-38 times the largest
    cannot be told from zero in float32 and raise a ``ValueError``.
    """
    if sample_weight is None and class_weight is None:
        return None
    weight = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    if class_weight is not None:
        weight = weight * class_weight
    if not np.isfinite(weight).all() or (weight < 0).any() or weight.sum() <= 0:
        raise ValueError(
            "sample_weight must hold finite, non-negative weights that are not all zero "
            f"(sum {weight.sum():.3g})."
        )
    positive = weight[weight > 0]
    weight = weight / 2.0 ** np.floor(np.log2(positive.max()))
    ratio = positive.min() / positive.max()
    if ratio < _SMALLEST_RELATIVE_WEIGHT:
        raise ValueError(
            f"sample_weight spans too wide a range to train on in float32: its smallest "
            f"positive weight ({positive.min():.3g}) is {ratio:.3g} times its largest "
            f"({positive.max():.3g}), below {_SMALLEST_RELATIVE_WEIGHT:.3g}. Set the weights "
            f"that small to zero to drop their rows, or raise them."
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


def _check_both_sides(fraction, n_rows):
    """A ``ValueError`` naming ``validation_fraction`` unless holding out ``fraction`` of
    ``n_rows`` rows (``ceil``, as ``train_test_split`` counts) leaves a row on both sides."""
    n_held = math.ceil(fraction * n_rows)
    if 0 < n_held < n_rows:
        return
    raise ValueError(
        f"validation_fraction={fraction:g} holds out {n_held} of the {n_rows} training rows, "
        f"leaving {n_rows - n_held} to train on: the split needs at least one row on each "
        f"side. Use a validation_fraction of at most {n_rows - 1}/{n_rows} for this data, or "
        f"give more rows."
    )


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
    fraction = float(fraction)  # a numpy float too; the parameter itself stays as given
    _check_both_sides(fraction, len(y_train))
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
