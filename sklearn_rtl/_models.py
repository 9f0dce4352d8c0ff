"""The networks RTL builds when the user gives none, and the shape they take input in.

* :class:`MLP`: fully connected ReLU network for tabular ``X``;
* :class:`SmallCNN`: conv blocks (``Conv2d`` without bias, ``BatchNorm2d``, ReLU, 2x2
  max-pooling), global average pooling and a linear head, for image-shaped ``X``. As in the
  paper's vision experiments (A.1), its conv weights are the pruning scope; batch norm and
  the head stay dense;
* :func:`network_input_shape` and :func:`build_template`: which of them (or the user's own
  module) a fit uses, and the per-sample shape it takes.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["MLP", "SmallCNN", "build_template", "network_input_shape"]


class MLP(nn.Module):
    """Fully connected ReLU network: the default module for tabular data.

    Parameters
    ----------
    n_features : int
        Input dimension.
    hidden_layer_sizes : tuple of int
        Width of every hidden layer.
    n_outputs : int
        Output dimension (logits).

    Examples
    --------
    >>> import torch
    >>> net = MLP(n_features=4, hidden_layer_sizes=(8,), n_outputs=3)
    >>> net(torch.zeros(5, 4)).shape
    torch.Size([5, 3])
    """

    def __init__(self, n_features: int, hidden_layer_sizes=(128, 128), n_outputs: int = 2):
        super().__init__()
        sizes = [n_features, *hidden_layer_sizes]
        layers: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=False):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], n_outputs))
        self.layers = nn.Sequential(*layers)

    def forward(self, X):
        return self.layers(X)


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


def build_template(module, module_params, input_shape, hidden_layer_sizes, n_outputs):
    """The template network of a fit: the user's ``module`` (a class built with
    ``module_params``, or an instance deep-copied), else :class:`SmallCNN` for image-shaped
    ``input_shape`` and :class:`MLP` otherwise."""
    params = dict(module_params or {})
    if module is None:
        if len(input_shape) == 3:
            return default_image_module(input_shape, n_outputs, params)
        return MLP(math.prod(input_shape), hidden_layer_sizes, n_outputs, **params)
    if isinstance(module, torch.nn.Module):
        return copy.deepcopy(module)
    return module(**params)
