"""Which weights the tickets prune.

By default every Linear and Conv (1-3 D) weight except the last such layer (the classifier
head stays dense, as in the paper); the estimator's ``prunable`` parameter can name the
parameters or select them with a callable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

__all__ = ["find_prunable", "resolve_prunable", "resolve_shared_layers"]

_PRUNABLE_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def find_prunable(module: nn.Module, prune_output_layer: bool = False) -> list[str]:
    """Names of the weights that tickets prune: Linear and Conv weights, biases excluded.

    Parameters
    ----------
    module : torch.nn.Module
    prune_output_layer : bool, default=False
        The last Linear/Conv layer (the classifier) stays dense unless this is True, as in
        the paper. It stays dense even when it is the only one: then nothing is prunable
        and the list is empty (the estimators raise a ``ValueError`` that says so).

    Returns
    -------
    names : list of str
        Parameter names in registration order.

    Examples
    --------
    >>> from sklearn_rtl import MLP
    >>> find_prunable(MLP(4, (8, 8), 3))
    ['layers.0.weight', 'layers.2.weight']
    """
    names = [
        f"{prefix}.weight" if prefix else "weight"
        for prefix, sub in module.named_modules()
        if isinstance(sub, _PRUNABLE_TYPES) and getattr(sub, "weight", None) is not None
    ]
    if not prune_output_layer:
        names = names[:-1]
    return names


def _check_names(names, available, what):
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(
            f"{what} names parameters the module does not have: {unknown}. "
            f"Its parameters: {list(available)}."
        )


def resolve_prunable(
    template: nn.Module,
    prunable: None | Sequence[str] | Callable[[str, nn.Parameter], bool],
    prune_output_layer: bool = False,
) -> list[str]:
    """Names of the template's parameters that tickets prune.

    Parameters
    ----------
    template : torch.nn.Module
    prunable : None, list of str or callable
        ``None``: :func:`~sklearn_rtl.find_prunable` (Linear and Conv weights, the last such
        layer excluded unless ``prune_output_layer``). A list: exactly these parameter names
        (``prune_output_layer`` is ignored). A callable ``f(name, parameter) -> bool``:
        every parameter for which it returns True.
    prune_output_layer : bool, default=False

    Returns
    -------
    names : list of str
        In registration order.
    """
    if prunable is None:
        return find_prunable(template, prune_output_layer)
    named = dict(template.named_parameters())
    if callable(prunable):
        names = [name for name, param in named.items() if prunable(name, param)]
    elif isinstance(prunable, str):
        raise TypeError(
            f"prunable must be None, a list of parameter names or a callable, got the "
            f"string {prunable!r}; write [{prunable!r}]."
        )
    else:
        try:
            wanted = list(prunable)
        except TypeError:
            raise TypeError(
                f"prunable must be None, a list of parameter names or a callable, got {prunable!r}."
            ) from None
        if not all(isinstance(name, str) for name in wanted):
            raise TypeError(f"prunable must hold parameter names (str), got {wanted!r}.")
        _check_names(wanted, named, "prunable")
        names = [name for name in named if name in set(wanted)]
    for name in names:
        if named[name].ndim < 2:
            raise ValueError(
                f"prunable parameter {name!r} has shape {tuple(named[name].shape)}; only "
                f"weights with at least 2 dimensions (Linear, Conv) can be pruned."
            )
    return names


def resolve_shared_layers(shared_layers, prunable) -> tuple[str, ...]:
    """The prunable layers whose mask all tickets share.

    Parameters
    ----------
    shared_layers : None, int or list of str
        ``None``: none. ``n > 0``: the first ``n`` prunable layers (from the input side);
        ``n < 0``: the last ``-n`` (from the output side). A list: these prunable layers.
    prunable : list of str
        The network's prunable layers, input side first.

    Returns
    -------
    names : tuple of str
        In the order of ``prunable``.

    Examples
    --------
    >>> resolve_shared_layers(-1, ["fc1.weight", "fc2.weight", "fc3.weight"])
    ('fc3.weight',)
    """
    if shared_layers is None:
        return ()
    if isinstance(shared_layers, int) and not isinstance(shared_layers, bool):
        if abs(shared_layers) > len(prunable):
            raise ValueError(
                f"shared_layers={shared_layers} asks for more layers than the "
                f"{len(prunable)} prunable ones: {list(prunable)}."
            )
        if shared_layers >= 0:
            return tuple(prunable[:shared_layers])
        return tuple(prunable[shared_layers:])
    names = [shared_layers] if isinstance(shared_layers, str) else list(shared_layers)
    unknown = [n for n in names if n not in prunable]
    if unknown:
        raise ValueError(
            f"shared_layers names layers that are not prunable: {unknown}. "
            f"The prunable layers: {list(prunable)}."
        )
    return tuple(n for n in prunable if n in names)
