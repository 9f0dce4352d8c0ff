"""Image input and custom networks: the default small CNN, per-ticket batch-norm statistics
and the choice of prunable weights.

* :class:`SmallCNN` is the network used when ``module=None`` and ``X`` is image-shaped:
  conv blocks (``Conv2d`` without bias, ``BatchNorm2d``, ReLU, 2x2 max-pooling), global
  average pooling and a linear head. As in the paper's vision experiments (A.1), its conv
  weights are the pruning scope; batch norm and the head stay dense.
* :class:`TicketBatchNormNetwork` is a :class:`~sklearn_rtl.TicketNetwork` whose batch-norm
  layers keep one set of running statistics per ticket (``ticket_batchnorm=True``); the
  affine batch-norm parameters stay dense and shared.
* :func:`resolve_prunable` turns the estimator's ``prunable`` parameter into the list of
  parameter names that carry masks.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ._network import TicketNetwork, find_prunable

__all__ = [
    "SmallCNN",
    "TicketBatchNormNetwork",
    "default_image_module",
    "has_batchnorm",
    "network_input_shape",
    "resolve_prunable",
]


class SmallCNN(nn.Module):
    """Small convolutional network for images of shape ``(C, H, W)``.

    Every block is ``Conv2d(kernel_size, padding="same", bias=False) -> BatchNorm2d -> ReLU``
    followed by a 2x2 max-pooling while the feature map is at least 2x2; then global average
    pooling and one ``Linear`` head. Works for any ``H, W >= 1``.

    Parameters
    ----------
    in_channels : int, default=1
        Channels ``C`` of the input.
    n_outputs : int, default=10
        Output dimension (logits).
    channels : tuple of int, default=(16, 32, 64)
        Output channels of every conv block.
    kernel_size : int, default=3
        Odd kernel size of every convolution.
    input_hw : tuple of int, default=None
        Height and width of the input, used only to skip pooling once the map is 1x1.
        ``None`` pools after every block (input of at least ``2**len(channels)`` pixels
        per side).

    Examples
    --------
    >>> import torch
    >>> from sklearn_rtl import SmallCNN
    >>> net = SmallCNN(in_channels=1, n_outputs=10, channels=(4, 8), input_hw=(8, 8))
    >>> net(torch.zeros(5, 1, 8, 8)).shape
    torch.Size([5, 10])
    """

    def __init__(
        self,
        in_channels: int = 1,
        n_outputs: int = 10,
        channels: Sequence[int] = (16, 32, 64),
        kernel_size: int = 3,
        input_hw: Sequence[int] | None = None,
    ):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if not channels or min(channels) < 1:
            raise ValueError(
                f"channels must be a non-empty tuple of positive ints, got {channels!r}."
            )
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size!r}.")
        h, w = (None, None) if input_hw is None else (int(input_hw[0]), int(input_hw[1]))
        blocks: list[nn.Module] = []
        c_in = int(in_channels)
        for c_out in channels:
            blocks += [
                nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
            ]
            if h is None or (h >= 2 and w >= 2):
                blocks.append(nn.MaxPool2d(2))
                if h is not None:
                    h, w = h // 2, w // 2
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        self.head = nn.Linear(c_in, int(n_outputs))

    def forward(self, X):
        if X.ndim != 4:
            raise ValueError(
                f"SmallCNN takes X of shape (n_samples, channels, height, width), got "
                f"{tuple(X.shape)}."
            )
        h = self.features(X)
        return self.head(h.mean(dim=(2, 3)))


class TicketBatchNormNetwork(TicketNetwork):
    """A :class:`~sklearn_rtl.TicketNetwork` with per-ticket batch-norm running statistics.

    Training batches are grouped by ticket, so batch norm normalizes every ticket with its
    own batch statistics during training; with the template's shared running statistics,
    evaluation would then normalize every ticket with a mixture of all tickets' statistics.
    Here every batch-norm layer that tracks running statistics gets buffers of shape
    ``(n_tickets, *shape)``, and ticket ``k`` reads and updates row ``k`` (they are passed to
    ``functional_call`` with the ticket's parameters). The affine batch-norm weights stay
    dense and shared, as in the paper.

    Parameters
    ----------
    template, n_tickets, prunable
        As for :class:`~sklearn_rtl.TicketNetwork`.

    Examples
    --------
    >>> import torch
    >>> from sklearn_rtl import SmallCNN, TicketBatchNormNetwork, find_prunable
    >>> template = SmallCNN(in_channels=1, n_outputs=3, channels=(4,), input_hw=(6, 6))
    >>> network = TicketBatchNormNetwork(template, 2, find_prunable(template))
    >>> out = network(torch.randn(8, 1, 6, 6), torch.tensor([0, 1] * 4))
    >>> out.shape, network.ticket_stat(network.stat_names[0]).shape
    (torch.Size([8, 3]), torch.Size([2, 4]))
    """

    _STATS = ("running_mean", "running_var", "num_batches_tracked")

    def __init__(self, template: nn.Module, n_tickets: int, prunable: list[str]):
        super().__init__(template, n_tickets, prunable)
        self.ticket_stats = nn.Module()
        self.stat_names: list[str] = []
        for prefix, sub in template.named_modules():
            if not (isinstance(sub, _BatchNorm) and sub.track_running_stats):
                continue
            for attr in self._STATS:
                value = getattr(sub, attr, None)
                if value is None:
                    continue
                name = f"{prefix}.{attr}" if prefix else attr
                stacked = value.detach().unsqueeze(0).repeat(self.n_tickets, *[1] * value.ndim)
                self.ticket_stats.register_buffer(name.replace(".", "__"), stacked.clone())
                self.stat_names.append(name)

    def ticket_stat(self, name: str) -> torch.Tensor:
        """Running statistic ``name`` of every ticket, shape ``(n_tickets, *shape)``."""
        return getattr(self.ticket_stats, name.replace(".", "__"))

    def ticket_parameters(self, ticket: int) -> dict[str, torch.Tensor]:
        params = super().ticket_parameters(ticket)
        for name in self.stat_names:
            # A view: batch norm's in-place update of its running statistics lands in row k.
            params[name] = self.ticket_stat(name)[ticket]
        return params


def has_batchnorm(module: nn.Module) -> bool:
    """Whether ``module`` has a batch-norm layer that tracks running statistics."""
    return any(isinstance(sub, _BatchNorm) and sub.track_running_stats for sub in module.modules())


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


def network_input_shape(sample_shape, module, input_shape) -> tuple[int, ...]:
    """Per-sample shape the network receives, from the validated ``X.shape[1:]``.

    Parameters
    ----------
    sample_shape : tuple of int
        ``X.shape[1:]`` as given to ``fit``.
    module : None or module
        The estimator's ``module`` parameter. With ``None``, 2-D ``X`` goes to the MLP and
        image-shaped samples (``(H, W)`` or ``(C, H, W)``, or any sample reshaped by
        ``input_shape`` to one of those) go to :class:`SmallCNN` as ``(C, H, W)``.
    input_shape : None or tuple of int
        The estimator's ``input_shape`` parameter: every sample is reshaped to it (sizes
        must match).

    Returns
    -------
    shape : tuple of int
    """
    sample_shape = tuple(int(s) for s in sample_shape)
    if input_shape is not None:
        if isinstance(input_shape, (int, str)) or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1
            for s in input_shape
        ):
            raise TypeError(
                f"input_shape must be None or a tuple of positive ints, got {input_shape!r}."
            )
        shape = tuple(int(s) for s in input_shape)
        if not shape or math.prod(shape) != math.prod(sample_shape):
            raise ValueError(
                f"input_shape={shape} holds {math.prod(shape)} values per sample, but X "
                f"has samples of shape {sample_shape} ({math.prod(sample_shape)} values)."
            )
    else:
        shape = sample_shape
    if module is not None or (input_shape is None and len(shape) == 1):
        return shape
    if len(shape) == 2:
        return (1, *shape)
    if len(shape) == 3:
        return shape
    raise ValueError(
        f"Without a module, X must be 2-D (n_samples, n_features) for the MLP, or images "
        f"of shape (n_samples, height, width) or (n_samples, channels, height, width) for "
        f"the default CNN; got samples of shape {shape}. Pass input_shape=(C, H, W) to "
        f"reshape flat X into images, or a module that takes this input."
    )


def default_image_module(input_shape, n_outputs, params) -> SmallCNN:
    """The :class:`SmallCNN` for samples of shape ``input_shape = (C, H, W)``."""
    params = dict(params or {})
    params.setdefault("input_hw", tuple(input_shape[1:]))
    return SmallCNN(input_shape[0], n_outputs, **params)
