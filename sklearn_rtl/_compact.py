"""The compact fitted state: a fitted model keeps only what prediction needs.

Three things made a pickled :class:`~sklearn_rtl.RTLClassifier` about twice the size of its
dense float32 weights, whatever its sparsity:

* skorch pickles the net's ``module`` parameter (our :class:`TicketNetwork` instance) in
  the outer pickle and ``module_`` / ``optimizer_`` in a separate inner blob
  (``NeuralNet.__getstate__``), so the same network was stored twice;
* the optimizer's ``param_groups`` reference the weight tensors (a third copy once the
  network itself stores only its kept weights);
* the weights were stored dense, and the positions that no ticket keeps held their
  (rewound) initial values, so not even a compressor saw the sparsity.

:func:`compact_fitted_net` fixes the first two and zeroes every unused weight in memory;
:func:`network_getstate` / :func:`network_setstate` store a :class:`TicketNetwork` as the
values of the union of the ticket masks, the union as a bitmap (1 bit per weight) and every
ticket's mask restricted to the union (``|union|`` bits per ticket).
"""

from __future__ import annotations

import zlib

import numpy as np
import torch
from torch import nn

__all__ = [
    "COMPACT_FORMAT",
    "compact_arrays",
    "compact_fitted_net",
    "compact_router",
    "network_getstate",
    "network_setstate",
    "restore_arrays",
    "zero_unused_weights",
]

COMPACT_FORMAT = 1


def _key(name: str) -> str:
    return name.replace(".", "__")


def _as_array(tensor: torch.Tensor):
    """A numpy array (small to pickle) where numpy has the dtype, else the CPU tensor."""
    tensor = tensor.detach().cpu().contiguous()
    try:
        return tensor.numpy()
    except TypeError:  # e.g. bfloat16
        return tensor


def _as_tensor(value) -> torch.Tensor:
    return value if isinstance(value, torch.Tensor) else torch.from_numpy(np.asarray(value))


@torch.no_grad()
def zero_unused_weights(network) -> None:
    """Zero, in place, every prunable weight that no ticket reading it keeps.

    With one shared weight copy that is every position outside the union of the masks;
    with one copy per ticket (``share_weights=False``), copy ``k`` keeps only ticket
    ``k``'s mask. Predictions do not change: those positions are multiplied by a zero mask.

    Parameters
    ----------
    network : TicketNetwork
    """
    masks = network.get_masks()
    for name in network.prunable:
        weight = network.weights[_key(name)]
        mask = masks[name].to(weight.device)
        keep = mask.any(0, keepdim=True) if weight.shape[0] == 1 else mask
        weight.copy_(torch.where(keep, weight, torch.zeros((), dtype=weight.dtype)))


def compact_arrays(network) -> tuple[dict, dict]:
    """The network's weights and masks as compact arrays plus plain metadata.

    Parameters
    ----------
    network : TicketNetwork

    Returns
    -------
    arrays : dict of str to ndarray (or Tensor for dtypes numpy lacks)
        Per prunable weight ``name``: ``name/union`` (the union of the masks as a
        bit-packed bitmap over the flat weight), ``name/masks`` (every ticket's mask
        restricted to the union, ``n_tickets * |union|`` bits, packed) and
        ``name/values`` (the kept values: the union's with one shared copy, else every
        copy's own kept values one after the other). Per other parameter,
        ``name/dense`` of shape ``(n_copies, *shape)``.
    meta : dict
        ``format``, ``n_tickets``, ``n_copies``, ``param_names``, ``prunable`` and
        ``shapes`` (JSON-able).
    """
    weights, masks = network.get_weights(), network.get_masks()
    n_tickets, n_copies = int(network.n_tickets), int(network.n_copies)
    arrays: dict = {}
    for name in network.param_names:
        weight = weights[name].detach().cpu()
        if name not in network.prunable:
            arrays[f"{name}/dense"] = _as_array(weight)
            continue
        mask = masks[name].cpu().reshape(n_tickets, -1)
        union = mask.any(0)
        flat = weight.reshape(n_copies, -1)
        if n_copies == 1:
            values = flat[0][union]
        else:
            values = torch.cat([flat[k][mask[k]] for k in range(n_tickets)])
        arrays[f"{name}/union"] = np.packbits(union.numpy())
        arrays[f"{name}/masks"] = np.packbits(mask[:, union].numpy().ravel())
        arrays[f"{name}/values"] = _as_array(values)
    meta = {
        "format": COMPACT_FORMAT,
        "n_tickets": n_tickets,
        "n_copies": n_copies,
        "param_names": list(network.param_names),
        "prunable": list(network.prunable),
        "shapes": {name: list(weights[name].shape[1:]) for name in network.param_names},
    }
    return arrays, meta


def _unpack(bits, count: int, what: str) -> torch.Tensor:
    bits = np.asarray(bits, dtype=np.uint8).ravel()
    if len(bits) != -(-count // 8):
        raise ValueError(f"{what} holds {len(bits)} bytes, expected {-(-count // 8)}.")
    return torch.from_numpy(np.unpackbits(bits, count=count).astype(bool))


def _restore_prunable(arrays, name, shape, n_tickets, n_copies):
    """Dense ``(n_copies, *shape)`` weight and ``(n_tickets, *shape)`` mask of ``name``."""
    size = int(np.prod(shape))
    union = _unpack(arrays[f"{name}/union"], size, f"the union bitmap of {name!r}")
    n_union = int(union.sum())
    restricted = _unpack(arrays[f"{name}/masks"], n_tickets * n_union, f"the masks of {name!r}")
    restricted = restricted.reshape(n_tickets, n_union)
    mask = torch.zeros((n_tickets, size), dtype=torch.bool)
    mask[:, union] = restricted
    values = _as_tensor(arrays[f"{name}/values"]).reshape(-1)
    expected = n_union if n_copies == 1 else int(mask.sum())
    if len(values) != expected:
        raise ValueError(f"{name!r} holds {len(values)} kept values, expected {expected}.")
    weight = torch.zeros((n_copies, size), dtype=values.dtype)
    if n_copies == 1:
        weight[0, union] = values
    else:
        for k, part in enumerate(torch.split(values, mask.sum(1).tolist())):
            weight[k, mask[k]] = part
    return weight.reshape(n_copies, *shape), mask.reshape(n_tickets, *shape)


@torch.no_grad()
def restore_arrays(network, arrays: dict, meta: dict, device=None) -> None:
    """Load the output of :func:`compact_arrays` into ``network`` (weights and masks).

    ``network`` must have the same parameter names, prunable names and shapes; its weights
    are replaced (build any optimizer afterwards) and its mask buffers registered anew.

    Raises
    ------
    ValueError
        If the arrays do not fit the network.
    """
    if meta.get("format") != COMPACT_FORMAT:
        raise ValueError(
            f"Unknown compact network format {meta.get('format')!r}; this version of "
            f"sklearn-rtl reads format {COMPACT_FORMAT}."
        )
    if list(meta["param_names"]) != list(network.param_names) or list(meta["prunable"]) != list(
        network.prunable
    ):
        raise ValueError("The stored weights do not match the network's parameters.")
    n_tickets, n_copies = int(meta["n_tickets"]), int(meta["n_copies"])
    if n_tickets != network.n_tickets:
        raise ValueError(f"Stored {n_tickets} tickets, the network has {network.n_tickets}.")
    weights, holder = nn.ParameterDict(), nn.Module()
    for name in network.param_names:
        shape = tuple(int(s) for s in meta["shapes"][name])
        if name in network.prunable:
            weight, mask = _restore_prunable(arrays, name, shape, n_tickets, n_copies)
            holder.register_buffer(_key(name), mask.to(device))
        else:
            weight = _as_tensor(arrays[f"{name}/dense"]).clone()
            if tuple(weight.shape) != (n_copies, *shape):
                raise ValueError(
                    f"{name!r} has shape {tuple(weight.shape)}, expected {(n_copies, *shape)}."
                )
        weights[_key(name)] = nn.Parameter(weight.to(device))
    network._modules["weights"] = weights
    network._modules["masks"] = holder


def _deflate(arrays: dict) -> dict:
    """Every array as ``(dtype name, shape, zlib-compressed bytes)``: the union bitmaps
    and the values' exponent bytes compress by 10-25 %."""
    out = {}
    for key, value in arrays.items():
        tensor = _as_tensor(value).contiguous()
        raw = tensor.reshape(-1).view(torch.uint8).numpy().tobytes()
        out[key] = (
            str(tensor.dtype).removeprefix("torch."),
            tuple(tensor.shape),
            zlib.compress(raw),
        )
    return out


def _inflate(encoded: dict) -> dict:
    """Inverse of :func:`_deflate`."""
    out = {}
    for key, (dtype, shape, data) in encoded.items():
        dtype = getattr(torch, dtype, None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"Unknown dtype for the stored array {key!r}.")
        raw = bytearray(zlib.decompress(data))
        out[key] = torch.frombuffer(raw, dtype=torch.uint8).view(dtype).reshape(shape)
    return out


def network_getstate(network) -> dict:
    """Pickle state of a :class:`TicketNetwork`: its attributes without the dense weights
    and masks, plus their compact form (:func:`compact_arrays`) under ``"_compact"``.

    Call it from ``TicketNetwork.__getstate__``. The arrays are zlib-compressed. Other
    buffers (batch-norm statistics) stay as they are.
    """
    arrays, meta = compact_arrays(network)
    weights = network.get_weights()
    meta["device"] = str(next(iter(weights.values())).device) if weights else "cpu"
    state = network.__dict__.copy()
    modules = dict(state["_modules"])
    modules["weights"] = nn.ParameterDict()
    modules["masks"] = nn.Module()
    state["_modules"] = modules
    state.pop("_packed_masks", None)
    state.pop("_union_cache", None)  # a per-step cache of the training masks
    meta["encoding"] = "zlib"
    state["_compact"] = (_deflate(arrays), meta)
    return state


def network_setstate(network, state: dict) -> None:
    """Inverse of :func:`network_getstate`; call it from ``TicketNetwork.__setstate__``.

    Also reads the state that sklearn-rtl 0.1.0 pickled (dense weights, masks bit-packed
    under ``"_packed_masks"`` by ``pack_masks``), so models pickled by that version load.
    """
    state = dict(state)
    compact = state.pop("_compact", None)
    packed = state.pop("_packed_masks", None)
    nn.Module.__setstate__(network, state)
    if compact is not None:
        arrays, meta = compact
        if meta.get("encoding") == "zlib":
            arrays = _inflate(arrays)
        device = meta.get("device", "cpu")
        if torch.device(device).type == "cuda" and not torch.cuda.is_available():
            device = "cpu"
        restore_arrays(network, arrays, meta, device=device)
    elif packed is not None:
        holder = nn.Module()
        device = next(iter(network.weights.values())).device
        for name, (shape, bits) in packed[0].items():
            count = int(np.prod(shape))
            mask = torch.from_numpy(np.unpackbits(bits, count=count).astype(bool))
            holder.register_buffer(_key(name), mask.reshape(tuple(shape)).to(device))
        network._modules["masks"] = holder


def compact_router(router) -> None:
    """Drop what routing does not need from a fitted router, in place: the ``labels_`` of
    a KMeans (one entry per training row) inside an estimator router."""
    estimator = getattr(router, "estimator_", None)
    steps = [s for _, s in getattr(estimator, "steps", [])] or [estimator]
    for step in steps:
        if hasattr(step, "cluster_centers_") and hasattr(step, "labels_"):
            del step.labels_


def compact_fitted_net(net, keep_batches: bool = False) -> None:
    """Make a fitted skorch net store only what prediction needs; call at the end of fit.

    Zeroes every weight that no ticket keeps (:func:`zero_unused_weights`), drops the
    optimizer (its ``param_groups`` would pickle the weight tensors again;
    ``net.initialize_optimizer()`` builds a fresh one), stores skorch's ``module``
    parameter in the same inner pickle as ``module_`` (they are one object; skorch
    pickled it twice) and, unless ``keep_batches``, drops the per-batch records of the
    history (epoch records stay).

    Parameters
    ----------
    net : skorch.NeuralNet
        Initialized, with a :class:`TicketNetwork` as ``module_``.
    keep_batches : bool, default=False
    """
    zero_unused_weights(net.module_)
    net.optimizer_ = None
    attrs = list(getattr(net, "cuda_dependent_attributes_", []))
    if net.__dict__.get("module") is net.module_ and "module" not in attrs:
        net.cuda_dependent_attributes_ = [*attrs, "module"]
    if not keep_batches and getattr(net, "history", None) is not None:
        for epoch in net.history:
            if "batches" in epoch:
                epoch["batches"] = []
