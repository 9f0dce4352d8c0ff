"""Declarative parameter constraints of the estimators, plus the checks that need data or
torch (``n_clusters <= n_samples``, the entries of ``hidden_layer_sizes``, the device).

The constraints are scikit-learn's own (``Interval``, ``StrOptions``, ``HasMethods``), so
bad values raise ``InvalidParameterError`` (a ``ValueError`` and a ``TypeError``) whose
message names the parameter, what it accepts and the value given.
"""

from __future__ import annotations

import numbers
from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

__all__ = ["ROUTER_CONSTRAINT", "BASE_CONSTRAINTS", "check_data_dependent"]


def _positive_int(lower=1):
    return Interval(Integral, lower, None, closed="left")


ROUTER_CONSTRAINT = HasMethods(["fit", "predict"])

BASE_CONSTRAINTS = {
    "hidden_layer_sizes": ["array-like", _positive_int()],
    "module": [None, torch.nn.Module, type],  # a class: a Module subclass (checked in fit)
    "routing": [StrOptions({"kmeans", "groups"}), ROUTER_CONSTRAINT],
    "n_clusters": [_positive_int(), StrOptions({"auto"})],
    "sparsity": [Interval(Real, 0, 1, closed="left"), StrOptions({"auto"})],
    "n_prune_rounds": [_positive_int()],
    "sparsity_ceiling": [Interval(Real, 0, 1, closed="neither")],
    "validation_fraction": [None, Interval(Real, 0, 1, closed="neither")],
    "max_epochs": [_positive_int()],
    "max_prune_epochs": [_positive_int()],
    "share_weights": ["boolean"],
    "lr": [Interval(Real, 0, None, closed="neither")],
    "batch_size": [_positive_int(), StrOptions({"auto"})],
    "optimizer": [type],  # a torch.optim.Optimizer subclass (checked in fit)
    "device": [str, torch.device],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
    "prune_scope": [StrOptions({"layer", "global"})],
    "prune_granularity": [StrOptions({"weight", "neuron"})],
    "prune_output_layer": ["boolean"],
    "rewind_epoch": [_positive_int(0)],
    "module_params": [None, dict],
    "optimizer_params": [None, dict],
    "callbacks": [None, list, tuple],
    "unknown_group": [StrOptions({"error", "nearest"})],
    "input_shape": [None, "array-like"],
    "prunable": [None, "array-like", callable],
    "ticket_batchnorm": ["boolean"],
    "shared_layers": [None, Integral, "array-like"],
    "tol": [Interval(Real, 0, None, closed="left")],
    "n_iter_no_change": [_positive_int()],
    "early_stopping": ["boolean"],
    "min_cluster_size": [_positive_int(0)],
}


def _hidden_layer_sizes(value):
    hidden = (value,) if isinstance(value, numbers.Integral) else tuple(value)
    for width in hidden:
        if isinstance(width, bool) or not isinstance(width, numbers.Integral) or width < 1:
            raise ValueError(
                f"hidden_layer_sizes must hold positive ints, got {value!r} (entry {width!r})."
            )
    return tuple(int(width) for width in hidden)


def _check_device(value):
    """A ``ValueError`` naming ``device`` unless torch can train on it here: the CPU, an
    existing CUDA GPU, or Apple's MPS where this torch has it."""
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device must be 'cpu', 'cuda' or a torch device, got {value!r}."
        ) from None
    if device.type == "cpu":
        return
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={value!r} was requested but no CUDA GPU is available.")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(
                f"device={value!r} names GPU {device.index}, but this machine has {count} "
                f"CUDA GPU(s) (indices 0 .. {count - 1})."
            )
        return
    mps = getattr(torch.backends, "mps", None)
    if device.type == "mps" and mps is not None and mps.is_available():
        return
    raise ValueError(
        f"device must be 'cpu', 'cuda' (with a CUDA GPU) or 'mps' (where available), got "
        f"{value!r}: torch cannot train on {device.type!r} devices here."
    )


def _check_subclass(estimator, name, base):
    value = getattr(estimator, name)
    if isinstance(value, type) and not issubclass(value, base):
        raise TypeError(
            f"The {name!r} parameter of {type(estimator).__name__} must be a "
            f"{base.__module__}.{base.__qualname__} subclass, got {value!r}."
        )


def check_data_dependent(estimator, n_samples):
    """Checks the constraints cannot express. Returns the hidden layer widths as a tuple."""
    _check_subclass(estimator, "module", torch.nn.Module)
    _check_subclass(estimator, "optimizer", torch.optim.Optimizer)
    _check_device(estimator.device)
    if isinstance(estimator.routing, str) and estimator.routing == "kmeans":
        if estimator.n_clusters != "auto" and estimator.n_clusters > n_samples:
            raise ValueError(f"n_clusters={estimator.n_clusters} must be <= n_samples={n_samples}.")
    if estimator.module is not None:
        return None
    return _hidden_layer_sizes(estimator.hidden_layer_sizes)
