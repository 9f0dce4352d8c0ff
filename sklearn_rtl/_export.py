"""Plain torch modules out of a fitted estimator: one ticket, or the whole routed model.

* :func:`ticket_module` gives ticket ``k`` as an ordinary network (its mask baked in as
  zeros, eval mode): an ``nn.Sequential`` for the default MLP and CNN, a copy of your own
  module otherwise; ``layout="csr"`` stores sparse ``Linear`` weights as CSR tensors.
* :func:`to_torch` gives one module that routes and predicts as the estimator does, with
  no data-dependent Python control flow: every ticket runs on the whole batch and each
  sample's output is gathered by its ticket id, so :func:`torch.export.export` and
  :func:`torch.onnx.export` (:func:`export_onnx`) trace it with a dynamic batch size.
"""

from __future__ import annotations

import copy
import os
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._units import compact_ticket

__all__ = ["CSRLinear", "ExportedModel", "export_onnx", "ticket_module", "to_torch"]


def _fitted_network(estimator):
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator, "net_")
    return estimator.net_.module_


def _with_parameters(network, params: dict) -> nn.Module:
    """A deep copy of the network's template holding ``params`` (parameters and, for
    per-ticket batch norm, running statistics)."""
    module = copy.deepcopy(network.template)
    for name, value in params.items():
        prefix, _, attr = name.rpartition(".")
        owner = module.get_submodule(prefix)
        value = value.detach().clone()
        if attr in owner._buffers:
            owner._buffers[attr] = value
            continue
        if hasattr(owner, attr):
            delattr(owner, attr)  # the template holds None where its parameter was
        owner.register_parameter(attr, nn.Parameter(value))
    return module


def _as_sequential(module: nn.Module) -> nn.Module:
    """The default MLP and CNN as ``nn.Sequential``; any other module unchanged."""
    from . import MLP, SmallCNN

    if type(module) is MLP:
        return module.layers
    if type(module) is SmallCNN:
        return nn.Sequential(*module.features, nn.AdaptiveAvgPool2d(1), nn.Flatten(1), module.head)
    return module


class CSRLinear(nn.Module):
    """``nn.Linear`` with its weight stored as a sparse CSR tensor (int32 indices).

    Parameters
    ----------
    linear : torch.nn.Linear
        The dense layer; its zeros are dropped.
    """

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
            csr = linear.weight.detach().to_sparse_csr()
            self.register_buffer(
                "weight",
                torch.sparse_csr_tensor(
                    csr.crow_indices().to(torch.int32),
                    csr.col_indices().to(torch.int32),
                    csr.values(),
                    csr.shape,
                ),
            )
        bias = linear.bias
        self.register_buffer("bias", None if bias is None else bias.detach().clone())

    def forward(self, X):
        flat = X.reshape(-1, self.in_features)
        if self.bias is None:
            out = torch.mm(self.weight, flat.T).T
        else:
            out = torch.addmm(self.bias.unsqueeze(1), self.weight, flat.T).T
        return out.reshape(*X.shape[:-1], self.out_features)


def _csr_bytes(weight: torch.Tensor) -> int:
    nnz = int(torch.count_nonzero(weight))
    return nnz * (weight.element_size() + 4) + (weight.shape[0] + 1) * 4


def _to_csr(module: nn.Module) -> nn.Module:
    """Replace every ``nn.Linear`` whose CSR form is smaller than its dense weight."""
    for name, child in list(module.named_modules()):
        if type(child) is not nn.Linear:
            continue
        weight = child.weight.detach()
        if _csr_bytes(weight) >= weight.numel() * weight.element_size():
            continue
        if not name:
            return CSRLinear(child)
        parent, _, attr = name.rpartition(".")
        setattr(module.get_submodule(parent), attr, CSRLinear(child))
    return module


def ticket_module(estimator, k: int, layout: str = "dense") -> nn.Module:
    """Ticket ``k`` as a plain ``torch.nn.Module``, in eval mode.

    The template architecture with ticket ``k``'s mask baked in (pruned weights are
    zeros) and, with per-ticket batch norm, ticket ``k``'s running statistics. The default
    MLP becomes an ``nn.Sequential`` of ``Linear``/``ReLU``; the default CNN an
    ``nn.Sequential`` of its conv blocks, ``AdaptiveAvgPool2d(1)``, ``Flatten`` and the
    head; a custom module is a deep copy of your module. Its output is ticket ``k``'s
    output inside the fitted model (logits; for the regressor, standardized targets:
    multiply by ``y_scale_`` and add ``y_mean_``). It takes input of shape
    ``(n, *input_shape_)``.

    A neuron-level ticket (``prune_granularity="neuron"``) is physically smaller: an
    ``nn.Sequential`` of the same kind holding only the units (channels) the ticket keeps,
    the constant a removed unit leaves behind folded into the next layer's bias, so it
    costs what its kept weights cost (:func:`~sklearn_rtl._units.compact_ticket`).

    Parameters
    ----------
    estimator : RTLClassifier or RTLRegressor
        Fitted.
    k : int
        Ticket id in ``0 .. n_tickets_ - 1``.
    layout : {"dense", "csr"}, default="dense"
        ``"csr"`` stores every ``nn.Linear`` weight whose CSR form (int32 indices) is
        smaller than the dense one as a sparse CSR tensor (:class:`CSRLinear`): smaller;
        faster or slower than dense depending on sparsity and width (measured in
        ``benchmarks/bench_size.py``); not exportable.

    Returns
    -------
    module : torch.nn.Module
    """
    network = _fitted_network(estimator)
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int ticket id, got {k!r}.")
    if not 0 <= k < network.n_tickets:
        raise ValueError(f"k must be in [0, {network.n_tickets - 1}], got {k}.")
    if layout not in ("dense", "csr"):
        raise ValueError(f"layout must be 'dense' or 'csr', got {layout!r}.")
    module = None
    if getattr(estimator, "prune_granularity", "weight") == "neuron":
        module = compact_ticket(network, int(k))
    if module is None:
        with torch.no_grad():
            params = network.ticket_parameters(int(k))
            module = _as_sequential(_with_parameters(network, params))
    if layout == "csr":
        module = _to_csr(module)
    return module.eval()


class ExportedModel(nn.Module):
    """The whole routed model of a fitted estimator (built by :func:`to_torch`).

    Parameters
    ----------
    tickets : list of torch.nn.Module
        Every ticket's module (:func:`ticket_module`).
    input_shape : tuple of int
        Per-sample shape the tickets take.
    routing : torch.nn.Module or None
        The router's own module (``Router.to_torch``): maps ``(flat X, groups)`` to
        ``(ticket ids, known or None)``; None where the tickets decide (label routing).
    output : {"proba", "label_proba", "regression"}
        The task's ``export_output``.
    needs_groups : bool, default=False
        Whether ``forward`` takes a group tensor.
    y_mean, y_scale : ndarray, default=None
        Regression targets' de-standardization.
    squeeze : bool, default=False
        Return 1-D predictions (regressor fitted on 1-D ``y``).
    """

    def __init__(
        self,
        tickets,
        input_shape,
        routing,
        output,
        needs_groups=False,
        y_mean=None,
        y_scale=None,
        squeeze=False,
    ):
        super().__init__()
        self.tickets = nn.ModuleList(tickets)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.routing = routing
        self.output = output
        self.needs_groups = bool(needs_groups)
        self.squeeze = bool(squeeze)
        for name, value in (("y_mean", y_mean), ("y_scale", y_scale)):
            value = None if value is None else torch.as_tensor(value, dtype=torch.float64)
            self.register_buffer(name, value)

    def forward(self, x, groups=None):
        x = x.to(torch.float32)
        flat = x.reshape(x.shape[0], -1)
        inputs = x.reshape(x.shape[0], *self.input_shape)
        outs = torch.stack([ticket(inputs) for ticket in self.tickets])  # (K, n, out)
        if self.output == "label_proba":
            return torch.softmax(F.logsigmoid(outs[..., 0].T), dim=1)
        ticket, known = self.routing(flat, groups)
        index = ticket.reshape(1, -1, 1).expand(1, outs.shape[1], outs.shape[2])
        out = torch.gather(outs, 0, index)[0]
        if self.output == "proba":
            out = torch.softmax(out, dim=1)
        else:
            out = out.double() * self.y_scale + self.y_mean
        if known is not None:
            out = torch.where(known.unsqueeze(1), out, torch.full_like(out, float("nan")))
        return out[:, 0] if self.squeeze else out


def to_torch(estimator) -> ExportedModel:
    """The whole routed model as one ``torch.nn.Module`` (:class:`ExportedModel`), eval mode.

    ``model(x)`` (``model(x, groups)`` under ``routing="groups"``) takes a float tensor of
    shape ``(n, n_features)`` (flat rows) or ``(n, *input_shape_)`` (images) and returns
    what the estimator returns: class probabilities ``(n, n_classes)`` (float32) for the
    classifier, predictions ``(n,)`` or ``(n, n_outputs_)`` (float64, de-standardized with
    ``y_mean_`` / ``y_scale_``) for the regressor. The router's own module routes inside
    (``router_.to_torch()``): KMeans scaling and nearest-centroid rule, clusters without a
    ticket going to the nearest kept centroid's ticket as in ``predict``; under
    ``routing="label"`` the detectors' sigmoids, normalized; under ``routing="groups"``,
    ``groups`` is an integer tensor ``(n,)``: the group values themselves when the groups
    seen in fit were integers (also when held in an object array), otherwise their codes,
    i.e. positions in ``estimator.router_.ticket_labels_``. A group never seen in fit goes
    to the nearest group centroid with ``unknown_group="nearest"``; with
    ``unknown_group="error"`` its output row is NaN (``predict`` raises).

    Every ticket runs on the whole batch and each sample's output is gathered by its
    ticket id (no data-dependent control flow), so the module passes
    :func:`torch.export.export` and :func:`torch.onnx.export` with a dynamic batch size.

    Raises
    ------
    ValueError
        For a router the module cannot express (an arbitrary estimator): route outside
        and use :func:`ticket_module`.
    """
    network = _fitted_network(estimator)
    router = estimator.router_
    routing = router.to_torch()
    tickets = [ticket_module(estimator, k) for k in range(network.n_tickets)]
    extra = {}
    if estimator._task.export_output == "regression":
        extra = dict(
            y_mean=estimator.y_mean_,
            y_scale=estimator.y_scale_,
            squeeze=bool(getattr(estimator, "_y_is_1d", False)),
        )
    model = ExportedModel(
        tickets,
        estimator.input_shape_,
        routing,
        estimator._task.export_output,
        needs_groups=router.needs_groups,
        **extra,
    )
    return model.to(next(iter(network.get_weights().values())).device).eval()


def export_onnx(estimator, path, opset_version=None, **kwargs) -> None:
    """Write the routed model (:func:`to_torch`) to an ONNX file, dynamic batch size.

    Inputs: ``x`` float32 of shape ``(batch, *input_shape_)`` and, under
    ``routing="groups"``, ``groups`` int64 of shape ``(batch,)`` (see :func:`to_torch`);
    output: ``output`` (probabilities or predictions).

    Parameters
    ----------
    estimator : RTLClassifier or RTLRegressor
        Fitted.
    path : str or path-like
    opset_version : int, default=None
        ONNX opset; ``None`` lets torch choose.
    **kwargs
        Passed to :func:`torch.onnx.export`.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np, onnxruntime
    >>> from sklearn.datasets import load_iris
    >>> from sklearn_rtl import RTLClassifier, export_onnx
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = RTLClassifier(hidden_layer_sizes=(8,), n_clusters=2, n_prune_rounds=1,
    ...                     max_epochs=1, random_state=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "iris.onnx")
    >>> export_onnx(clf, path)
    >>> session = onnxruntime.InferenceSession(path)
    >>> proba = session.run(None, {"x": X.astype(np.float32)})[0]
    >>> bool(np.abs(proba - clf.predict_proba(X)).max() < 1e-5)
    True
    """
    model = to_torch(estimator).cpu()
    args = (torch.zeros((2, *estimator.input_shape_), dtype=torch.float32),)
    names = ["x"]
    if model.needs_groups:
        args, names = (*args, torch.zeros(2, dtype=torch.int64)), ["x", "groups"]
    kwargs.setdefault("dynamo", True)
    kwargs.setdefault("verbose", False)
    if kwargs["dynamo"]:
        kwargs.setdefault("external_data", False)  # one self-contained file
        batch = torch.export.Dim("batch")
        kwargs.setdefault("dynamic_shapes", tuple({0: batch} for _ in names))
    else:  # the TorchScript exporter names dynamic axes instead
        axes = {name: {0: "batch"} for name in [*names, "output"]}
        kwargs.setdefault("dynamic_axes", axes)
    torch.onnx.export(
        model,
        args,
        os.fspath(path),
        input_names=names,
        output_names=["output"],
        opset_version=opset_version,
        **kwargs,
    )
